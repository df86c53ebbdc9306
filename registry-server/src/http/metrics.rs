//! `GET /metrics`, and the middleware that counts and times every request by route. The route's
//! label is named where the route is: with each fixed endpoint in the router ([`labelled`]), and
//! by the package dispatcher for the package URL it parsed ([`set_route`]). A request no route
//! labels is counted as `other`.

use super::AppState;
use crate::metrics::{Metrics, RequestLabels, RouteLabel};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

tokio::task_local! {
    /// The label of the request this task is handling: a thread-local slot, no allocation.
    static ROUTE: Cell<&'static str>;
}

/// Labels the requests `route` handles.
pub fn labelled(label: &'static str, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(axum::middleware::map_request(move |req: Request| async move {
        set_route(label);
        req
    }))
}

/// Labels the request being handled (outside [`track`], e.g. in a unit test, nothing happens).
pub fn set_route(label: &'static str) {
    let _ = ROUTE.try_with(|r| r.set(label));
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// Middleware counting and timing every request.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let start = Instant::now();
    let (route, res) = ROUTE
        .scope(Cell::new("other"), async {
            let res = next.run(req).await;
            (ROUTE.with(Cell::get), res)
        })
        .await;
    metrics
        .request_duration
        .get_or_create(&RouteLabel { route })
        .observe(start.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: res.status().as_u16(),
        })
        .inc();
    res
}

pub async fn endpoint(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    state.registry.report_memory();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, EMBEDDED_DEFAULT};
    use axum::body::Body;
    use tower::Service;

    async fn call(app: &mut axum::Router, method: Method, path: &str) -> Response {
        let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        app.call(req).await.unwrap()
    }

    #[tokio::test]
    async fn routes_are_labelled_where_they_are_routed() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(EMBEDDED_DEFAULT, dir.path()).unwrap().config;
        let mut app = crate::app::build(&config).await.unwrap();
        let cases = [
            (Method::GET, "/lodash", "packument"),
            (Method::GET, "/@s%2fp", "packument"),
            (Method::GET, "/@s/p/-/p-1.0.0.tgz", "tarball"),
            (Method::PUT, "/@s%2fp", "publish"),
            (Method::DELETE, "/p/-rev/1-a", "unpublish"),
            (Method::GET, "/-/package/p/dist-tags", "dist_tags"),
            (Method::PUT, "/-/user/org.couchdb.user:a", "user"),
            (Method::GET, "/-/ping", "ping"),
            (Method::GET, "/-/no-such-endpoint", "other"),
        ];
        for (method, path, _) in &cases {
            call(&mut app, method.clone(), path).await;
        }
        let res = call(&mut app, Method::GET, "/metrics").await;
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        for (method, path, label) in cases {
            let wanted = format!("route=\"{label}\",method=\"{method}\"");
            assert!(text.contains(&wanted), "{method} {path}: no {wanted} in\n{text}");
        }
    }
}
