//! The HTTP layer: a thin axum router over [`Registry`]. Fixed endpoints live under `/-/`, each
//! routed once with its metrics label; every other path is a package URL, parsed by
//! [`path::parse`] and dispatched by method in [`route`], which labels it by what it parsed.
//! Pages of a UI on top (the web UI, which knows this layer; this one does not know it) are
//! handed in by the application as [`Pages`] and routed here too, each with its label.

mod audit;
pub(crate) mod base_url;
mod body;
pub mod body_budget;
mod dist_tags;
pub(crate) mod encoding;
pub mod error;
pub mod forwarded;
mod health;
pub use health::ShuttingDown;
pub(crate) mod identity;
mod metrics;
mod packument;
pub mod path;
mod publish;
mod search;
mod tarball;
mod tokens;
mod trace;
mod trust;
mod user;

use crate::metrics::Metrics;
use crate::package::PackageName;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, delete, get, post, put};
use error::{ApiError, ApiResult};
use path::PackagePath;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};

pub use crate::app::AppState;

impl axum::extract::FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

/// A route added by a UI on top: path, metrics label, handler.
pub type Route = (&'static str, &'static str, MethodRouter<AppState>);

/// What a UI on top adds to the router: its routes, and a layer around the package routes (a
/// browser asking for a package's URL is sent to its page).
pub struct Pages {
    pub routes: Vec<Route>,
    pub around_packages: Box<dyn FnOnce(Router<AppState>) -> Router<AppState>>,
}

impl Pages {
    /// No pages: the API only.
    pub fn none() -> Pages {
        Pages {
            routes: Vec::new(),
            around_packages: Box::new(|r| r),
        }
    }
}

/// Request-independent HTTP settings taken from the config once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub public_url: Option<String>,
    pub url_prefix: String,
    pub max_body_size: u64,
    /// Whose `X-Forwarded-*` headers are believed (`forwarded`).
    pub trusted_proxies: crate::config::TrustedProxies,
}

/// How fixed endpoints are routed: each with the label its requests are counted under.
trait Endpoints {
    fn endpoint(self, path: &str, label: &'static str, route: MethodRouter<AppState>) -> Self;
}

impl Endpoints for Router<AppState> {
    #[allow(clippy::disallowed_methods)] // the one place routes are added
    fn endpoint(self, path: &str, label: &'static str, route: MethodRouter<AppState>) -> Self {
        self.route(path, metrics::labelled(label, route))
    }
}

pub fn router(state: AppState, pages: Pages) -> Router {
    let metrics = state.metrics.clone();
    let settings = state.settings.clone();
    let packages = (pages.around_packages)(Router::new().fallback(package_route)).with_state(state.clone());
    let ui = pages
        .routes
        .into_iter()
        .fold(Router::new(), |r, (path, label, route)| r.endpoint(path, label, route));
    ui.endpoint("/metrics", "metrics", get(metrics::endpoint))
        .endpoint("/-/ping", "ping", get(health::ping))
        .endpoint("/-/ready", "ready", get(health::ready))
        .endpoint("/-/v1/search", "search", get(search::search))
        .endpoint("/-/package/{*rest}", "dist_tags", any(dist_tags::dispatch))
        .endpoint("/-/user/{couch}", "user", put(user::put_user).get(user::get_user))
        .endpoint("/-/user/{couch}/-rev/{rev}", "user", put(user::put_user_rev))
        .endpoint("/-/user/token/{token}", "user", delete(user::logout))
        .endpoint("/-/whoami", "user", get(user::whoami))
        .endpoint("/-/npm/v1/user", "user", get(user::profile).post(user::profile_update))
        .endpoint("/-/v1/login", "user", post(user::web_login))
        .endpoint("/-/v1/done", "user", get(user::web_login_done))
        .endpoint("/-/npm/v1/tokens", "tokens", get(tokens::list).post(tokens::create))
        .endpoint("/-/npm/v1/tokens/token/{key}", "tokens", delete(tokens::revoke))
        .endpoint("/-/npm/v1/security/{*rest}", "audit", post(audit::forward))
        .endpoint("/-/npm/v1/keys", "keys", get(trust::keys))
        .endpoint(
            "/-/npm/v1/attestations/{*spec}",
            "attestations",
            get(trust::attestations),
        )
        .endpoint(
            "/-/npm/v1/oidc/token/exchange/package/{*name}",
            "oidc",
            post(trust::exchange),
        )
        .endpoint("/-/{*rest}", "other", any(unknown_endpoint))
        .fallback_service(packages)
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(trace::with_request_id))
        .layer(axum::middleware::from_fn_with_state(settings, forwarded::resolve))
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
        .layer(trace::layer())
        .layer(PropagateRequestIdLayer::new(trace::REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(trace::REQUEST_ID.clone(), trace::NextRequestId))
        .with_state(state)
}

async fn unknown_endpoint(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

async fn package_route(
    State(state): State<AppState>,
    caller: Result<identity::Caller, ApiError>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    route(state, caller, method, uri, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// A package URL request's metrics label, by what it asks for.
fn route_label(method: &Method, target: Option<&PackagePath>) -> &'static str {
    match (method, target) {
        (&Method::PUT, _) => "publish",
        (&Method::DELETE, _) => "unpublish",
        (_, Some(PackagePath::Tarball(..) | PackagePath::TarballRevision(..))) => "tarball",
        _ => "packument",
    }
}

/// The package a request would change, when its method changes one.
fn changed_package(method: &Method, target: &PackagePath) -> Option<PackageName> {
    match (method, target) {
        (&Method::PUT, PackagePath::Packument(n) | PackagePath::Revision(n, _) | PackagePath::Version(n, _)) => {
            Some(n.clone())
        }
        _ => None,
    }
}

async fn route(
    state: AppState,
    caller: Result<identity::Caller, ApiError>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let target = path::parse(uri.path());
    metrics::set_route(route_label(&method, target.as_ref().ok()));
    // Everything that refuses a request is decided from its headers before its body is read,
    // and answered so that the client shows the reason (`body::refuse`).
    let (target, who) = match (target.map_err(ApiError::from), caller) {
        (Ok(t), Ok(c)) => (t, c.0),
        (Err(e), _) | (_, Err(e)) => return Err(body::refuse(&headers, body, e).await),
    };
    if let Some(name) = changed_package(&method, &target)
        && let Err(e) = state.registry.authorize_change(&name, &who)
    {
        return Err(body::refuse(&headers, body, e.into()).await);
    }
    let head = method == Method::HEAD;
    match (method, target) {
        (Method::GET | Method::HEAD, PackagePath::Packument(name)) => {
            packument::get(&state, &name, &who, &headers, uri.query(), head).await
        }
        (Method::GET | Method::HEAD, PackagePath::Version(name, spec)) => {
            packument::version(&state, &name, &spec, &who, &headers).await
        }
        (Method::GET | Method::HEAD, PackagePath::Tarball(name, file)) => {
            tarball::get(&state, &name, &file, &who, head).await
        }
        (Method::PUT, PackagePath::Packument(name)) => publish::put(&state, &name, None, &who, &headers, body).await,
        (Method::PUT, PackagePath::Revision(name, rev)) => {
            publish::put(&state, &name, Some(&rev), &who, &headers, body).await
        }
        (Method::PUT, PackagePath::Version(name, tag)) => {
            // Verdaccio's legacy `PUT /:pkg/:tag` with a JSON string body.
            dist_tags::put_tag(&state, &name, &tag, &who, &headers, body).await
        }
        (Method::DELETE, PackagePath::Revision(name, rev)) => publish::delete_package(&state, &name, &rev, &who).await,
        (Method::DELETE, PackagePath::TarballRevision(name, file, rev)) => {
            publish::delete_tarball(&state, &name, &file, &rev, &who).await
        }
        (m, _) => Err(ApiError::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} is not supported on {}", uri.path()),
        )),
    }
}
