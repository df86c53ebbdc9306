//! Verdaccio's `listen` forms: `4873`, `host:port`, `http://host:port`, `[::1]:4873`, or a list
//! (deprecated; the first entry is used).

use serde_yaml::Value;
use std::net::{SocketAddr, ToSocketAddrs};

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
        _ => Err("expected an address such as 0.0.0.0:4873".to_owned()),
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
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let with_port = if t.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        t.to_owned()
    } else {
        format!("{t}:4873")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {text:?}: {e}"))?
        .find(|a| a.is_ipv4())
        .or_else(|| with_port.to_socket_addrs().ok()?.next())
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_listen_forms() {
        assert_eq!(parse("4873").unwrap().to_string(), "127.0.0.1:4873");
        assert_eq!(parse("0.0.0.0:5000").unwrap().to_string(), "0.0.0.0:5000");
        assert_eq!(parse("http://localhost:4000/").unwrap().to_string(), "127.0.0.1:4000");
        assert_eq!(parse("[::1]:4873").unwrap().to_string(), "[::1]:4873");
        assert!(parse("unix:/tmp/sock").is_err());
        assert!(parse("https://0.0.0.0:443").is_err());
    }
}
