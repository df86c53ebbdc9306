//! Metrics, health endpoints and JSON logs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Reconcile metrics, exported at `/metrics`.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<Vec<(String, String)>, Counter>,
    writes: Family<Vec<(String, String)>, Counter>,
    writes_sent: std::sync::atomic::AtomicU64,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("npm_registry_operator");
        let reconciles = Counter::default();
        let failures = Family::<Vec<(String, String)>, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by error kind",
            failures.clone(),
        );
        registry.register("reconcile_duration_seconds", "Time a reconcile takes", duration.clone());
        let writes = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "child_writes",
            "Writes sent for children (apply, delete), by kind and outcome; a quiet cluster adds none",
            writes.clone(),
        );
        Metrics {
            registry,
            reconciles,
            failures,
            writes,
            writes_sent: Default::default(),
            duration,
        }
    }
}

impl Metrics {
    /// Counts a reconcile and times it until the guard drops.
    pub fn reconcile(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer {
            metrics: self,
            start: Instant::now(),
        }
    }

    pub fn failure(&self, kind: &str) {
        self.failures
            .get_or_create(&vec![("error".to_string(), kind.to_string())])
            .inc();
    }

    pub fn reconciles(&self) -> u64 {
        self.reconciles.get()
    }

    /// Counts one write request for a child of `kind`.
    pub fn write(&self, kind: &str, outcome: crate::apply::Outcome) {
        let outcome = format!("{outcome:?}").to_lowercase();
        self.writes
            .get_or_create(&vec![
                ("kind".to_string(), kind.to_string()),
                ("outcome".to_string(), outcome),
            ])
            .inc();
        self.writes_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Write requests sent for children so far.
    pub fn writes(&self) -> u64 {
        self.writes_sent.load(Ordering::Relaxed)
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Observes the reconcile duration when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics.duration.observe(self.start.elapsed().as_secs_f64());
    }
}

/// Shared with the HTTP server: readiness flips once the controller runs (this replica leads).
#[derive(Clone, Default)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        health.metrics.render(),
    )
}

/// Ready once the watches are running; a standby replica (not the leader) is alive but not ready.
async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not leading")
    }
}

/// Binds the metrics and health address; failing to is fatal (a liveness probe on a port
/// nobody serves would restart the pod forever with no clue why).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for /metrics, /healthz and /readyz: {e}"))
}

pub async fn serve(listener: tokio::net::TcpListener, health: Health) -> std::io::Result<()> {
    axum::serve(listener, router(health)).await
}

/// JSON logs to stdout; `RUST_LOG` overrides the default level.
pub fn init_logs(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(filter)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_expose_count_errors_and_duration() {
        let metrics = Metrics::default();
        drop(metrics.reconcile());
        metrics.failure("apply");
        metrics.write("Deployment", crate::apply::Outcome::Created);
        metrics.write("Deployment", crate::apply::Outcome::NoOp);
        assert_eq!(metrics.writes(), 2);
        let text = metrics.render();
        assert!(text.contains("npm_registry_operator_reconciles_total 1"), "{text}");
        assert!(
            text.contains("npm_registry_operator_reconcile_errors_total{error=\"apply\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("npm_registry_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn health_endpoints_answer() {
        let health = Health::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(health.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        health.ready.store(true, Ordering::Relaxed);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/metrics").await.contains("npm_registry_operator_reconciles_total"));
    }
}
