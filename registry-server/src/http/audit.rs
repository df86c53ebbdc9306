//! `npm audit` (`/-/npm/v1/security/advisories/bulk`, `/audits/quick`, `/audits`): passed to the
//! first uplink that answers, body and encoding as the client sent them.

use super::AppState;
use super::body;
use super::error::{ApiError, ApiResult};
use crate::registry::AuditRequest;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// A lock file's audit tree can be large.
const AUDIT_BODY_LIMIT: u64 = 32 * 1024 * 1024;

pub async fn forward(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> ApiResult {
    let bytes = body::read(&headers, body, AUDIT_BODY_LIMIT).await?;
    let request = AuditRequest {
        path: uri.path(),
        content_type: headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
        content_encoding: headers.get(header::CONTENT_ENCODING).map(HeaderValue::as_bytes),
        body: bytes,
    };
    let Some(answer) = state.registry.audit(request).await? else {
        return Err(ApiError::not_found("no uplink is configured to answer npm audit"));
    };
    let mut res = Response::new(Body::from(answer.body));
    *res.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let ct = answer
        .content_type
        .and_then(|v| HeaderValue::from_bytes(&v).ok())
        .unwrap_or(HeaderValue::from_static("application/json"));
    res.headers_mut().insert(header::CONTENT_TYPE, ct);
    Ok(res.into_response())
}
