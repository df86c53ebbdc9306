//! Tarball downloads, streamed from storage, or redirected to a presigned storage URL when the
//! backend is configured to hand them out.

use super::AppState;
use super::error::ApiResult;
use crate::auth::Identity;
use crate::package::PackageName;
use crate::registry::StorageError;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub async fn get(state: &AppState, name: &PackageName, file: &str, who: &Identity, head: bool) -> ApiResult {
    if !head && let Some(url) = state.registry.tarball_redirect(name, file, who).await? {
        let mut res = StatusCode::FOUND.into_response();
        let h = res.headers_mut();
        h.insert(
            header::LOCATION,
            HeaderValue::try_from(url).map_err(|e| StorageError::Io {
                key: file.to_owned(),
                source: std::io::Error::other(format!("invalid download URL: {e}")),
            })?,
        );
        // The URL expires: nobody may keep this answer.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(res);
    }
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
