//! Registry signatures at run time: the keyring (a key file, or a key kept in storage), the
//! signatures of hosted versions (each signed once and kept in a bounded cache, since a document
//! of 3,000 versions is rebuilt whenever it changes), the keys `GET /-/npm/v1/keys` serves, and
//! the uplinks' keys served beside ours ([`uplinks`]), so that proxied versions, which keep their
//! upstream signatures, verify too.

mod keyring;
pub mod uplinks;

pub use keyring::Keyring;

use crate::config::Signing;
use crate::package::signature::{KEY_TYPE, PublicKey};
use crate::reminder::{REMIND_EVERY, Reminder};
use crate::storage::{Storage, StorageError};
use chrono::{DateTime, SecondsFormat, Utc};
use moka::sync::Cache;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

/// Room for signatures kept, in bytes of their payload and signature text (about 250 bytes
/// each: some 60,000 versions).
const SIGNATURE_CACHE: u64 = 16 * 1024 * 1024;
/// How often the key source is checked for a change (another replica's rotation, a Secret
/// updated in place).
const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How often keys not read yet are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("`{key}`: cannot use {path}: {reason}")]
    File { key: String, path: String, reason: String },
    #[error("the stored signing keys (.npm-registry/signing/keys.json) are damaged: {0}")]
    Corrupt(String),
    #[error("the stored signing keys kept changing while being created or rotated")]
    Contended,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<crate::storage::document::Contended> for SigningError {
    fn from(_: crate::storage::document::Contended) -> Self {
        SigningError::Contended
    }
}

pub struct Signer {
    config: Signing,
    storage: Arc<dyn Storage>,
    /// `None` until the keys could be read: storage was unavailable at start (the server starts
    /// anyway and says so in `/-/ready`; the keys are read as soon as storage answers).
    ring: RwLock<Option<Arc<Keyring>>>,
    /// A fingerprint of the signing key (`0`: none read yet): documents prepared under another
    /// carry old signatures. The same in every process and after a restart, so the ETags of
    /// documents signed by another key differ (a client or a proxy revalidating gets them anew).
    generation: AtomicU64,
    /// `keyid` + payload → signature.
    cache: Cache<String, Arc<str>>,
}

/// One key as `GET /-/npm/v1/keys` lists it.
pub fn key_json(key: &PublicKey, expires: Option<DateTime<Utc>>) -> Value {
    json!({
        "expires": expires.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        "keyid": key.keyid,
        "keytype": KEY_TYPE,
        "scheme": KEY_TYPE,
        "key": key.key,
    })
}

impl Signer {
    /// The signer `config` describes, or `None` when signing is off. Fails when a key file is
    /// missing or not a P-256 key, or the stored keys are damaged; storage that cannot be used
    /// now only delays the keys (see `ring`).
    pub async fn start(config: &Signing, storage: Arc<dyn Storage>) -> Result<Option<Arc<Signer>>, SigningError> {
        if !config.enabled {
            return Ok(None);
        }
        let ring = match Keyring::load(config, storage.as_ref()).await {
            Ok(ring) => {
                tracing::info!(keyid = %ring.current.public().keyid, "signing hosted versions");
                Some(Arc::new(ring))
            }
            Err(SigningError::Storage(e)) => {
                tracing::error!(error = %e, "signing keys not read yet (storage unavailable); retrying");
                None
            }
            Err(e) => return Err(e),
        };
        let generation = ring.as_deref().map_or(0, fingerprint);
        let signer = Arc::new(Signer {
            config: config.clone(),
            storage,
            ring: RwLock::new(ring),
            generation: AtomicU64::new(generation),
            cache: Cache::builder()
                .max_capacity(SIGNATURE_CACHE)
                .weigher(|k: &String, v: &Arc<str>| (k.len() + v.len() + 64).try_into().unwrap_or(u32::MAX))
                .build(),
        });
        spawn_refresh(Arc::downgrade(&signer));
        Ok(Some(signer))
    }

    /// The keys, once read (they never go back to none).
    pub fn keyring(&self) -> Option<Arc<Keyring>> {
        self.ring.read().expect("not poisoned").clone()
    }

    /// Changes whenever the signing key does (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `dist.signatures` of a hosted version: the signing key's signature of
    /// `${name}@${version}:${integrity}`.
    pub fn signatures(&self, name: &str, version: &str, integrity: &str) -> Value {
        let Some(ring) = self.keyring() else {
            return Value::Array(Vec::new());
        };
        let key = &ring.current;
        let keyid = &key.public().keyid;
        let cache_key = format!(
            "{keyid} {}",
            crate::package::signature::payload(name, version, integrity)
        );
        let sig = self
            .cache
            .get_with(cache_key, || Arc::from(key.sign(name, version, integrity)));
        json!([{"keyid": keyid, "sig": &*sig}])
    }

    /// Our keys as `GET /-/npm/v1/keys` lists them.
    pub fn keys(&self) -> Vec<Value> {
        let Some(ring) = self.keyring() else {
            return Vec::new();
        };
        ring.public_keys().map(|(k, expires)| key_json(k, expires)).collect()
    }

    /// Re-reads the keyring when its source changed.
    pub(crate) async fn refresh(&self) -> Result<(), SigningError> {
        let ring = self.keyring();
        if let Some(ring) = &ring
            && !ring.stale(&self.config, self.storage.as_ref()).await?
        {
            return Ok(());
        }
        let new = Keyring::load(&self.config, self.storage.as_ref()).await?;
        if ring.is_none_or(|r| new.origin != r.origin) {
            tracing::info!(keyid = %new.current.public().keyid, "signing keys changed");
            let generation = fingerprint(&new);
            *self.ring.write().expect("not poisoned") = Some(Arc::new(new));
            self.generation.store(generation, Ordering::Release);
        }
        Ok(())
    }
}

/// The first 8 bytes of the SHA-256 of the signing key's id; never `0`.
fn fingerprint(ring: &Keyring) -> u64 {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(ring.current.public().keyid.as_bytes());
    u64::from_be_bytes(hash[..8].try_into().expect("8 bytes")).max(1)
}

/// Checks the key source every [`REFRESH_EVERY`] while the signer is in use.
fn spawn_refresh(signer: Weak<Signer>) {
    // A start without keys has logged why already.
    let mut reminder = Reminder::default();
    if signer.upgrade().is_some_and(|s| s.keyring().is_none()) {
        reminder.failed(std::time::Instant::now());
    }
    tokio::spawn(async move {
        loop {
            let loaded = signer.upgrade().is_some_and(|s| s.keyring().is_some());
            tokio::time::sleep(if loaded { REFRESH_EVERY } else { RETRY_EVERY }).await;
            let Some(signer) = signer.upgrade() else {
                return;
            };
            match signer.refresh().await {
                Ok(()) => {
                    if reminder.succeeded() {
                        tracing::info!("signing keys read again");
                    }
                }
                Err(e) => {
                    if let Some(quiet) = reminder.failed(std::time::Instant::now()) {
                        tracing::warn!(
                            error = %e,
                            failures_not_logged = quiet,
                            "signing keys not refreshed; signing with the ones read before (retrying every {RETRY_EVERY:?}, \
                             logged once per {REMIND_EVERY:?})"
                        );
                    }
                }
            }
        }
    });
}
