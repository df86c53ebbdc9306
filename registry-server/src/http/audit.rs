//! `npm audit` (`/-/npm/v1/security/advisories/bulk`, `/audits/quick`, `/audits`): passed to the
//! first uplink that answers, body and encoding as the client sent them.

use super::AppState;
use super::body;
use super::error::{ApiError, ApiResult};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// A lock file's audit tree can be large.
const AUDIT_BODY_LIMIT: u64 = 32 * 1024 * 1024;

pub async fn forward(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> ApiResult {
    let bytes = body::read(&headers, body, AUDIT_BODY_LIMIT).await?;
    let mut out = reqwest::header::HeaderMap::new();
    for h in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
        if let Some(v) = headers
            .get(&h)
            .and_then(|v| reqwest::header::HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            out.insert(
                reqwest::header::HeaderName::from_bytes(h.as_str().as_bytes()).expect("static name"),
                v,
            );
        }
    }
    let Some((status, res_headers, res_body)) = state.registry.audit(uri.path(), &out, bytes).await? else {
        return Err(ApiError::not_found("no uplink is configured to answer npm audit"));
    };
    let mut res = Response::new(Body::from(res_body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let ct = res_headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        .unwrap_or(HeaderValue::from_static("application/json"));
    res.headers_mut().insert(header::CONTENT_TYPE, ct);
    Ok(res.into_response())
}
