//! Short-lived records in storage, shared by every replica: browser sessions and pending web
//! logins. The client holds a [`Ticket`] (`<expiry>.<secret>`); the record is stored under
//! `<expiry>-<SHA-256 of the secret>`, so reading storage never yields a usable ticket, a forged
//! expiry finds no record, and a sweep drops expired records from a listing without reading them.

use crate::storage::document;
use crate::storage::{Key, Revision, Storage, StorageError, StorageKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How often one process looks for expired records to delete.
const SWEEP_EVERY: i64 = 3600;

/// What a client holds: the record's expiry (Unix seconds) and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub expires: i64,
    secret: String,
}

impl Ticket {
    /// A new random ticket valid for `ttl`.
    pub fn new(ttl: Duration) -> Ticket {
        Ticket {
            expires: Utc::now().timestamp() + ttl.as_secs() as i64,
            secret: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        }
    }

    /// A ticket valid until `expires` whose secret is derived from `material`: for records named
    /// by what they are about (an id-token's issuer and `jti`), so a second one collides.
    pub fn derived(expires: i64, material: &[u8]) -> Ticket {
        Ticket {
            expires,
            secret: URL_SAFE_NO_PAD.encode(Sha256::digest(material)),
        }
    }

    /// Reads what [`Ticket::encode`] wrote; `None` for anything else.
    pub fn parse(s: &str) -> Option<Ticket> {
        let (expires, secret) = s.split_once('.')?;
        let ok = secret.len() == 43
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        Some(Ticket {
            expires: expires.parse().ok().filter(|_| ok)?,
            secret: secret.to_owned(),
        })
    }

    pub fn encode(&self) -> String {
        format!("{}.{}", self.expires, self.secret)
    }

    /// The record's name in storage: never enough to rebuild the ticket.
    pub fn name(&self) -> String {
        format!(
            "{}-{}",
            self.expires,
            hex::encode(Sha256::digest(self.secret.as_bytes()))
        )
    }

    pub fn expired(&self) -> bool {
        self.expires <= Utc::now().timestamp()
    }
}

/// The kinds of expiring records.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Session,
    WebLogin,
    /// Exchanged OIDC id-tokens, kept to refuse a replay.
    IdToken,
}

impl Kind {
    fn folder(self) -> StorageKey<'static> {
        match self {
            Kind::Session => StorageKey::WebSessions,
            Kind::WebLogin => StorageKey::WebLogins,
            Kind::IdToken => StorageKey::IdTokens,
        }
    }

    fn record(self, name: &str) -> StorageKey<'_> {
        match self {
            Kind::Session => StorageKey::WebSession { name },
            Kind::WebLogin => StorageKey::WebLogin { name },
            Kind::IdToken => StorageKey::IdToken { name },
        }
    }
}

pub struct Expiring {
    storage: Arc<dyn Storage>,
    kind: Kind,
    last_sweep: AtomicI64,
}

impl Expiring {
    pub fn new(storage: Arc<dyn Storage>, kind: Kind) -> Self {
        Expiring {
            storage,
            kind,
            last_sweep: AtomicI64::new(0),
        }
    }

    fn key(&self, ticket: &Ticket) -> Result<Key, StorageError> {
        self.kind.record(&ticket.name()).key()
    }

    pub async fn create<T: Serialize>(&self, ticket: &Ticket, value: &T) -> Result<(), StorageError> {
        document::insert(self.storage.as_ref(), &self.key(ticket)?, value)
            .await
            .map(|_| ())
    }

    /// Creates the record unless it exists: false when it did (by any replica).
    pub async fn create_new<T: Serialize>(&self, ticket: &Ticket, value: &T) -> Result<bool, StorageError> {
        Ok(document::create(self.storage.as_ref(), &self.key(ticket)?, value)
            .await?
            .is_some())
    }

    /// The record and its revision; `None` when absent or expired.
    pub async fn read<T: DeserializeOwned>(&self, ticket: &Ticket) -> Result<Option<(T, Revision)>, StorageError> {
        if ticket.expired() {
            return Ok(None);
        }
        let doc = document::read(self.storage.as_ref(), &self.key(ticket)?).await?;
        Ok(doc.map(|d| (d.value, d.revision)))
    }

    /// Replaces the record if nobody changed it since `expected`; false when somebody did.
    pub async fn replace<T: Serialize>(
        &self,
        ticket: &Ticket,
        value: &T,
        expected: &Revision,
    ) -> Result<bool, StorageError> {
        let key = self.key(ticket)?;
        Ok(
            document::replace_value_at(self.storage.as_ref(), &key, value, Some(expected))
                .await?
                .is_some(),
        )
    }

    pub async fn delete(&self, ticket: &Ticket) -> Result<(), StorageError> {
        document::remove(self.storage.as_ref(), &self.key(ticket)?).await
    }

    /// Deletes expired records, at most once an hour per process; a failure is only logged (the
    /// records stay harmless: an expired ticket is never honoured).
    pub async fn sweep(&self) {
        let now = Utc::now().timestamp();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.sweep_now(now).await {
            tracing::warn!(error = %e, kind = ?self.kind, "could not delete expired web records");
        }
    }

    async fn sweep_now(&self, now: i64) -> Result<usize, StorageError> {
        let mut deleted = 0;
        for file in self.storage.list(&self.kind.folder().key()?).await? {
            let Some(name) = file.strip_suffix(".json") else {
                continue;
            };
            let expired = name
                .split_once('-')
                .and_then(|(e, _)| e.parse::<i64>().ok())
                .is_some_and(|e| e <= now);
            if expired {
                let key = self.kind.record(name).key()?;
                if let Some(revision) = self.storage.revision(&key).await?
                    && document::delete_at(self.storage.as_ref(), &key, &revision).await?
                {
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;
    use serde_json::{Value, json};

    #[test]
    fn tickets_round_trip_and_name_hides_the_secret() {
        let t = Ticket::new(Duration::from_secs(60));
        let s = t.encode();
        assert_eq!(Ticket::parse(&s), Some(t.clone()));
        assert!(!t.name().contains(&t.secret));
        assert!(!t.expired());
        for bad in ["", "1.", "x.abc", "12", &format!("{}.{}!", t.expires, &t.secret[1..])] {
            assert_eq!(Ticket::parse(bad), None, "{bad}");
        }
        let forged = Ticket::parse(&format!("{}.{}", t.expires + 1000, t.secret)).unwrap();
        assert_ne!(forged.name(), t.name(), "the expiry is part of the record's name");
    }

    #[tokio::test]
    async fn records_expire_and_are_swept() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let store = Expiring::new(storage.clone(), Kind::Session);
        let live = Ticket::new(Duration::from_secs(60));
        store.create(&live, &json!({"user": "a"})).await.unwrap();
        let old = Ticket {
            expires: Utc::now().timestamp() - 1,
            secret: URL_SAFE_NO_PAD.encode([7u8; 32]),
        };
        store.create(&old, &json!({"user": "b"})).await.unwrap();
        assert!(store.read::<Value>(&old).await.unwrap().is_none(), "expired");
        let (v, rev) = store.read::<Value>(&live).await.unwrap().unwrap();
        assert_eq!(v["user"], "a");
        assert!(store.replace(&live, &json!({"user": "c"}), &rev).await.unwrap());
        assert!(
            !store.replace(&live, &json!({"user": "d"}), &rev).await.unwrap(),
            "stale revision"
        );
        assert_eq!(store.sweep_now(Utc::now().timestamp()).await.unwrap(), 1);
        let folder = StorageKey::WebSessions.key().unwrap();
        assert_eq!(storage.list(&folder).await.unwrap(), [format!("{}.json", live.name())]);
        store.delete(&live).await.unwrap();
        assert!(store.read::<Value>(&live).await.unwrap().is_none());
    }
}
