//! Request bodies read with a size limit, and refused bodies answered so the client shows why.
//!
//! A client still sending its body when the answer comes (npm with a 413, or a 401 decided from
//! the headers) fails on the closed socket and never shows the answer. So a refused body is read
//! and dropped, never buffered, up to [`DISCARD_MAX`] bytes within [`DISCARD_TIME`], before the
//! answer goes out; a client that asked `Expect: 100-continue` has sent nothing yet and is
//! answered at once (hyper sends `100 Continue` only when a handler starts reading the body, which
//! happens only for requests that were allowed).

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// The most of a refused body read (and dropped) so its sender can read the answer.
pub const DISCARD_MAX: u64 = 64 * 1024 * 1024;
/// The longest a refused body is read for.
pub const DISCARD_TIME: Duration = Duration::from_secs(10);

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// Reads and drops what is left of `stream`, within the bounds above (`seen`: bytes already read).
async fn drain(mut stream: axum::body::BodyDataStream, mut seen: u64) {
    let deadline = tokio::time::Instant::now() + DISCARD_TIME;
    while seen <= DISCARD_MAX {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen += chunk.len() as u64,
            _ => return,
        }
    }
}

/// Answers `error` to a request whose body will not be used (see the module's note).
pub async fn refuse(headers: &HeaderMap, body: Body, error: ApiError) -> ApiError {
    let too_big_to_drain = declared_length(headers).is_some_and(|n| n > DISCARD_MAX);
    if !expects_continue(headers) && !too_big_to_drain {
        drain(body.into_data_stream(), 0).await;
    }
    error
}

/// The whole body, at most `limit` bytes; a larger one is refused with 413 (see [`refuse`]).
/// Called once the request is authorized: only then does its body take a share of
/// `server.maxBodyBytesInFlight`; when that is spent the answer is 503 and the body is not read
/// (the connection closes instead of draining it).
pub async fn read(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let declared = declared_length(headers);
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(refuse(headers, body, ApiError::too_large(Some(n), limit)).await);
    }
    if let Err(spent) = super::body_budget::reserve_body(headers, limit) {
        tracing::warn!("request refused: request bodies in flight are at server.maxBodyBytesInFlight");
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            spent.to_string(),
        ));
    }
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| unreadable(&e))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            let seen = (buf.len() + chunk.len()) as u64;
            drop(buf);
            super::body_budget::release_body();
            drain(stream, seen).await;
            return Err(ApiError::too_large(None, limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Why a body could not be read: too slow (408, see `serve`), or broken off.
fn unreadable(e: &axum::Error) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<super::error::BodyTimeout>() {
            return ApiError::new(axum::http::StatusCode::REQUEST_TIMEOUT, t.to_string());
        }
        cause = c.source();
    }
    ApiError::bad_request(format!("the request body could not be read: {e}"))
}

pub async fn read_json(headers: &HeaderMap, body: Body, limit: u64) -> Result<Value, ApiError> {
    let bytes = read(headers, body, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
}
