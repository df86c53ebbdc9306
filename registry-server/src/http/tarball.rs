//! Tarball downloads, streamed from storage.

use super::AppState;
use super::error::ApiResult;
use crate::auth::Identity;
use crate::package::PackageName;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub async fn get(state: &AppState, name: &PackageName, file: &str, who: &Identity, head: bool) -> ApiResult {
    let blob = state.registry.tarball(name, file, who).await?;
    let mut res = if head {
        StatusCode::OK.into_response()
    } else {
        Response::new(Body::from_stream(blob.stream))
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, blob.len.into());
    Ok(res)
}
