//! `/-/package/:pkg/dist-tags[/:tag]`: list, set (body: a JSON string) and remove dist-tags; and
//! `/-/package/:pkg/visibility`, which npm asks before it turns provenance on.

use super::AppState;
use super::body;
use super::error::{ApiError, ApiResult};
use super::identity::Caller;
use super::path::{decode, split_name};
use crate::auth::Identity;
use crate::package::PackageName;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Tag bodies are a version string; anything big is not one.
const TAG_BODY_LIMIT: u64 = 4096;

pub async fn dispatch(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    caller: Result<Caller, ApiError>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let who = match caller {
        Ok(Caller(who)) => who,
        Err(e) => return body::refuse(&headers, body, e).await.into_response(),
    };
    handle(state, rest, who, method, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: AppState,
    rest: String,
    who: Identity,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let rest = decode(&rest)?;
    let (name, tail) = split_name(&rest)?;
    match (method, tail.as_slice()) {
        (Method::GET, ["dist-tags"]) => Ok(Json(state.registry.dist_tags(&name, &who).await?).into_response()),
        (Method::GET, ["visibility"]) => {
            let public = state.registry.visibility(&name, &who)?;
            Ok(Json(json!({ "public": public })).into_response())
        }
        (Method::PUT | Method::POST, ["dist-tags", tag]) => put_tag(&state, &name, tag, &who, &headers, body).await,
        (Method::DELETE, ["dist-tags", tag]) => {
            state.registry.remove_tag(&name, tag, &who).await?;
            Ok(Json(json!({"ok": format!("dist-tag {tag} removed")})).into_response())
        }
        (m, _) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no such endpoint: {m} /-/package/{rest}"),
        )),
    }
}

pub async fn put_tag(
    state: &AppState,
    name: &PackageName,
    tag: &str,
    who: &Identity,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    if let Err(e) = state.registry.authorize_change(name, who) {
        return Err(body::refuse(headers, body, e.into()).await);
    }
    let value = body::read_json(headers, body, TAG_BODY_LIMIT).await?;
    let Value::String(version) = value else {
        return Err(ApiError::bad_request("the body must be a JSON string naming a version"));
    };
    state.registry.set_tag(name, tag, &version, who).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": format!("dist-tag {tag} set to {version}")})),
    )
        .into_response())
}
