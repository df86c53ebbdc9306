//! The registry's keys: the one that signs now and the retired ones still served (each with when
//! it stopped signing: npm trusts a key for versions published before its `expires`). From a PEM
//! file (a mounted Secret, re-read when it changes), or generated and kept in storage: created
//! with a create-only write, so that replicas starting together all end up with the first
//! writer's key, and rotated (`signing.rotate_before`) with a compare-and-swap write.

use super::SigningError;
use crate::config::{KeySource, RetiredKey, Signing};
use crate::package::signature::{self, PublicKey, RegistryKey};
use crate::storage::document::{self, Step};
use crate::storage::{Key, Revision, Storage, StorageKey};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Keyring {
    pub current: RegistryKey,
    /// Keys that no longer sign, with when they stopped.
    pub retired: Vec<(PublicKey, DateTime<Utc>)>,
    /// What the keyring was read from: a file's text, or the stored document's revision.
    pub(super) origin: Origin,
    /// When the stored signing key was made (`None` for a key file).
    created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    File(String),
    Stored(Revision),
}

/// The stored document (`StorageKey::SigningKeys`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    keys: Vec<StoredKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    /// PKCS#8 PEM.
    pem: String,
    created: String,
    /// `None` for the signing key.
    expires: Option<String>,
}

/// Full precision, so that a key made just after `rotate_before` never reads as older than it.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

fn key_path() -> Key {
    StorageKey::SigningKeys.key().expect("a constant key")
}

/// A fresh key from the OS's random numbers.
pub fn generate() -> RegistryKey {
    loop {
        if let Some(k) = RegistryKey::from_random(rand::random()) {
            return k;
        }
    }
}

fn read_pem(key: &str, path: &Path) -> Result<String, SigningError> {
    std::fs::read_to_string(path).map_err(|e| SigningError::File {
        key: key.to_owned(),
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn retired_from_files(config: &[RetiredKey]) -> Result<Vec<(PublicKey, DateTime<Utc>)>, SigningError> {
    config
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = format!("signing.retired_keys[{i}].key_file");
            let pem = read_pem(&key, &r.file)?;
            let public = signature::public_from_pem(&pem).map_err(|e| SigningError::File {
                key,
                path: r.file.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok((public, r.expires))
        })
        .collect()
}

impl Keyring {
    /// The keyring `config` describes, from its files or storage (creating or rotating the stored
    /// key when needed).
    pub async fn load(config: &Signing, storage: &dyn Storage) -> Result<Keyring, SigningError> {
        let retired = retired_from_files(&config.retired)?;
        match &config.key {
            KeySource::File(path) => {
                let pem = read_pem("signing.key_file", path)?;
                let current = RegistryKey::from_pem(&pem).map_err(|e| SigningError::File {
                    key: "signing.key_file".into(),
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Ok(Keyring {
                    current,
                    retired,
                    origin: Origin::File(pem),
                    created_at: None,
                })
            }
            KeySource::Stored { rotate_before } => {
                let mut ring = load_stored(storage, *rotate_before, Utc::now()).await?;
                ring.retired.extend(retired);
                Ok(ring)
            }
        }
    }

    /// Every key to serve: the signing one (no `expires`), then the retired ones.
    pub fn public_keys(&self) -> impl Iterator<Item = (&PublicKey, Option<DateTime<Utc>>)> {
        std::iter::once((self.current.public(), None)).chain(self.retired.iter().map(|(k, t)| (k, Some(*t))))
    }

    /// Whether the source changed since this keyring was read (a cheap check: a stat or HEAD of
    /// the stored document, or the key file's text).
    pub(super) async fn stale(&self, config: &Signing, storage: &dyn Storage) -> Result<bool, SigningError> {
        match (&self.origin, &config.key) {
            (Origin::File(text), KeySource::File(path)) => {
                let now = tokio::fs::read_to_string(path).await.unwrap_or_else(|_| text.clone());
                Ok(now != *text)
            }
            (Origin::Stored(revision), KeySource::Stored { rotate_before }) => {
                let due = rotate_before.is_some_and(|t| Utc::now() >= t)
                    && self.created_at.is_some_and(|c| Some(c) < *rotate_before);
                Ok(due || storage.revision(&key_path()).await?.as_ref() != Some(revision))
            }
            _ => Ok(true),
        }
    }
}

fn parse_stored(bytes: &[u8]) -> Result<Stored, SigningError> {
    serde_json::from_slice(bytes).map_err(|e| SigningError::Corrupt(e.to_string()))
}

/// The keyring of a stored document, and when its signing key was made.
fn ring_of(doc: &Stored, revision: Revision) -> Result<(Keyring, DateTime<Utc>), SigningError> {
    let current = doc
        .keys
        .iter()
        .filter(|k| k.expires.is_none())
        .max_by(|a, b| a.created.cmp(&b.created))
        .ok_or_else(|| SigningError::Corrupt("no key without expires".into()))?;
    let signing = RegistryKey::from_pem(&current.pem).map_err(|e| SigningError::Corrupt(e.to_string()))?;
    let mut retired = Vec::new();
    for k in &doc.keys {
        if std::ptr::eq(k, current) {
            continue;
        }
        let public = signature::public_from_pem(&k.pem).map_err(|e| SigningError::Corrupt(e.to_string()))?;
        // A second key without `expires` (never written by us) stops counting from its creation.
        let expires = k.expires.as_deref().or(Some(k.created.as_str())).and_then(parse_time);
        retired.push((public, expires.unwrap_or_default()));
    }
    let created = parse_time(&current.created).unwrap_or_default();
    Ok((
        Keyring {
            current: signing,
            retired,
            origin: Origin::Stored(revision),
            created_at: Some(created),
        },
        created,
    ))
}

fn new_key(now: DateTime<Utc>) -> StoredKey {
    StoredKey {
        pem: generate().to_pem(),
        created: stamp(now),
        expires: None,
    }
}

/// Reads the stored keyring; creates it when absent, rotates it when `rotate_before` says so.
async fn load_stored(
    storage: &dyn Storage,
    rotate_before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Keyring, SigningError> {
    let key = key_path();
    let (next, revision) = document::update_raw_at(storage, &key, "the signing keyring", |stored| {
        let Some(v) = stored else {
            let next = Stored {
                keys: vec![new_key(now)],
            };
            return Ok(Step::Write(to_bytes(&next), Outcome::Written(next)));
        };
        let doc = parse_stored(&v.bytes)?;
        let (ring, created) = ring_of(&doc, v.revision.clone())?;
        let due = rotate_before.is_some_and(|t| now >= t && created < t);
        if !due {
            return Ok(Step::Keep(Outcome::Current(Box::new(ring))));
        }
        let mut keys = doc.keys.clone();
        for k in keys.iter_mut().filter(|k| k.expires.is_none()) {
            k.expires = Some(stamp(now));
        }
        keys.push(new_key(now));
        tracing::info!(retired = %ring.current.public().keyid, "rotating the signing key (signing.rotate_before)");
        let next = Stored { keys };
        Ok::<_, SigningError>(Step::Write(to_bytes(&next), Outcome::Written(next)))
    })
    .await?;
    match (next, revision) {
        (Outcome::Current(ring), _) => Ok(*ring),
        (Outcome::Written(next), Some(revision)) => {
            let (ring, _) = ring_of(&next, revision)?;
            tracing::info!(keyid = %ring.current.public().keyid, "new signing key stored");
            Ok(ring)
        }
        (Outcome::Written(_), None) => unreachable!("a write leaves a revision"),
    }
}

/// What [`load_stored`]'s update found: a keyring to use as stored, or the document it wrote.
enum Outcome {
    Current(Box<Keyring>),
    Written(Stored),
}

fn to_bytes(doc: &Stored) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(doc).expect("keys serialize"))
}

#[cfg(test)]
mod tests;
