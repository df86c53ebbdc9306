//! Request logs: one span per request with method, path (secrets redacted) and a request id (the
//! client's `x-request-id`, else ours, echoed in the response), and one event per response with
//! status and latency. Bodies and headers are never logged.

use axum::body::Body;
use axum::http::{Request, Response};
use axum::middleware::Next;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestId, RequestId};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Span;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub static REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Request ids: a per-process random prefix and a counter, cheap and unique enough for logs.
#[derive(Clone, Copy)]
pub struct NextRequestId;

static PREFIX: std::sync::LazyLock<u32> = std::sync::LazyLock::new(rand::random);

impl MakeRequestId for NextRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = format!("{:08x}-{:x}", *PREFIX, NEXT_ID.fetch_add(1, Ordering::Relaxed));
        Some(RequestId::new(id.parse().ok()?))
    }
}

tokio::task_local! {
    /// The id of the request being handled, for error bodies (see `http::error`).
    static CURRENT_ID: String;
}

/// The id of the request this task is handling, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_ID.try_with(Clone::clone).ok()
}

/// Runs the rest of the stack with the request's id at hand (inside the id and trace layers).
pub async fn with_request_id(req: Request<Body>, next: Next) -> axum::response::Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    CURRENT_ID.scope(id, next.run(req)).await
}

/// Milliseconds with at most two decimals: enough to read, short in a log line.
fn rounded_ms(latency: Duration) -> f64 {
    (latency.as_secs_f64() * 100_000.0).round() / 100.0
}

/// Paths that carry a secret: `npm logout` puts the token itself in the URL.
pub fn redact(path: &str) -> String {
    match path.strip_prefix("/-/user/token/") {
        Some(_) => "/-/user/token/[redacted]".to_owned(),
        None => path.to_owned(),
    }
}

type MakeSpan = fn(&Request<Body>) -> Span;
type OnResponse = fn(&Response<Body>, Duration, &Span);

fn make_span(req: &Request<Body>) -> Span {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id = %id, method = %req.method(), path = %redact(req.uri().path()))
}

fn on_response(res: &Response<Body>, latency: Duration, _: &Span) {
    tracing::info!(
        status = res.status().as_u16(),
        latency_ms = rounded_ms(latency),
        "response"
    );
}

pub fn layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), OnResponse, (), (), DefaultOnFailure> {
    TraceLayer::new_for_http()
        .make_span_with(make_span as MakeSpan)
        .on_request(())
        .on_response(on_response as OnResponse)
        .on_body_chunk(())
        .on_eos(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn latencies_are_rounded() {
        assert_eq!(super::rounded_ms(std::time::Duration::from_nanos(42_113)), 0.04);
        assert_eq!(super::rounded_ms(std::time::Duration::from_micros(12_345)), 12.35);
    }

    #[test]
    fn logout_tokens_are_redacted() {
        assert_eq!(super::redact("/-/user/token/npmreg_secret"), "/-/user/token/[redacted]");
        assert_eq!(super::redact("/lodash"), "/lodash");
    }
}
