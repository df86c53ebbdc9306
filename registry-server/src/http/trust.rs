//! Supply-chain trust endpoints: `GET /-/npm/v1/keys`, `GET /-/npm/v1/attestations/<name>@<version>`
//! and npm's OIDC trusted publishing exchange, `POST /-/npm/v1/oidc/token/exchange/package/<name>`.

use super::AppState;
use super::body;
use super::error::{ApiError, ApiResult};
use super::identity::Caller;
use super::path::decode;
use crate::package::PackageName;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn keys(State(state): State<AppState>) -> ApiResult {
    match state.registry.signing_keys().await {
        Some(keys) => Ok(Json(json!({ "keys": keys })).into_response()),
        None => Err(ApiError::not_found("this registry does not sign packages")),
    }
}

/// `<name>@<version>` (the name's `/` as is or `%2f`).
fn name_and_version(spec: &str) -> Result<(PackageName, String), ApiError> {
    let spec = decode(spec)?;
    let (name, version) = spec
        .get(1..)
        .and_then(|s| s.rfind('@'))
        .map(|at| (&spec[..=at], &spec[at + 2..]))
        .filter(|(_, v)| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("expected <name>@<version>, got {spec:?}")))?;
    Ok((PackageName::parse(name)?, version.to_owned()))
}

pub async fn attestations(State(state): State<AppState>, Caller(who): Caller, Path(spec): Path<String>) -> ApiResult {
    let (name, version) = name_and_version(&spec)?;
    let bytes = state.registry.attestations(&name, &version, &who).await?;
    let mut res = Response::new(Body::from(bytes));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(res)
}

/// The id-token npm sends, which is never treated as a registry token.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The audience an id-token for this registry carries: `npm:` + the host npm was configured with
/// (without the port, as npm writes it).
fn audience(base: &str) -> String {
    let host = url::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    format!("npm:{host}")
}

pub async fn exchange(
    State(state): State<AppState>,
    Path(escaped): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> ApiResult {
    // npm sends no body; anything else is read and dropped, bounded, before the answer.
    let answer = exchange_token(&state, &escaped, &headers).await;
    match answer {
        Ok(res) => Ok(res),
        Err(e) => Err(body::refuse(&headers, request, e).await),
    }
}

async fn exchange_token(state: &AppState, escaped: &str, headers: &HeaderMap) -> ApiResult {
    let name = PackageName::parse(&decode(escaped)?)?;
    let refused = |e: crate::auth::oidc::OidcError| {
        tracing::warn!(package = %name, reason = %e, "OIDC token exchange refused");
        ApiError::from(e)
    };
    let id_token = bearer(headers).ok_or_else(|| refused(crate::auth::oidc::OidcError::NoToken))?;
    // Never from the request's `Host`: the config refuses trusted publishers without
    // public_url, and without one nothing is exchanged.
    let public_url = state.settings.public_url.as_deref().ok_or_else(|| {
        refused(crate::auth::oidc::OidcError::NoTrustedPublisher(
            name.as_str().to_owned(),
        ))
    })?;
    let audience = audience(public_url);
    let publishers = state.registry.trusted_publishers(&name);
    let (token, grant) = state
        .auth
        .exchange_id_token(name.as_str(), publishers, id_token, &audience)
        .await
        .map_err(refused)?;
    tracing::info!(package = %name, issuer = %grant.issuer, claims = ?grant.claims, "OIDC token exchanged for a publish token");
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_audiences() {
        let (n, v) = name_and_version("@s%2fp@1.0.0").unwrap();
        assert_eq!((n.as_str(), v.as_str()), ("@s/p", "1.0.0"));
        let (n, v) = name_and_version("@s/p@1.0.0-rc.1").unwrap();
        assert_eq!((n.as_str(), v.as_str()), ("@s/p", "1.0.0-rc.1"));
        let (n, v) = name_and_version("plain@2.0.0").unwrap();
        assert_eq!((n.as_str(), v.as_str()), ("plain", "2.0.0"));
        assert!(name_and_version("plain").is_err());
        assert!(name_and_version("@s/p").is_err());
        assert!(name_and_version("plain@").is_err());
        assert_eq!(audience("http://127.0.0.1:4873/"), "npm:127.0.0.1");
        assert_eq!(audience("https://npm.example.com/npm/"), "npm:npm.example.com");
    }
}
