//! Old addresses that land on our pages: Verdaccio's (`/-/web/detail/<name>`, its home under
//! `/-/web/`, its favicon and logo under `/-/static/`), and a browser opening a package's API URL
//! (`GET /<name>` asking for HTML, which npm and the other clients never do).

use super::respond::moved;
use super::viewer::root_of;
use super::{Web, viewer::Viewer};
use crate::http::AppState;
use crate::http::base_url::base_url;
use crate::http::path::{self, PackagePath};
use crate::package::PackageName;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The package a Verdaccio UI path names: `detail/<name>[/v/<version>]`.
fn verdaccio_package(rest: &str) -> Option<PackageName> {
    let path = rest.strip_prefix("detail/")?;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let name = match segs.as_slice() {
        [scope, name, ..] if scope.starts_with('@') => format!("{scope}/{name}"),
        [name, ..] => (*name).to_owned(),
        [] => return None,
    };
    PackageName::parse(&name).ok()
}

pub async fn verdaccio_home(viewer: Viewer) -> Response {
    moved(&viewer.root)
}

/// `/-/web/<anything>`: a package's detail page lands on ours, the rest on the home page.
pub async fn verdaccio_web(viewer: Viewer, Path(rest): Path<String>) -> Response {
    match verdaccio_package(&rest) {
        Some(name) => moved(&format!("{}-/ui/package/{name}", viewer.root)),
        None => moved(&viewer.root),
    }
}

/// `/-/static/favicon.ico` and Verdaccio's logo path; its other files (its UI's scripts) are gone.
pub async fn verdaccio_static(State(web): State<Arc<Web>>, viewer: Viewer, Path(file): Path<String>) -> Response {
    let asset = |f: &str| format!("{}-/ui/assets/{f}", viewer.root);
    let image = file.rsplit_once('.').is_some_and(|(_, ext)| {
        ["png", "svg", "jpg", "jpeg", "gif", "webp", "ico"].contains(&ext.to_ascii_lowercase().as_str())
    });
    match (file.as_str(), web.assets.logo_file()) {
        ("favicon.ico", _) => moved(&asset(web.assets.favicon_file())),
        (f, Some(logo)) if image && !f.contains('/') => moved(&asset(logo)),
        _ => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// A layer around the package routes: a browser asking for `GET /<name>` as HTML is sent to the
/// package's page; everyone else (npm asks for JSON) goes on to the API.
pub async fn browser_to_page(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && let Ok(PackagePath::Packument(name)) = path::parse(req.uri().path())
        && let Some(page) = package_redirect(&state, req.headers(), &name)
    {
        return page;
    }
    next.run(req).await
}

fn package_redirect(state: &AppState, headers: &HeaderMap, name: &PackageName) -> Option<Response> {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !state.web.enabled || !html {
        return None;
    }
    let root = root_of(&base_url(&state.settings, headers));
    let mut res = (StatusCode::SEE_OTHER, "").into_response();
    let location = format!("{root}-/ui/package/{name}");
    res.headers_mut().insert(header::LOCATION, location.parse().ok()?);
    res.headers_mut()
        .insert(header::VARY, header::ACCEPT.as_str().parse().ok()?);
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::verdaccio_package;

    #[test]
    fn verdaccio_detail_paths() {
        let name = |p: &str| verdaccio_package(p).map(|n| n.to_string());
        assert_eq!(name("detail/lodash").as_deref(), Some("lodash"));
        assert_eq!(name("detail/@s/p").as_deref(), Some("@s/p"));
        assert_eq!(name("detail/@s/p/v/1.0.0").as_deref(), Some("@s/p"));
        assert_eq!(name("detail/lodash/v/4.0.0").as_deref(), Some("lodash"));
        assert_eq!(name("login"), None);
        assert_eq!(name("detail/"), None);
    }
}
