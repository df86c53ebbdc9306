//! The one place where errors become HTTP statuses and npm-style JSON bodies (`{"error": ...}`).

use crate::auth::AuthError;
use crate::auth::web_login::{StartError, WEB_LOGIN_TTL};
use crate::package::PackageError;
use crate::registry::{RegistryError, StorageError};
use crate::uplink::{FetchError, UplinkError};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A request body over `limit` bytes (413).
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }
}

fn package_status(e: &PackageError) -> StatusCode {
    use PackageError::*;
    match e {
        InvalidName { .. }
        | InvalidFilename(_)
        | BadRequest(_)
        | InvalidVersion(_)
        | Integrity { .. }
        | MissingAttachment(_)
        | InvalidTag(_) => StatusCode::BAD_REQUEST,
        VersionExists(_) => StatusCode::FORBIDDEN,
        StaleRevision { .. } => StatusCode::CONFLICT,
        UnknownTag(_) | UnknownVersion(_) => StatusCode::NOT_FOUND,
        Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn storage_status(e: &StorageError) -> StatusCode {
    match e {
        StorageError::Conflict(_) | StorageError::AlreadyExists(_) => StatusCode::CONFLICT,
        StorageError::InvalidKey(_) => StatusCode::BAD_REQUEST,
        StorageError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        StorageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let status = match &e {
            RegistryError::Package(p) => package_status(p),
            RegistryError::Storage(s) => storage_status(s),
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            RegistryError::Forbidden(_) => StatusCode::FORBIDDEN,
            RegistryError::Conflict(_) => StatusCode::CONFLICT,
            RegistryError::Contended(_) => StatusCode::SERVICE_UNAVAILABLE,
            RegistryError::Upstream(u) => match u.as_ref() {
                UplinkError::Storage(s) => storage_status(s),
                UplinkError::Fetch(FetchError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            },
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(status, e.to_string())
    }
}

impl From<PackageError> for ApiError {
    fn from(e: PackageError) -> Self {
        RegistryError::from(e).into()
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        RegistryError::from(e).into()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        let (status, retry_after) = match e {
            AuthError::Storage(s) => return RegistryError::Storage(s).into(),
            AuthError::BadCredentials
            | AuthError::InvalidToken
            | AuthError::AddressNotAllowed(_)
            | AuthError::Required => (StatusCode::UNAUTHORIZED, None),
            AuthError::BadHeader
            | AuthError::InvalidUsername(_)
            | AuthError::WeakPassword
            | AuthError::InvalidCidr(_) => (StatusCode::BAD_REQUEST, None),
            AuthError::RegistrationClosed | AuthError::UserLimit(_) => (StatusCode::FORBIDDEN, None),
            AuthError::TooManyAttempts(wait) => (StatusCode::TOO_MANY_REQUESTS, Some(wait.as_secs())),
        };
        ApiError {
            status,
            message,
            retry_after,
        }
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Storage(s) => s.into(),
            StartError::TooMany => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: e.to_string(),
                retry_after: Some(WEB_LOGIN_TTL.as_secs()),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(json!({ "error": self.message }))).into_response();
        let retry = self
            .retry_after
            .or((self.status == StatusCode::SERVICE_UNAVAILABLE).then_some(1));
        if let Some(secs) = retry {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;
