//! Verdaccio's storage layout: `<name>/package.json`, tarballs beside it, and the list of locally
//! published packages in `.verdaccio-db.json` (on disk) or `verdaccio-s3-db.json` (its S3 plugin).
//! Backends add their own root (a folder, a bucket and key prefix).

use super::{Key, StorageError};
use crate::package::PackageName;

pub fn package_dir(name: &PackageName) -> Result<Key, StorageError> {
    Key::new(name.as_str())
}

pub fn packument(name: &PackageName) -> Result<Key, StorageError> {
    Key::new(format!("{name}/package.json"))
}

pub fn tarball(name: &PackageName, file: &str) -> Result<Key, StorageError> {
    Key::new(format!("{name}/{file}"))
}

/// Verdaccio's `{"list": [...], "secret": "..."}` of locally published packages.
pub fn package_list() -> Key {
    Key::new(".verdaccio-db.json").expect("constant key")
}

/// The S3 plugin's name for the same list.
pub fn s3_package_list() -> Key {
    Key::new("verdaccio-s3-db.json").expect("constant key")
}
