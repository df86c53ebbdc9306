//! The signing keys of the configured OIDC issuers: discovered from
//! `<issuer>/.well-known/openid-configuration` (its `jwks_uri`), cached for [`FRESH_FOR`], and
//! fetched again when a token names a key id the cached set lacks (an issuer's key rotation), at
//! most once per [`MIN_REFETCH`] per issuer, so that tokens with made-up key ids cannot make us
//! hammer the issuer. Only configured issuers are ever asked, so the cache is bounded by the
//! configuration; documents are read up to [`MAX_DOCUMENT`] bytes.

use super::OidcError;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const FRESH_FOR: Duration = Duration::from_secs(3600);
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
const MAX_DOCUMENT: usize = 512 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct KeySet {
    keys: Vec<Jwk>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Option<Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)),
            // Without a key id, only an issuer with a single key is unambiguous.
            None => self.keys.first().filter(|_| self.keys.len() == 1),
        }
        .cloned()
    }
}

pub struct IssuerKeys {
    http: reqwest::Client,
    sets: Mutex<HashMap<String, Arc<tokio::sync::Mutex<KeySet>>>>,
}

impl Default for IssuerKeys {
    fn default() -> Self {
        IssuerKeys {
            http: reqwest::Client::builder()
                .user_agent(concat!("npm-registry-server/", env!("CARGO_PKG_VERSION")))
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .expect("the HTTP client builds"),
            sets: Mutex::new(HashMap::new()),
        }
    }
}

/// The `jwks_uri` must be as trustworthy as the issuer: https, or http on a loopback host.
fn acceptable(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// The keys of a JWKS document that parse (one odd key does not hide the others).
pub fn parse_jwks(doc: &Value) -> Vec<Jwk> {
    doc.get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

impl IssuerKeys {
    async fn get_json(&self, issuer: &str, url: &str) -> Result<Value, OidcError> {
        let failed = |reason: String| OidcError::Issuer {
            issuer: issuer.to_owned(),
            reason,
        };
        let mut res = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failed(format!("{url}: {e}")))?;
        if !res.status().is_success() {
            return Err(failed(format!("{url} answered {}", res.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| failed(format!("{url}: {e}")))? {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(failed(format!("{url} sent more than {MAX_DOCUMENT} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| failed(format!("{url} is not JSON: {e}")))
    }

    async fn fetch(&self, issuer: &str) -> Result<Vec<Jwk>, OidcError> {
        let failed = |reason: String| OidcError::Issuer {
            issuer: issuer.to_owned(),
            reason,
        };
        let discovery = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let config = self.get_json(issuer, &discovery).await?;
        let said = config.get("issuer").and_then(Value::as_str).unwrap_or_default();
        if said.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(failed(format!("its discovery document names issuer {said:?}")));
        }
        let jwks_uri = config
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("its discovery document has no jwks_uri".into()))?;
        let parsed = url::Url::parse(jwks_uri).map_err(|e| failed(format!("jwks_uri {jwks_uri:?}: {e}")))?;
        if !acceptable(&parsed) {
            return Err(failed(format!("jwks_uri {jwks_uri:?} is not https")));
        }
        let keys = parse_jwks(&self.get_json(issuer, jwks_uri).await?);
        if keys.is_empty() {
            return Err(failed(format!("{jwks_uri} lists no usable keys")));
        }
        Ok(keys)
    }

    /// The issuer's key named `kid` (a fresh fetch when it is unknown, within the bounds above).
    pub async fn key(&self, issuer: &str, kid: Option<&str>) -> Result<Jwk, OidcError> {
        let set = self
            .sets
            .lock()
            .expect("not poisoned")
            .entry(issuer.to_owned())
            .or_default()
            .clone();
        let mut set = set.lock().await;
        let now = Instant::now();
        let fresh = set.fetched.is_some_and(|f| now.duration_since(f) < FRESH_FOR);
        if fresh && let Some(k) = set.find(kid) {
            return Ok(k);
        }
        let may_fetch = set.attempted.is_none_or(|a| now.duration_since(a) >= MIN_REFETCH);
        if may_fetch {
            set.attempted = Some(now);
            match self.fetch(issuer).await {
                Ok(keys) => {
                    set.keys = keys;
                    set.fetched = Some(now);
                }
                // Keys fetched before still verify what they signed.
                Err(e) if set.keys.is_empty() => return Err(e),
                Err(e) => {
                    tracing::warn!(issuer, error = %e, "OIDC issuer keys not refreshed; using the ones fetched before")
                }
            }
        }
        set.find(kid).ok_or_else(|| OidcError::UnknownKey {
            issuer: issuer.to_owned(),
            kid: kid.unwrap_or("(none)").to_owned(),
        })
    }
}
