//! Login and registration (CouchDB flow), npm's web login (its npm side), whoami, logout and
//! profile.

use super::AppState;
use super::base_url::base_url;
use super::body;
use super::error::{ApiError, ApiResult};
use super::identity::{Caller, ClientAddr};
use crate::auth::web_login::Status;
use crate::auth::{AuthError, Identity, TokenOptions};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

const USER_BODY_LIMIT: u64 = 64 * 1024;
const COUCH_PREFIX: &str = "org.couchdb.user:";

#[derive(Debug, Deserialize)]
struct CouchUser {
    name: Option<String>,
    password: Option<String>,
    email: Option<String>,
}

fn user_from_path(couch: &str) -> Result<&str, ApiError> {
    couch
        .strip_prefix(COUCH_PREFIX)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::not_found(format!("no such user document: {couch}")))
}

pub fn require_user(who: &Identity) -> Result<&str, ApiError> {
    who.name.as_deref().ok_or_else(|| {
        if who.rejected_token {
            AuthError::InvalidToken.into()
        } else {
            AuthError::Required.into()
        }
    })
}

async fn logged_in(state: &AppState, name: &str) -> ApiResult {
    let (token, _) = state.auth.issue_token(name, TokenOptions::default()).await?;
    tracing::info!(user = name, "logged in");
    let body = json!({
        "ok": format!("you are authenticated as '{name}'"),
        "id": format!("{COUCH_PREFIX}{name}"),
        "rev": "1-0000000000000000",
        "token": token,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `PUT /-/user/org.couchdb.user:NAME[/-rev/REV]`: logs in an existing user or registers a new one.
pub async fn put_user(
    State(state): State<AppState>,
    Path(couch): Path<String>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let name = user_from_path(&couch)?.to_owned();
    // Always the password in the body (npm's retry after a 409 sends it again): a token the
    // caller already holds, perhaps a read-only one, must never mint a new token.
    let bytes = body::read(&headers, body, USER_BODY_LIMIT).await?;
    let user: CouchUser = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("request body is not a CouchDB user document: {e}")))?;
    if user.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(
            "the user name in the body does not match the URL",
        ));
    }
    let password = user
        .password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("password is required"))?;
    if state.auth.user_exists(&name).await? {
        state.auth.check_password(&name, &password, addr).await?;
    } else {
        state.auth.register(&name, &password, user.email).await?;
    }
    logged_in(&state, &name).await
}

pub async fn put_user_rev(
    state: State<AppState>,
    Path((couch, _rev)): Path<(String, String)>,
    addr: ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    put_user(state, Path(couch), addr, headers, body).await
}

/// `GET /-/user/org.couchdb.user:NAME[?write=true]`: the document npm merges before its retry.
pub async fn get_user(State(state): State<AppState>, Path(couch): Path<String>) -> ApiResult<Json<Value>> {
    let name = user_from_path(&couch)?;
    if !state.auth.user_exists(name).await? {
        return Err(ApiError::not_found(format!("user {name} not found")));
    }
    Ok(Json(json!({
        "_id": format!("{COUCH_PREFIX}{name}"),
        "_rev": "1-0000000000000000",
        "name": name,
        "type": "user",
        "roles": [],
    })))
}

pub async fn whoami(Caller(who): Caller) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "username": require_user(&who)? })))
}

/// `DELETE /-/user/token/:token` (`npm logout`): revokes the caller's token.
pub async fn logout(State(state): State<AppState>, Caller(who): Caller, Path(token): Path<String>) -> ApiResult {
    let user = require_user(&who)?;
    if state.auth.revoke_token(user, &token).await? {
        Ok(Json(json!({"ok": "logged out"})).into_response())
    } else {
        Err(ApiError::not_found("no such token of yours"))
    }
}

/// `GET /-/npm/v1/user` (`npm profile get`).
pub async fn profile(Caller(who): Caller) -> ApiResult<Json<Value>> {
    let name = require_user(&who)?;
    Ok(Json(json!({
        "name": name,
        "email": "",
        "email_verified": false,
        "tfa": null,
        "fullname": "",
        "homepage": "",
        "freenode": "",
        "twitter": "",
        "github": "",
        "created": null,
        "updated": null,
    })))
}

/// Profile changes (password, 2FA) are not offered; npm prints this message.
pub async fn profile_update(Caller(who): Caller) -> ApiError {
    match require_user(&who) {
        Err(e) => e,
        Ok(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "profile changes are not supported by this registry",
        ),
    }
}

/// `POST /-/v1/login` (npm's default `npm login`): a pending login in storage; npm prints the
/// login URL (our login page) and polls the done URL until the browser approves. With the UI
/// off it is a 404, on which npm falls back to the CouchDB flow.
pub async fn web_login(State(state): State<AppState>, ClientAddr(addr): ClientAddr, headers: HeaderMap) -> ApiResult {
    if !state.web.enabled {
        return Err(ApiError::not_found(
            "web login is not available on this registry; npm falls back to username and password",
        ));
    }
    let ticket = state.web.logins.start(addr).await?;
    let base = base_url(&state.settings, &headers);
    // The ticket is URL-safe; it travels in queries, which the request log leaves out.
    Ok(Json(json!({
        "loginUrl": format!("{base}-/ui/login?cli={ticket}"),
        "doneUrl": format!("{base}-/v1/done?ticket={ticket}"),
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    ticket: String,
}

/// `GET /-/v1/done?ticket=`: npm's poll. 202 with `Retry-After` while the browser has not
/// answered, then the token once.
pub async fn web_login_done(State(state): State<AppState>, Query(q): Query<DoneQuery>) -> ApiResult {
    match state.web.logins.poll(&q.ticket).await? {
        Status::Pending => {
            let mut res = (StatusCode::ACCEPTED, Json(json!({}))).into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
            Ok(res)
        }
        Status::Approved(user) => {
            let options = TokenOptions {
                name: Some("npm login (web)".into()),
                ..TokenOptions::default()
            };
            let (token, _) = state.auth.issue_token(&user, options).await?;
            tracing::info!(user = %user, "logged in through the web page");
            Ok(Json(json!({ "token": token })).into_response())
        }
        Status::Refused => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the login was refused in the browser",
        )),
        Status::Gone => Err(ApiError::not_found(
            "this login has expired or was already used; run npm login again",
        )),
    }
}
