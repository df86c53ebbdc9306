#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PackageError {
    #[error("invalid package name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid tarball file name {0:?}")]
    InvalidFilename(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("cannot publish over the previously published version {0}")]
    VersionExists(String),
    #[error("version {0:?} is not a valid semver version")]
    InvalidVersion(String),
    #[error("tarball {file} does not match its {field}: expected {expected}, got {actual}")]
    Integrity {
        file: String,
        field: &'static str,
        expected: String,
        actual: String,
    },
    #[error("the publish of version {0} carries no tarball attachment")]
    MissingAttachment(String),
    #[error(
        "a whole-document update must name the revision it changes: send the `_rev` the package was read at (GET it with ?write=true)"
    )]
    MissingRevision,
    #[error("{0} belongs to a published version; unpublish the version first")]
    TarballInUse(String),
    #[error("revision {given} is stale: the package is now at revision {current}; fetch it again and retry")]
    StaleRevision { given: String, current: String },
    #[error("dist-tag {0:?} does not exist")]
    UnknownTag(String),
    #[error("version {0} does not exist")]
    UnknownVersion(String),
    #[error("{0}")]
    InvalidTag(String),
    #[error("invalid provenance: {0}")]
    Provenance(String),
    #[error("the stored packument is not valid: {0}")]
    Corrupt(String),
}
