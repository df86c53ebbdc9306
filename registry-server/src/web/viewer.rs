//! Who is looking at a page: the user of the session cookie (with their groups, as the API's
//! rules see them), else anonymous; and where the browser reached us (base URL, TLS).

use super::cookies;
use super::csrf::Binding;
use crate::auth::Identity;
use crate::auth::sessions::Session;
use crate::http::AppState;
use crate::http::base_url::base_url;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

pub struct Viewer {
    pub who: Identity,
    pub session: Option<Session>,
    /// The session cookie as sent (to end the session at logout).
    pub session_cookie: Option<String>,
    /// The anonymous CSRF nonce cookie, when the browser has one.
    pub nonce: Option<String>,
    /// This registry's base URL as the browser sees it, ending in `/`.
    pub base: String,
    /// Its path: what every link of ours starts with.
    pub root: String,
    /// The page asked for, relative to `root` (path and query), to come back to after login.
    pub here: String,
}

impl Viewer {
    pub fn user(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.user.as_str())
    }

    /// Over TLS: the configured public URL is https, or the proxy in front says so.
    pub fn secure(&self) -> bool {
        self.base.starts_with("https://")
    }

    pub fn cookie_scope(&self) -> cookies::Scope<'_> {
        cookies::Scope {
            path: &self.root,
            secure: self.secure(),
        }
    }

    /// What this browser's CSRF tokens are bound to: its session, else its nonce cookie.
    pub fn binding(&self) -> Option<Binding<'_>> {
        match (&self.session, &self.nonce) {
            (Some(s), _) => Some(Binding::Session(&s.id)),
            (None, Some(n)) => Some(Binding::Nonce(n)),
            (None, None) => None,
        }
    }
}

/// The path part of a base URL (`/` or `/prefix/`).
pub fn root_of(base: &str) -> String {
    url::Url::parse(base)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| "/".to_owned())
}

async fn viewer(state: &AppState, headers: &HeaderMap, here: String) -> Result<Viewer, Response> {
    let base = base_url(&state.settings, headers);
    let session_cookie = cookies::get(headers, cookies::SESSION).map(str::to_owned);
    let session = match &session_cookie {
        None => None,
        Some(c) => state.web.sessions.resolve(c).await.map_err(|e| {
            tracing::error!(error = %e, "cannot read a web session");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry's storage is unavailable; try again",
            )
                .into_response()
        })?,
    };
    // A removed user's session ends with them (within the trust window): anonymous.
    let session = match session {
        Some(s) => match state.auth.still_exists(&s.user).await {
            Ok(true) => Some(s),
            Ok(false) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot check a web session's user");
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the registry's storage is unavailable; try again",
                )
                    .into_response());
            }
        },
        None => None,
    };
    let who = match &session {
        Some(s) => state.auth.identity(&s.user),
        None => Identity::anonymous(),
    };
    Ok(Viewer {
        who,
        session,
        session_cookie,
        nonce: cookies::get(headers, cookies::NONCE).map(str::to_owned),
        root: root_of(&base),
        base,
        here,
    })
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().trim_start_matches('/').to_owned())
            .unwrap_or_default();
        viewer(state, &parts.headers, here).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn roots() {
        assert_eq!(super::root_of("http://h:1/"), "/");
        assert_eq!(super::root_of("https://h/npm/"), "/npm/");
    }
}
