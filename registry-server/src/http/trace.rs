//! Request logs: one span per request with method, path (secrets redacted) and a request id (the
//! client's `x-request-id`, else ours, echoed in the response), and one event per response with
//! status and latency. Bodies and headers are never logged.

use axum::body::Body;
use axum::http::{Request, Response};
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
        latency_ms = latency.as_secs_f64() * 1000.0,
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
    fn logout_tokens_are_redacted() {
        assert_eq!(super::redact("/-/user/token/npmreg_secret"), "/-/user/token/[redacted]");
        assert_eq!(super::redact("/lodash"), "/lodash");
    }
}
