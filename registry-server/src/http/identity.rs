//! Who sent a request: `Authorization: Bearer <token>` or `Basic <user:password>`, else anonymous.
//! A token that is unknown, expired or revoked makes the request anonymous, as in Verdaccio (CI
//! setups send a dummy `_authToken` to an open registry): it reads and publishes wherever `$all`
//! may, and a refusal where a user is needed says the token is not valid. A wrong password, a
//! malformed header or a token used from an address it does not allow stays a 401 (or 400).

use super::AppState;
use super::error::ApiError;
use super::forwarded::ClientIp;
use crate::auth::{AuthError, Identity};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::net::IpAddr;

/// The authenticated caller, as an extractor.
pub struct Caller(pub Identity);

/// The client's address, as `forwarded` resolved it (`X-Forwarded-For` only from trusted proxies).
pub fn client_addr(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ClientIp>().map(|c| c.0)
}

pub async fn identify(state: &AppState, headers: &HeaderMap, addr: Option<IpAddr>) -> Result<Identity, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Identity::anonymous());
    };
    let value = value.to_str().map_err(|_| AuthError::BadHeader)?;
    let (scheme, cred) = value.split_once(' ').ok_or(AuthError::BadHeader)?;
    let cred = cred.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        match state.auth.authenticate_bearer(cred, addr).await {
            Err(AuthError::InvalidToken) => Ok(Identity::with_rejected_token()),
            other => Ok(other?),
        }
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(cred).map_err(|_| AuthError::BadHeader)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::BadHeader)?;
        let (user, password) = decoded.split_once(':').ok_or(AuthError::BadHeader)?;
        Ok(state.auth.authenticate_basic(user, password, addr).await?)
    } else {
        Err(AuthError::BadHeader.into())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let addr = client_addr(parts);
        identify(state, &parts.headers, addr).await.map(Caller)
    }
}

/// The caller's address, as an extractor.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}
