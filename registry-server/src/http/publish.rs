//! `PUT /:pkg` (publish, or a whole-document update), and the deletes of npm's unpublish flow.

use super::AppState;
use super::base_url::base_url;
use super::body;
use super::error::ApiResult;
use crate::auth::Identity;
use crate::package::{PackageName, publish};
use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

pub async fn put(
    state: &AppState,
    name: &PackageName,
    rev: Option<&str>,
    who: &Identity,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let doc = body::read_json(headers, body, state.settings.max_body_size).await?;
    if publish::is_publish(&doc) {
        let base = base_url(&state.settings, headers);
        let email = match &who.name {
            Some(user) => state.auth.email_of(user).await?,
            None => None,
        };
        state.registry.publish(name, &doc, who, email.as_deref(), &base).await?;
        tracing::info!(package = %name, "published");
        Ok((
            StatusCode::CREATED,
            Json(json!({"ok": format!("package {name} published"), "success": true})),
        )
            .into_response())
    } else {
        state.registry.update(name, rev, &doc, who).await?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"ok": format!("package {name} updated"), "success": true})),
        )
            .into_response())
    }
}

pub async fn delete_package(state: &AppState, name: &PackageName, rev: &str, who: &Identity) -> ApiResult {
    state.registry.unpublish_package(name, rev, who).await?;
    Ok(Json(json!({"ok": format!("package {name} removed")})).into_response())
}

pub async fn delete_tarball(state: &AppState, name: &PackageName, file: &str, rev: &str, who: &Identity) -> ApiResult {
    state.registry.delete_tarball(name, file, rev, who).await?;
    Ok(Json(json!({"ok": format!("tarball {file} removed")})).into_response())
}
