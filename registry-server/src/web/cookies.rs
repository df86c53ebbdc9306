//! The UI's two cookies, read from `Cookie` and written as `Set-Cookie`: the session, and the
//! anonymous nonce the login form's CSRF token is bound to. Both `HttpOnly` and `SameSite=Lax`,
//! `Secure` when the browser reached us over TLS, scoped to the registry's path.

use axum::http::{HeaderMap, HeaderValue, header};

pub const SESSION: &str = "npmreg_session";
pub const NONCE: &str = "npmreg_csrf";

/// The value of cookie `name`, if the request carries it.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Where a cookie is sent and how.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// The registry's path (`/`, or `/npm/` behind a prefix).
    pub path: &'a str,
    pub secure: bool,
}

/// A `Set-Cookie` value; `max_age: None` lasts as long as the browser session, `Some(0)` deletes.
pub fn set(name: &str, value: &str, scope: &Scope, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={}; HttpOnly; SameSite=Lax", scope.path);
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={}", age.max(0)));
    }
    if scope.secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are URL-safe")
}

pub fn clear(name: &str, scope: &Scope) -> HeaderValue {
    set(name, "", scope, Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; npmreg_session=123.abc".parse().unwrap());
        h.append(header::COOKIE, "npmreg_csrf=xyz".parse().unwrap());
        assert_eq!(get(&h, SESSION), Some("123.abc"));
        assert_eq!(get(&h, NONCE), Some("xyz"));
        assert_eq!(get(&h, "b"), None);
        let plain = Scope {
            path: "/",
            secure: false,
        };
        assert_eq!(
            set(SESSION, "v", &plain, Some(60)),
            "npmreg_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        let tls = Scope {
            path: "/npm/",
            secure: true,
        };
        assert_eq!(
            clear(SESSION, &tls),
            "npmreg_session=; Path=/npm/; HttpOnly; SameSite=Lax; Max-Age=0; Secure"
        );
        assert_eq!(
            set(NONCE, "n", &tls, None),
            "npmreg_csrf=n; Path=/npm/; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
