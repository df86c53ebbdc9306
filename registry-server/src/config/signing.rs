//! `signing`: where the key that signs hosted versions comes from, and the retired keys still
//! served so that what they signed keeps verifying. The key files are read when the server is
//! built (`signing::Keyring`), so that a missing Secret stops it with the key's name.

use super::{ConfigError, invalid, join_clean};
use chrono::{DateTime, Utc};
use registry_config::SigningFile;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Signing {
    /// Off: no `dist.signatures`, and `GET /-/npm/v1/keys` answers 404 (npm then checks nothing).
    pub enabled: bool,
    pub key: KeySource,
    pub retired: Vec<RetiredKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// `signing.key_file`: a PEM file, typically a mounted Kubernetes Secret.
    File(PathBuf),
    /// Generated on first start and kept in the storage backend; a stored key made before
    /// `rotate_before` is retired once that time has come.
    Stored { rotate_before: Option<DateTime<Utc>> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetiredKey {
    pub file: PathBuf,
    pub expires: DateTime<Utc>,
}

impl Default for Signing {
    fn default() -> Self {
        Signing {
            enabled: true,
            key: KeySource::Stored { rotate_before: None },
            retired: Vec::new(),
        }
    }
}

fn instant(key: &str, text: &str) -> Result<DateTime<Utc>, ConfigError> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            invalid(
                key,
                format!("{text:?} is not an RFC 3339 time such as 2026-12-01T00:00:00Z: {e}"),
            )
        })
}

pub(super) fn resolve(raw: Option<SigningFile>, base: &Path) -> Result<Signing, ConfigError> {
    let raw = raw.unwrap_or_default();
    let rotate_before = raw
        .rotate_before
        .as_deref()
        .map(|t| instant("signing.rotate_before", t))
        .transpose()?;
    let key = match raw.key_file {
        Some(file) if rotate_before.is_some() => {
            return Err(invalid(
                "signing.rotate_before",
                format!(
                    "applies to the key kept in storage, not to key_file {file:?}: rotate a key file by \
                     giving the new one as key_file and the old one under retired_keys with its expires"
                ),
            ));
        }
        Some(file) if file.trim().is_empty() => return Err(invalid("signing.key_file", "is empty")),
        Some(file) => KeySource::File(join_clean(base, &file)),
        None => KeySource::Stored { rotate_before },
    };
    let mut retired = Vec::new();
    for (i, r) in raw.retired_keys.unwrap_or_default().into_iter().enumerate() {
        let key = |field: &str| format!("signing.retired_keys[{i}].{field}");
        let file = r
            .key_file
            .filter(|f| !f.trim().is_empty())
            .ok_or_else(|| invalid(key("key_file"), "is required: the PEM file of the retired key"))?;
        let expires = r.expires.ok_or_else(|| {
            invalid(
                key("expires"),
                "is required: when the key stopped signing (npm trusts it for versions published before)",
            )
        })?;
        retired.push(RetiredKey {
            file: join_clean(base, &file),
            expires: instant(&key("expires"), &expires)?,
        });
    }
    Ok(Signing {
        enabled: raw.enabled.unwrap_or(true),
        key,
        retired,
    })
}
