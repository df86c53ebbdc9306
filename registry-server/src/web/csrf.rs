//! Cross-site request forgery defences for the UI's forms, both required: a token bound to the
//! session (or, before login, to a nonce cookie: a signed double submit), signed with a key kept
//! in storage so that every replica checks every other's tokens; and an `Origin` (else `Referer`)
//! that names this registry.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token is bound to.
pub enum Binding<'a> {
    /// A logged-in browser: its session's id.
    Session(&'a str),
    /// Before login: the nonce cookie.
    Nonce(&'a str),
}

fn mac(key: &[u8], binding: &Binding) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    match binding {
        Binding::Session(id) => m.update(format!("session\0{id}").as_bytes()),
        Binding::Nonce(n) => m.update(format!("nonce\0{n}").as_bytes()),
    }
    m
}

pub fn token(key: &[u8], binding: &Binding) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, binding).finalize().into_bytes())
}

/// Whether `token` was made for `binding` with `key` (in constant time).
pub fn verify(key: &[u8], binding: &Binding, token: &str) -> bool {
    let Ok(sent) = URL_SAFE_NO_PAD.decode(token) else {
        return false;
    };
    mac(key, binding).verify_slice(&sent).is_ok()
}

/// `scheme://host[:port]` of a base URL.
fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.origin().ascii_serialization())
}

/// Whether a form post came from one of our pages: its `Origin` (or, without one, `Referer`) is
/// this registry's. Browsers send `Origin` on every cross-site POST, so a request with neither
/// is not a browser's cross-site one; the token still has to match.
pub fn same_origin(headers: &HeaderMap, base_url: &str) -> bool {
    let Some(ours) = origin_of(base_url) else {
        return false;
    };
    let sent = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match (sent(header::ORIGIN), sent(header::REFERER)) {
        (Some(origin), _) => origin == ours,
        (None, Some(referer)) => origin_of(referer).is_some_and(|o| o == ours),
        (None, None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_and_signed() {
        let key = [1u8; 32];
        let t = token(&key, &Binding::Session("s1"));
        assert!(verify(&key, &Binding::Session("s1"), &t));
        assert!(!verify(&key, &Binding::Session("s2"), &t), "another session");
        assert!(!verify(&key, &Binding::Nonce("s1"), &t), "another kind of binding");
        assert!(!verify(&[2u8; 32], &Binding::Session("s1"), &t), "another key");
        assert!(!verify(&key, &Binding::Session("s1"), ""));
        assert!(!verify(&key, &Binding::Session("s1"), "%%%"));
    }

    #[test]
    fn origins() {
        let base = "http://127.0.0.1:4873/npm/";
        let with = |k: header::HeaderName, v: &str| {
            let mut h = HeaderMap::new();
            h.insert(k, v.parse().unwrap());
            h
        };
        assert!(same_origin(&with(header::ORIGIN, "http://127.0.0.1:4873"), base));
        assert!(!same_origin(&with(header::ORIGIN, "http://evil.example"), base));
        assert!(!same_origin(&with(header::ORIGIN, "null"), base));
        assert!(!same_origin(&with(header::ORIGIN, "https://127.0.0.1:4873"), base));
        assert!(same_origin(
            &with(header::REFERER, "http://127.0.0.1:4873/npm/-/ui/login"),
            base
        ));
        assert!(!same_origin(&with(header::REFERER, "http://evil.example/x"), base));
        assert!(same_origin(&HeaderMap::new(), base));
    }
}
