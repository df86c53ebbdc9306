//! How pages are answered: the headers every page carries (a strict Content-Security-Policy: our
//! own scripts and styles only, no inline script, images from us or inline; no framing; no caching of a
//! page that depends on who is looking), redirects, and error pages whose status comes from the
//! one error mapping (`http::error`).

use super::chrome::Chrome;
use crate::http::error::ApiError;
use crate::registry::RegistryError;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Cookie"));
    res
}

/// A rendered template; a template that fails to render is a bug, answered with a bare 500.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// `303 See Other`: where a form post sends the browser next.
pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `301`: an old (Verdaccio) address of one of our pages.
pub fn moved(location: &str) -> Response {
    let mut res = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

#[derive(Template)]
#[template(path = "problem.html")]
pub struct Problem<'a> {
    pub chrome: &'a Chrome,
    pub status: u16,
    pub heading: &'a str,
    pub message: &'a str,
    /// Offer to log in (an anonymous viewer asked for something that needs it).
    pub login: bool,
}

pub fn problem(chrome: &Chrome, status: StatusCode, heading: &str, message: &str) -> Response {
    let login = status == StatusCode::UNAUTHORIZED && chrome.user.is_none();
    page(
        status,
        &Problem {
            chrome,
            status: status.as_u16(),
            heading,
            message,
            login,
        },
    )
}

/// A registry failure as a page, with the API's status for it. Server errors say nothing of
/// their cause (it is logged).
pub fn failure(chrome: &Chrome, e: RegistryError) -> Response {
    let api = ApiError::from(e);
    let (heading, message) = match api.status {
        StatusCode::NOT_FOUND => ("Not found", api.message.as_str()),
        StatusCode::UNAUTHORIZED => ("Log in to see this", "This package is visible to logged-in users only."),
        StatusCode::FORBIDDEN => ("Not allowed", api.message.as_str()),
        s if s.is_server_error() => (
            "Something went wrong",
            "The registry could not answer this request. Try again in a moment.",
        ),
        _ => ("Cannot show this", api.message.as_str()),
    };
    problem(chrome, api.status, heading, message)
}

/// The home page when `web.enable` is false: the API stays, the UI answers 404.
pub async fn disabled() -> ApiError {
    ApiError::not_found("the web interface is turned off on this registry (web.enable: false)")
}
