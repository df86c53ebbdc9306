//! Request bodies read with a size limit, answering 413 in npm's error format.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use serde_json::Value;

pub async fn read(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(body, limit as usize)
        .await
        .map_err(|e| unreadable(&e, limit))
}

/// Why a body could not be read: too large (413), too slow (408, see `serve`), or broken off.
fn unreadable(e: &axum::Error, limit: u64) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return ApiError::too_large(limit);
        }
        if let Some(t) = c.downcast_ref::<crate::serve::BodyTimeout>() {
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
