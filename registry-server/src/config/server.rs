//! `server`: connection timeouts and limits, and the proxies whose forwarded headers are believed.

use super::{ConfigError, duration_value, invalid, positive_duration, size_value};
use ipnet::IpNet;
use registry_config::{ServerFile, defaults};
use serde_yaml::Value;
use std::net::IpAddr;
use std::time::Duration;

/// How connections are served; every value bounds what one client can hold.
#[derive(Debug, Clone)]
pub struct Connections {
    /// From a connection's first byte (or its previous response) to the end of a request's headers.
    pub headers_timeout: Duration,
    /// How long a connection may wait for its next request.
    pub keep_alive_timeout: Duration,
    /// How long a request or response body may move slower than 1 KiB/s.
    pub body_timeout: Duration,
    pub max_connections: usize,
    /// Connections one address may hold (behind a trusted proxy: requests in progress).
    pub max_connections_per_address: usize,
    /// Request body bytes held by all requests together.
    pub max_body_bytes_in_flight: u64,
}

/// `server.shutdown`: what SIGTERM does (see `serve::drain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shutdown {
    /// How long the server keeps serving, reporting not-ready, before it stops accepting.
    pub drain: Duration,
    /// How long requests in flight then have to finish before the process exits anyway.
    pub timeout: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            drain: defaults::SHUTDOWN_DRAIN,
            timeout: defaults::SHUTDOWN_TIMEOUT,
        }
    }
}

/// `server.shutdown`, read before [`resolve`] takes the section.
pub fn resolve_shutdown(raw: Option<&ServerFile>) -> Result<Shutdown, ConfigError> {
    let raw = raw.and_then(|s| s.shutdown.clone()).unwrap_or_default();
    Ok(Shutdown {
        drain: duration_value("server.shutdown.drain", raw.drain, defaults::SHUTDOWN_DRAIN)?,
        timeout: positive_duration("server.shutdown.timeout", raw.timeout, defaults::SHUTDOWN_TIMEOUT)?,
    })
}

/// The proxies (load balancers) whose `X-Forwarded-*` headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Express's names for address ranges (Verdaccio passes `trustProxy` to Express).
fn named_range(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "loopback" => Some(&["127.0.0.0/8", "::1/128"]),
        "linklocal" => Some(&["169.254.0.0/16", "fe80::/10"]),
        "uniquelocal" => Some(&["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]),
        _ => None,
    }
}

fn parse_trusted(key: &str, v: Value) -> Result<TrustedProxies, ConfigError> {
    let entries: Vec<String> = match v {
        Value::String(s) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Sequence(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.trim().to_owned()),
                _ => Err(invalid(key, "each entry must be an address, a CIDR or a range name")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                key,
                "list the proxies' addresses or CIDRs (trusting every hop, or a hop count, would let any client choose its address)",
            ));
        }
    };
    let mut nets = Vec::new();
    for e in entries {
        if let Some(range) = named_range(&e) {
            nets.extend(range.iter().map(|r| r.parse::<IpNet>().expect("a valid constant")));
        } else if let Ok(net) = e.parse::<IpNet>() {
            nets.push(net);
        } else if let Ok(ip) = e.parse::<IpAddr>() {
            nets.push(IpNet::from(ip));
        } else {
            return Err(invalid(
                key,
                format!("{e:?} is not an address, a CIDR, loopback, linklocal or uniquelocal"),
            ));
        }
    }
    Ok(TrustedProxies(nets))
}

pub fn resolve(
    raw: Option<ServerFile>,
    max_body_size: u64,
    warnings: &mut Vec<String>,
) -> Result<(Connections, TrustedProxies), ConfigError> {
    let raw = raw.unwrap_or_default();
    for key in raw.other.keys() {
        warnings.push(format!(
            "config key `server.{key}` is a Verdaccio setting this server does not use; ignored"
        ));
    }
    let trusted = match raw.trust_proxy {
        None => TrustedProxies::default(),
        Some(v) => parse_trusted("server.trustProxy", v)?,
    };
    let max_connections = match raw.max_connections {
        None => defaults::MAX_CONNECTIONS,
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid("server.maxConnections", "must be a positive number"))?,
        Some(_) => return Err(invalid("server.maxConnections", "must be a positive number")),
    };
    let per_address = match raw.max_connections_per_address {
        None => defaults::MAX_CONNECTIONS_PER_ADDRESS.min(max_connections),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid("server.maxConnectionsPerAddress", "must be a positive number"))?,
        Some(_) => return Err(invalid("server.maxConnectionsPerAddress", "must be a positive number")),
    };
    let key = "server.maxBodyBytesInFlight";
    let in_flight = match raw.max_body_bytes_in_flight {
        None => defaults::MAX_BODY_BYTES_IN_FLIGHT.max(max_body_size),
        v => {
            let n = size_value(key, v, 0)?;
            if n < max_body_size {
                return Err(invalid(
                    key,
                    format!(
                        "must be at least max_body_size ({max_body_size} bytes), or no publish of that size could be read"
                    ),
                ));
            }
            n
        }
    };
    let connections = Connections {
        headers_timeout: positive_duration("server.headersTimeout", raw.headers_timeout, defaults::HEADERS_TIMEOUT)?,
        keep_alive_timeout: positive_duration(
            "server.keepAliveTimeout",
            raw.keep_alive_timeout,
            defaults::KEEP_ALIVE_TIMEOUT,
        )?,
        body_timeout: positive_duration("server.bodyTimeout", raw.body_timeout, defaults::BODY_TIMEOUT)?,
        max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
        max_connections_per_address: usize::try_from(per_address).unwrap_or(usize::MAX),
        max_body_bytes_in_flight: in_flight,
    };
    Ok((connections, trusted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(yaml: &str) -> Result<(Connections, TrustedProxies), ConfigError> {
        let raw: ServerFile = serde_yaml::from_str(yaml).unwrap();
        resolve(Some(raw), 10 << 20, &mut Vec::new())
    }

    #[test]
    fn trusted_proxies_take_addresses_cidrs_and_express_names() {
        let (_, t) = server("trustProxy: '10.0.0.0/16, 192.0.2.7 loopback'").unwrap();
        for ip in ["10.0.200.1", "192.0.2.7", "127.0.0.1", "::1", "::ffff:10.0.0.9"] {
            assert!(t.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(!t.contains("10.1.0.1".parse().unwrap()));
        let (_, t) = server("trustProxy: [uniquelocal]").unwrap();
        assert!(t.contains("172.20.1.1".parse().unwrap()));
        for bad in ["trustProxy: true", "trustProxy: 1", "trustProxy: 'nowhere'"] {
            let e = server(bad).unwrap_err().to_string();
            assert!(e.contains("server.trustProxy"), "{e}");
        }
    }

    #[test]
    fn limits_default_and_are_checked() {
        let (c, t) = server("{}").unwrap();
        assert!(t.is_empty());
        assert_eq!(c.keep_alive_timeout, defaults::KEEP_ALIVE_TIMEOUT);
        assert_eq!(c.max_body_bytes_in_flight, defaults::MAX_BODY_BYTES_IN_FLIGHT);
        let (c, _) =
            server("keepAliveTimeout: 5\nheadersTimeout: 2s\nmaxConnections: 10\nmaxBodyBytesInFlight: 20mb").unwrap();
        assert_eq!(c.keep_alive_timeout, Duration::from_secs(5));
        assert_eq!(c.headers_timeout, Duration::from_secs(2));
        assert_eq!((c.max_connections, c.max_body_bytes_in_flight), (10, 20 << 20));
        assert_eq!(c.max_connections_per_address, 10, "the default, at most maxConnections");
        let (c, _) = server("{}").unwrap();
        assert_eq!(
            c.max_connections_per_address as u64,
            defaults::MAX_CONNECTIONS_PER_ADDRESS
        );
        let (c, _) = server("maxConnectionsPerAddress: 8").unwrap();
        assert_eq!(c.max_connections_per_address, 8);
        for (bad, key) in [
            ("maxConnectionsPerAddress: 0", "server.maxConnectionsPerAddress"),
            ("maxBodyBytesInFlight: 1mb", "server.maxBodyBytesInFlight"),
            ("bodyTimeout: 0", "server.bodyTimeout"),
            ("maxConnections: -3", "server.maxConnections"),
        ] {
            let e = server(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn shutdown_defaults_and_is_checked() {
        let read = |yaml: &str| {
            let raw: ServerFile = serde_yaml::from_str(yaml).unwrap();
            resolve_shutdown(Some(&raw))
        };
        assert_eq!(resolve_shutdown(None).unwrap(), Shutdown::default());
        assert_eq!(read("{}").unwrap().drain, defaults::SHUTDOWN_DRAIN);
        let s = read("shutdown: { drain: 0, timeout: 2m }").unwrap();
        assert_eq!((s.drain, s.timeout), (Duration::ZERO, Duration::from_secs(120)));
        for (bad, key) in [
            ("shutdown: { timeout: 0 }", "server.shutdown.timeout"),
            ("shutdown: { drain: soon }", "server.shutdown.drain"),
        ] {
            let e = read(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert!(serde_yaml::from_str::<ServerFile>("shutdown: { drian: 5s }").is_err());
    }
}
