//! Verdaccio's `listen` forms: `4873`, `host:port`, `http://host:port`, `[::1]:4873`, a host
//! alone (port 4873), or a list (deprecated; the first entry is used). The same forms are
//! accepted by `--listen` and `NPM_REGISTRY_LISTEN`.

use serde_yaml::Value;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

const DEFAULT_PORT: u16 = 4873;

pub fn parse_value(v: &Value, warnings: &mut Vec<String>) -> Result<SocketAddr, String> {
    match v {
        Value::Number(n) => parse(&n.to_string()),
        Value::String(s) => parse(s),
        Value::Sequence(items) => {
            let first = items.first().ok_or("the list is empty")?;
            if items.len() > 1 {
                warnings.push("`listen` has several addresses; only the first is used".to_owned());
            }
            parse_value(first, warnings)
        }
        _ => Err("expected an address such as 0.0.0.0:4873, localhost:4873 or 4873".to_owned()),
    }
}

fn port(text: &str, whole: &str) -> Result<u16, String> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{whole:?}: {text:?} is not a port number"));
    }
    text.parse::<u16>()
        .map_err(|_| format!("{whole:?}: port {text} is out of range (0 to 65535)"))
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]` into host and port.
fn split(t: &str, whole: &str) -> Result<(String, u16), String> {
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{whole:?}: an IPv6 address needs its closing `]`"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_owned(), port(p, whole)?)),
            None if after.is_empty() => Ok((host.to_owned(), DEFAULT_PORT)),
            None => Err(format!("{whole:?}: expected `:port` after `]`")),
        };
    }
    match t.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Ok((t.to_owned(), DEFAULT_PORT)),
        Some((host, p)) => Ok((host.to_owned(), port(p, whole)?)),
        None => Ok((t.to_owned(), DEFAULT_PORT)),
    }
}

pub fn parse(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if t.starts_with("unix:") {
        return Err(format!("unix sockets are not supported ({t:?})"));
    }
    if t.starts_with("https://") {
        return Err(format!(
            "TLS is terminated by the ingress or load balancer; listen on http ({t:?})"
        ));
    }
    let t = t.strip_prefix("http://").unwrap_or(t).trim_end_matches('/');
    if t.is_empty() {
        return Err("expected an address such as 0.0.0.0:4873, localhost:4873 or 4873".to_owned());
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port(t, text)?)));
    }
    if t.contains('/') {
        return Err(format!("{text:?}: a listen address has no path"));
    }
    let (host, port) = split(t, text)?;
    if host.is_empty() {
        return Err(format!(
            "{text:?}: the host is missing (0.0.0.0 listens on every address)"
        ));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    // A host name (`localhost`): its IPv4 address first, as Verdaccio's node does.
    let bad_name = host.chars().any(|c| !(c.is_ascii_alphanumeric() || ".-".contains(c)));
    if bad_name || host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("{text:?}: {host:?} is neither an IP address nor a host name"));
    }
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("{text:?}: cannot resolve {host:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?}: {host:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_listen_forms() {
        assert_eq!(parse("4873").unwrap().to_string(), "127.0.0.1:4873");
        assert_eq!(parse("0.0.0.0:5000").unwrap().to_string(), "0.0.0.0:5000");
        assert_eq!(parse("http://localhost:4000/").unwrap().to_string(), "127.0.0.1:4000");
        assert_eq!(parse("localhost:4873").unwrap().to_string(), "127.0.0.1:4873");
        assert_eq!(parse("[::1]:4873").unwrap().to_string(), "[::1]:4873");
        assert_eq!(parse("[::]").unwrap().to_string(), "[::]:4873");
        assert_eq!(parse("0.0.0.0").unwrap().to_string(), "0.0.0.0:4873");
        assert_eq!(parse("http://0.0.0.0:4873").unwrap().to_string(), "0.0.0.0:4873");
    }

    #[test]
    fn refuses_bad_forms_saying_why() {
        let err = |t: &str| parse(t).unwrap_err();
        assert!(err("99999").contains("port 99999 is out of range"), "{}", err("99999"));
        assert!(err("0.0.0.0:70000").contains("out of range"));
        assert!(err("localhost:http").contains("not a port number"));
        assert!(err("unix:/tmp/sock").contains("unix sockets"));
        assert!(err("https://0.0.0.0:443").contains("TLS"));
        assert!(err("http://0.0.0.0:4873/npm").contains("no path"));
        assert!(err(":4873").contains("host is missing"));
        assert!(err("1.2.3:4873").contains("neither an IP address"));
        assert!(err("[::1:4873").contains("closing"));
    }
}
