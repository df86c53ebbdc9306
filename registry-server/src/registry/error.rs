use crate::auth::access::Denied;
use crate::package::PackageError;
use crate::storage::StorageError;
use crate::uplink::UplinkError;

/// Clone: requests that wait for one flight of work (a build, an upstream fetch) each get its
/// outcome.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    NotFound(String),
    /// Anonymous callers who need to log in.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} is changing too often right now; try again")]
    Contended(String),
    /// Boxed: upstream errors are large and rare.
    #[error(transparent)]
    Upstream(Box<UplinkError>),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl From<UplinkError> for RegistryError {
    fn from(e: UplinkError) -> Self {
        RegistryError::Upstream(Box::new(e))
    }
}

impl From<crate::storage::document::Contended> for RegistryError {
    fn from(e: crate::storage::document::Contended) -> Self {
        RegistryError::Contended(e.0)
    }
}

impl From<Denied> for RegistryError {
    fn from(d: Denied) -> Self {
        let message = d.to_string();
        match d {
            Denied::LoginRequired { .. } | Denied::InvalidToken { .. } => RegistryError::Unauthorized(message),
            Denied::Hidden(_) => RegistryError::NotFound(message),
            Denied::ReadOnlyToken(_) | Denied::Forbidden { .. } | Denied::OutOfGrant { .. } => {
                RegistryError::Forbidden(message)
            }
        }
    }
}
