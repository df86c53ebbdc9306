//! Prometheus metrics (`GET /metrics`): requests by route and status, latency histograms,
//! packument cache hits and misses, storage operation latency, uplink requests.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

impl ResultLabel {
    fn hit(hit: bool) -> Self {
        ResultLabel {
            result: if hit { "hit" } else { "miss" },
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UplinkLabels {
    pub uplink: String,
    pub outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: HistogramFamily<RouteLabel>,
    pub packument_cache: Family<ResultLabel, Counter>,
    pub tarball_cache: Family<ResultLabel, Counter>,
    pub storage_duration: HistogramFamily<OpLabel>,
    pub storage_errors: Family<OpLabel, Counter>,
    pub uplink_requests: Family<UplinkLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("npm_registry");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            HistogramFamily::<RouteLabel>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let packument_cache = Family::<ResultLabel, Counter>::default();
        let tarball_cache = Family::<ResultLabel, Counter>::default();
        let storage_duration = HistogramFamily::<OpLabel>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let storage_errors = Family::<OpLabel, Counter>::default();
        let uplink_requests = Family::<UplinkLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            request_duration.clone(),
        );
        registry.register(
            "packument_cache",
            "Packument cache lookups by result (hit, miss)",
            packument_cache.clone(),
        );
        registry.register(
            "tarball_cache",
            "In-memory tarball cache lookups by result (hit, miss)",
            tarball_cache.clone(),
        );
        registry.register(
            "storage_operation_duration_seconds",
            "Storage operation latency",
            storage_duration.clone(),
        );
        registry.register(
            "storage_errors",
            "Storage operations that failed",
            storage_errors.clone(),
        );
        registry.register(
            "uplink_requests",
            "Requests to uplinks by outcome",
            uplink_requests.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            packument_cache,
            tarball_cache,
            storage_duration,
            storage_errors,
            uplink_requests,
        }
    }
}

impl Metrics {
    pub fn cache(&self, hit: bool) {
        self.packument_cache.get_or_create(&ResultLabel::hit(hit)).inc();
    }

    pub fn tarball_cache(&self, hit: bool) {
        self.tarball_cache.get_or_create(&ResultLabel::hit(hit)).inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// A low-cardinality name for the kind of request, for labels.
pub fn route_label(method: &Method, path: &str) -> &'static str {
    match path {
        "/-/ping" => "ping",
        "/-/ready" => "ready",
        "/metrics" => "metrics",
        "/-/v1/search" => "search",
        "/-/whoami" | "/-/npm/v1/user" | "/-/v1/login" => "user",
        p if p.starts_with("/-/user/") => "user",
        p if p.starts_with("/-/package/") => "dist_tags",
        p if p.starts_with("/-/npm/v1/tokens") => "tokens",
        p if p.starts_with("/-/npm/v1/security/") => "audit",
        p if p.starts_with("/-/") => "other",
        _ if *method == Method::DELETE => "unpublish",
        _ if *method == Method::PUT => "publish",
        p if p.ends_with(".tgz") => "tarball",
        _ => "packument",
    }
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
    let route = route_label(req.method(), req.uri().path());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = next.run(req).await;
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

pub async fn endpoint(State(metrics): State<Arc<Metrics>>) -> Response {
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

    #[test]
    fn routes_are_classified() {
        assert_eq!(route_label(&Method::GET, "/lodash"), "packument");
        assert_eq!(route_label(&Method::GET, "/@s%2fp"), "packument");
        assert_eq!(route_label(&Method::GET, "/@s/p/-/p-1.0.0.tgz"), "tarball");
        assert_eq!(route_label(&Method::PUT, "/@s%2fp"), "publish");
        assert_eq!(route_label(&Method::DELETE, "/p/-rev/1-a"), "unpublish");
        assert_eq!(route_label(&Method::GET, "/-/package/p/dist-tags"), "dist_tags");
        assert_eq!(route_label(&Method::PUT, "/-/user/org.couchdb.user:a"), "user");
        let m = Metrics::default();
        m.cache(true);
        assert!(
            m.render()
                .contains("npm_registry_packument_cache_total{result=\"hit\"} 1")
        );
    }
}
