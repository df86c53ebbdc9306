//! The npm domain, free of HTTP, identities, configuration and storage: package names, version
//! ranges, packument views, the merge of a publish, whole-document updates (deprecate, unpublish
//! of a version), dist-tags, search.

pub mod deletion;
pub mod error;
pub mod integrity;
pub mod merge;
pub mod name;
pub mod packument;
pub mod provenance;
pub mod publish;
pub mod range;
pub mod raw_manifests;
pub mod revision;
pub mod search;
pub mod signature;
pub mod tags;
pub mod update;

pub use error::PackageError;
pub use name::PackageName;
