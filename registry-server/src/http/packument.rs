//! `GET /:pkg` (full or abbreviated by `Accept`, with ETag/Last-Modified revalidation) and
//! `GET /:pkg/:version-or-tag`.

use super::AppState;
use super::base_url::{self, base_url};
use super::encoding;
use super::error::ApiResult;
use crate::auth::Identity;
use crate::package::{PackageName, packument};
use crate::registry::{Kind, Payload};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::time::SystemTime;

pub const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";

fn wants_abbreviated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(ABBREVIATED))
}

/// Whether the client's cached copy is still current.
fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<DateTime<Utc>>) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        let mine = strip(etag);
        return inm.split(',').any(|t| t.trim() == "*" || strip(t) == mine);
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified) {
        (Some(since), Some(m)) => SystemTime::from(m) <= since + std::time::Duration::from_millis(999),
        _ => false,
    }
}

pub async fn get(
    state: &AppState,
    name: &PackageName,
    who: &Identity,
    headers: &HeaderMap,
    query: Option<&str>,
    head: bool,
) -> ApiResult {
    let base = base_url(&state.settings, headers);
    // `?write=true` precedes a modification: the full document with its `_rev`, straight from
    // storage.
    if query.is_some_and(|q| q.split('&').any(|p| p == "write=true")) {
        let stored = state.registry.packument(name, who).await?;
        let mut res = axum::Json(packument::client_view(&stored, name, &base)).into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Ok(res);
    }
    let (kind, content_type) = if wants_abbreviated(headers) {
        (Kind::Abbreviated, ABBREVIATED)
    } else {
        (Kind::Full, "application/json")
    };
    let prepared = state.registry.prepared_for(name, who, &base, kind).await?;
    let etag = prepared.etag(kind);
    let mut res = if not_modified(headers, etag, prepared.modified()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let accept = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
        let (payload, sent) = prepared.body(kind, encoding::negotiate(accept), head).await;
        let len = payload.len();
        let mut r = match (head, payload) {
            (true, _) => StatusCode::OK.into_response(),
            (false, Payload::Whole(bytes)) => Response::new(Body::from(bytes)),
            (false, Payload::Rope(rope)) => Response::new(Body::from_stream(futures_util::stream::iter(
                rope.chunks().map(Ok::<_, std::convert::Infallible>),
            ))),
        };
        r.headers_mut().insert(header::CONTENT_LENGTH, len.into());
        if let Some(e) = encoding::content_encoding(sent) {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
        }
        r
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(etag).expect("hex is a valid header"),
    );
    h.insert(
        header::VARY,
        base_url::vary(&state.settings, "Accept, Accept-Encoding, Authorization"),
    );
    // Private registries change under clients' feet: always revalidate (cheap with the ETag).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(m) = prepared.modified() {
        let value = httpdate::fmt_http_date(SystemTime::from(m));
        h.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_str(&value).expect("HTTP date is a valid header"),
        );
    }
    Ok(res)
}

/// `GET /:pkg/:version-or-tag`, cut from the cached document.
pub async fn version(
    state: &AppState,
    name: &PackageName,
    spec: &str,
    who: &Identity,
    headers: &HeaderMap,
) -> ApiResult {
    let base = base_url(&state.settings, headers);
    let manifest = state.registry.version(name, spec, who, &base).await?;
    let mut res = Response::new(Body::from(manifest));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(header::VARY, base_url::vary(&state.settings, "Authorization"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_requests() {
        let etag = "W/\"abc\"".to_owned();
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &etag, None));
        h.insert(header::IF_NONE_MATCH, etag.parse().unwrap());
        assert!(not_modified(&h, &etag, None));
        h.insert(header::IF_NONE_MATCH, "\"other\", W/\"x\"".parse().unwrap());
        assert!(!not_modified(&h, &etag, None));
        let m = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_MODIFIED_SINCE,
            "Tue, 02 Jan 2024 03:04:05 GMT".parse().unwrap(),
        );
        assert!(not_modified(&h, &etag, Some(m)));
        h.insert(
            header::IF_MODIFIED_SINCE,
            "Tue, 02 Jan 2024 03:04:04 GMT".parse().unwrap(),
        );
        assert!(!not_modified(&h, &etag, Some(m)));
    }
}
