//! This registry's base URL as the client sees it, for `dist.tarball`: the configured public URL,
//! else the request's (reverse-proxy headers first) plus `url_prefix`. Forwarded headers reach
//! here only from a proxy in `server.trustProxy` (`forwarded` removes all others).

use super::Settings;
use axum::http::{HeaderMap, HeaderValue, header};

fn first(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    let v = v.split(',').next()?.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn safe_host(h: &str) -> bool {
    h.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c))
}

/// `Vary` for a response that holds the base URL: the forwarded headers it is taken from, unless
/// `public_url` fixes it.
pub fn vary(settings: &Settings, others: &'static str) -> HeaderValue {
    if settings.public_url.is_some() {
        HeaderValue::from_static(others)
    } else {
        HeaderValue::from_str(&format!("{others}, X-Forwarded-Host, X-Forwarded-Proto")).expect("ASCII")
    }
}

pub fn base_url(settings: &Settings, headers: &HeaderMap) -> String {
    if let Some(u) = &settings.public_url {
        return u.clone();
    }
    let proto = first(headers, "x-forwarded-proto")
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "http".to_owned());
    let host = first(headers, "x-forwarded-host")
        .filter(|h| safe_host(h))
        .or_else(|| first(headers, header::HOST.as_str()).filter(|h| safe_host(h)))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{proto}://{host}{}", settings.url_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public_url: Option<&str>) -> Settings {
        Settings {
            public_url: public_url.map(str::to_owned),
            url_prefix: "/npm/".into(),
            max_body_size: 1,
            trusted_proxies: Default::default(),
        }
    }

    #[test]
    fn from_headers_or_config() {
        let mut h = HeaderMap::new();
        h.insert("host", "reg.local:4873".parse().unwrap());
        assert_eq!(base_url(&settings(None), &h), "http://reg.local:4873/npm/");
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("x-forwarded-host", "npm.example.com".parse().unwrap());
        assert_eq!(base_url(&settings(None), &h), "https://npm.example.com/npm/");
        assert_eq!(
            base_url(&settings(Some("https://x.example/")), &h),
            "https://x.example/"
        );
        h.insert("x-forwarded-host", "evil\"host".parse().unwrap());
        assert_eq!(base_url(&settings(None), &h), "https://reg.local:4873/npm/");
    }
}
