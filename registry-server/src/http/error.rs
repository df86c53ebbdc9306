//! The one place where errors become HTTP statuses and npm-style JSON bodies (`{"error": ...}`).
//! A 4xx says what was wrong with the request. A 5xx body is a short, stable message with the
//! request id; the detail (bucket, endpoint, cause chain) goes to the log once, with that id.

use crate::auth::AuthError;
use crate::auth::oidc::OidcError;
use crate::auth::web_login::{StartError, WEB_LOGIN_TTL};
use crate::package::PackageError;
use crate::registry::{RegistryError, StorageError};
use crate::uplink::{FetchError, UplinkError};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request body that moved less than `min_rate` bytes a second over a `window` (the
/// connection layer cuts it off; a handler answers 408).
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving (less than {min_rate} bytes a second for {window:?})")]
pub struct BodyTimeout {
    pub window: std::time::Duration,
    pub min_rate: u64,
}

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

    /// A request body over `limit` bytes (413); `size` when the request declared it.
    pub fn too_large(size: Option<u64>, limit: u64) -> Self {
        let size = size.map_or_else(|| "it is".to_owned(), |n| format!("{} is", human_size(n)));
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request entity too large: {size} larger than this registry's limit of {} (max_body_size)",
                human_size(limit)
            ),
        )
    }
}

/// `10 MiB`, `64 KiB`, `123 bytes`.
fn human_size(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = KIB * 1024;
    match n {
        n if n >= MIB => format!("{:.1} MiB", n as f64 / MIB as f64).replace(".0 ", " "),
        n if n >= KIB => format!("{:.1} KiB", n as f64 / KIB as f64).replace(".0 ", " "),
        n => format!("{n} bytes"),
    }
}

fn storage_message(e: &StorageError) -> String {
    match e {
        StorageError::Unavailable(detail) => {
            let which = if detail.starts_with("S3") { " (S3)" } else { "" };
            format!("storage is unavailable right now{which}; try again")
        }
        _ => "storage could not be read or written".to_owned(),
    }
}

fn fetch_message(e: &FetchError) -> String {
    match e {
        FetchError::Timeout { uplink, secs } => format!("uplink {uplink} did not answer within {secs} s"),
        FetchError::Failed { uplink, url, cause, .. } => format!("uplink {uplink} ({url}): {cause}"),
        FetchError::Down { uplink, url, cause } => {
            format!("uplink {uplink} ({url}) is marked down after repeated failures (last: {cause}); try again later")
        }
        FetchError::TooLarge { .. } => e.to_string(),
        FetchError::Busy { uplink, .. } => format!("uplink {uplink} is busy with other large documents; try again"),
    }
}

/// What a client is told of a server-side failure: short and stable, no internals.
fn public_message(e: &RegistryError) -> String {
    match e {
        RegistryError::Storage(s) => storage_message(s),
        RegistryError::Package(_) => "a stored document of this package is damaged".to_owned(),
        RegistryError::Contended(_) => e.to_string(),
        RegistryError::Upstream(u) => match u.as_ref() {
            UplinkError::Storage(s) => storage_message(s),
            UplinkError::Fetch(f) => fetch_message(f),
            UplinkError::BadDocument { uplink, name, .. } => {
                format!("uplink {uplink} sent an answer for {name} that is not its packument")
            }
            UplinkError::Integrity { uplink, file, .. } => {
                format!("tarball {file} from uplink {uplink} was refused: it does not match its packument's integrity")
            }
        },
        _ => "internal error".to_owned(),
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
        | InvalidTag(_)
        | Provenance(_) => StatusCode::BAD_REQUEST,
        VersionExists(_) => StatusCode::FORBIDDEN,
        StaleRevision { .. } | MissingRevision | TarballInUse(_) => StatusCode::CONFLICT,
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
            tracing::error!(status = status.as_u16(), error = %e, "request failed");
            return ApiError::new(status, public_message(&e));
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
            AuthError::RegistrationClosed | AuthError::UserLimit(_) | AuthError::NameTaken(_) => {
                (StatusCode::FORBIDDEN, None)
            }
            AuthError::HtpasswdMissing(_) => {
                // The path is for the log, not for clients.
                tracing::error!(error = %message, "not ready");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "users cannot log in: the configured htpasswd file does not exist",
                );
            }
            AuthError::TooManyAttempts(wait) | AuthError::AddressBlocked(wait) | AuthError::TooManyTokens(wait) => {
                (StatusCode::TOO_MANY_REQUESTS, Some(wait.as_secs().max(1)))
            }
            AuthError::Busy => (StatusCode::SERVICE_UNAVAILABLE, Some(1)),
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

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> Self {
        let message = e.to_string();
        let status = match e {
            OidcError::Storage(s) => return RegistryError::Storage(s).into(),
            // The cause (a URL, a connection error) is for the log, which has it already.
            OidcError::Issuer { issuer, .. } => {
                return ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("the OIDC issuer {issuer} could not be asked for its keys; try again"),
                );
            }
            OidcError::NoToken
            | OidcError::Malformed(_)
            | OidcError::UnknownIssuer { .. }
            | OidcError::UnknownKey { .. }
            | OidcError::Invalid(_)
            | OidcError::Replayed => StatusCode::UNAUTHORIZED,
            OidcError::NoTrustedPublisher(_) | OidcError::Claims { .. } => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match super::trace::current_request_id() {
            Some(id) if self.status.is_server_error() => format!("{} (request id {id})", self.message),
            _ => self.message,
        };
        // `message` too: npm prints that one for some endpoints (the OIDC exchange).
        let mut res = (self.status, Json(json!({ "error": message, "message": message }))).into_response();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_failures_tell_clients_no_internals() {
        let detail = "S3 request GET s3://bucket/key failed: dispatch failure: io error: Connection refused (os error 111) at http://10.0.0.1:9000";
        let e = ApiError::from(RegistryError::Storage(StorageError::Unavailable(detail.into())));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.message, "storage is unavailable right now (S3); try again");
        let io = StorageError::Io {
            key: "pkg/package.json".into(),
            source: std::io::Error::other("permission denied on /data/pkg"),
        };
        let e = ApiError::from(RegistryError::Storage(io));
        assert!(
            !e.message.contains("/data") && !e.message.contains("pkg/package.json"),
            "{}",
            e.message
        );
        let e = ApiError::from(RegistryError::from(UplinkError::Fetch(FetchError::Failed {
            uplink: "up".into(),
            url: "http://up.example/".into(),
            cause: "connection refused".into(),
            reason: "error sending request for url (http://10.0.0.1/x): tcp connect error".into(),
        })));
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        assert_eq!(e.message, "uplink up (http://up.example/): connection refused");
    }

    #[test]
    fn too_large_names_both_sizes() {
        let e = ApiError::too_large(Some(3 * 1024 * 1024 + 512 * 1024), 64 * 1024);
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            e.message,
            "request entity too large: 3.5 MiB is larger than this registry's limit of 64 KiB (max_body_size)"
        );
    }
}
