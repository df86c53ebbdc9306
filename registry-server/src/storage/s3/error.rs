//! S3 failures sorted into what the storage contract cares about. Anything transient (network,
//! timeouts, throttling, 5xx) becomes `Unavailable`, which the HTTP layer answers with 503.

use crate::storage::StorageError;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

pub enum Failure {
    NotFound,
    /// 412: an `If-Match`/`If-None-Match` condition did not hold.
    PreconditionFailed,
    /// 409: a concurrent conditional write to the same key won (AWS asks to retry).
    ConcurrentWrite,
    Other(StorageError),
}

/// `what` names the call for messages, e.g. `GET s3://bucket/key`.
pub fn classify<E>(what: &str, e: SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    match &e {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            match status.unwrap_or(0) {
                // A missing bucket is a broken setup, not an empty registry.
                404 if code == "NoSuchBucket" => {
                    Failure::Other(StorageError::Unavailable(format!("S3 bucket of {what} does not exist")))
                }
                404 => Failure::NotFound,
                412 => Failure::PreconditionFailed,
                409 if code == "ConditionalRequestConflict" => Failure::ConcurrentWrite,
                s @ (429 | 500..) => {
                    Failure::Other(StorageError::Unavailable(format!("S3 answered {s} {code} to {what}")))
                }
                s => Failure::Other(StorageError::Io {
                    key: what.to_owned(),
                    source: std::io::Error::other(format!(
                        "S3 answered {s} {code}: {}",
                        service.err().message().unwrap_or("no message")
                    )),
                }),
            }
        }
        SdkError::TimeoutError(_) => {
            Failure::Other(StorageError::Unavailable(format!("S3 did not answer {what} in time")))
        }
        _ => Failure::Other(StorageError::Unavailable(format!(
            "S3 request {what} failed: {}",
            DisplayErrorContext(&e)
        ))),
    }
}

impl Failure {
    /// The error for a caller that has no special case for this failure.
    pub fn into_error(self, what: &str) -> StorageError {
        match self {
            Failure::Other(e) => e,
            Failure::NotFound => io(what, "not found"),
            Failure::PreconditionFailed => io(what, "precondition failed"),
            Failure::ConcurrentWrite => StorageError::Conflict(what.to_owned()),
        }
    }
}

pub fn io(what: &str, message: impl Into<String>) -> StorageError {
    StorageError::Io {
        key: what.to_owned(),
        source: std::io::Error::other(message.into()),
    }
}
