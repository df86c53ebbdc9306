//! Who the client is, believing `X-Forwarded-*` headers only from the proxies listed in
//! `server.trustProxy`. A request from anyone else has those headers removed before any handler
//! sees them, so the client address (login limits, token CIDRs) and the base URL
//! (`X-Forwarded-Host`/`-Proto`) can only come from a trusted proxy or the socket itself.

use super::Settings;
use crate::config::TrustedProxies;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The client's address as resolved here (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

const FORWARDED: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "forwarded",
];

fn hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client behind `peer`: the peer itself unless it is a trusted proxy; then the nearest
/// `X-Forwarded-For` hop (right to left) that is not a trusted proxy (as Express does).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for h in hops.into_iter().rev() {
        let Some(ip) = hop(h) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// Middleware: removes forwarded headers a trusted proxy did not send, and records the client.
pub async fn resolve(State(settings): State<Arc<Settings>>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let trusted = &settings.trusted_proxies;
    if !peer.is_some_and(|p| trusted.contains(p)) {
        for h in FORWARDED {
            req.headers_mut().remove(*h);
        }
    }
    if let Some(peer) = peer {
        let ip = client_ip(peer, req.headers(), trusted);
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A client that is not a proxy cannot choose its address.
        assert_eq!(
            client_ip(ip("198.51.100.7"), &xff("1.2.3.4"), &trusted),
            ip("198.51.100.7")
        );
        // Behind the load balancer: the hop it saw; hops the client made up stay to the left.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &xff("6.6.6.6, 203.0.113.9"), &trusted),
            ip("203.0.113.9")
        );
        // Proxies in a chain are skipped; garbage stops the walk at the last good hop.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &xff("203.0.113.9, 10.1.1.1"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), &xff("junk, 10.1.1.1"), &trusted),
            ip("10.1.1.1")
        );
        assert_eq!(client_ip(ip("10.0.0.5"), &HeaderMap::new(), &trusted), ip("10.0.0.5"));
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.7"), &HeaderMap::new(), &trusted),
            ip("198.51.100.7")
        );
    }
}
