//! `npm token list|create|revoke` (`/-/npm/v1/tokens`).

use super::AppState;
use super::body;
use super::error::{ApiError, ApiResult};
use super::identity::{Caller, ClientAddr};
use super::user::require_user;
use crate::auth::TokenOptions;
use crate::auth::store::TokenRecord;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

const TOKEN_BODY_LIMIT: u64 = 64 * 1024;

#[derive(Debug, Deserialize)]
struct CreateToken {
    password: Option<String>,
    /// npm 10 and older.
    #[serde(default)]
    readonly: bool,
    /// npm 11's granular form: `read-only` or `read-write`.
    packages_and_scopes_permission: Option<String>,
    #[serde(default)]
    cidr_whitelist: Vec<String>,
    name: Option<String>,
    /// Days.
    expires: Option<u32>,
}

fn view(t: &TokenRecord) -> Value {
    json!({
        "token": t.prefix,
        "key": t.key,
        "name": t.name,
        "readonly": t.readonly,
        "cidr_whitelist": if t.cidr_whitelist.is_empty() { Value::Null } else { json!(t.cidr_whitelist) },
        "created": t.created,
        "updated": t.created,
        "expires": t.expires,
    })
}

pub async fn list(State(state): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Value>> {
    let user = require_user(&who)?;
    let tokens = state.auth.tokens(user).await?;
    Ok(Json(json!({
        "objects": tokens.iter().map(view).collect::<Vec<_>>(),
        "total": tokens.len(),
        "urls": {},
    })))
}

pub async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let user = match require_user(&who) {
        Ok(u) => u.to_owned(),
        Err(e) => return Err(body::refuse(&headers, body, e).await),
    };
    if who.readonly {
        let e = ApiError::new(StatusCode::FORBIDDEN, "a read-only token cannot create tokens");
        return Err(body::refuse(&headers, body, e).await);
    }
    let bytes = body::read(&headers, body, TOKEN_BODY_LIMIT).await?;
    let req: CreateToken =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid token request: {e}")))?;
    let password = req
        .password
        .ok_or_else(|| ApiError::bad_request("password is required"))?;
    state.auth.check_password(&user, &password, addr).await?;
    let readonly = req.readonly || req.packages_and_scopes_permission.as_deref() == Some("read-only");
    let opts = TokenOptions {
        readonly,
        cidr_whitelist: req.cidr_whitelist,
        name: req.name,
        expires_days: req.expires,
    };
    let (token, record) = state.auth.issue_token(&user, opts).await?;
    tracing::info!(user = %user, readonly, "token created");
    let mut body = view(&record);
    body["token"] = Value::String(token);
    Ok(Json(body).into_response())
}

pub async fn revoke(State(state): State<AppState>, Caller(who): Caller, Path(key): Path<String>) -> ApiResult {
    let user = require_user(&who)?;
    if state.auth.revoke(user, &key).await? {
        tracing::info!(user, "token revoked");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("no such token of yours"))
    }
}
