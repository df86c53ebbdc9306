//! Browser sessions of the web UI, kept in the storage backend so that any replica behind a load
//! balancer knows them, and the signing key the UI's CSRF tokens are made with (created once, by
//! the first replica that needs it). The cookie holds a [`Ticket`]; storage only its hash.

use super::expiring::{Expiring, Kind, Ticket};
use crate::storage::document;
use crate::storage::{Storage, StorageError, StorageKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{SecondsFormat, Utc};
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long a browser stays logged in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a replica trusts a session it has read without asking storage again: a logout
/// applies at once on the replica that received it and within this time on the others (as for
/// tokens).
const CACHE_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    user: String,
    created: String,
}

/// A logged-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// The session's name in storage: what CSRF tokens are bound to (never the cookie's secret).
    pub id: String,
    /// Unix seconds.
    pub expires: i64,
}

pub struct Sessions {
    storage: Arc<dyn Storage>,
    records: Expiring,
    /// Session name → user.
    known: Cache<String, String>,
    key: OnceCell<Arc<[u8]>>,
}

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    key: String,
}

impl Sessions {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Sessions {
            records: Expiring::new(storage.clone(), Kind::Session),
            storage,
            known: Cache::builder().max_capacity(100_000).time_to_live(CACHE_TTL).build(),
            key: OnceCell::new(),
        }
    }

    /// Starts a session for `user` (whose password was just checked); returns the cookie value.
    pub async fn start(&self, user: &str) -> Result<(String, Session), StorageError> {
        self.records.sweep().await;
        let ticket = Ticket::new(SESSION_TTL);
        let record = SessionRecord {
            user: user.to_owned(),
            created: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        self.records.create(&ticket, &record).await?;
        let session = Session {
            user: user.to_owned(),
            id: ticket.name(),
            expires: ticket.expires,
        };
        self.known.insert(session.id.clone(), session.user.clone());
        Ok((ticket.encode(), session))
    }

    /// The session a cookie value names, if it is current.
    pub async fn resolve(&self, cookie: &str) -> Result<Option<Session>, StorageError> {
        let Some(ticket) = Ticket::parse(cookie).filter(|t| !t.expired()) else {
            return Ok(None);
        };
        let id = ticket.name();
        let user = match self.known.get(&id) {
            Some(user) => user,
            None => match self.records.read::<SessionRecord>(&ticket).await? {
                Some((r, _)) => {
                    self.known.insert(id.clone(), r.user.clone());
                    r.user
                }
                None => return Ok(None),
            },
        };
        Ok(Some(Session {
            user,
            id,
            expires: ticket.expires,
        }))
    }

    /// Ends the session a cookie value names (logout).
    pub async fn end(&self, cookie: &str) -> Result<(), StorageError> {
        if let Some(ticket) = Ticket::parse(cookie) {
            self.known.invalidate(&ticket.name());
            self.records.delete(&ticket).await?;
        }
        Ok(())
    }

    /// The key CSRF tokens are signed with: read from storage, or made and stored by the first
    /// replica that needs one (a replica that loses that race reads the winner's).
    pub async fn signing_key(&self) -> Result<Arc<[u8]>, StorageError> {
        self.key.get_or_try_init(|| self.load_or_create_key()).await.cloned()
    }

    async fn load_or_create_key(&self) -> Result<Arc<[u8]>, StorageError> {
        let key = StorageKey::WebKey.key()?;
        let not_a_key = || StorageError::Unavailable(format!("{} is not a signing key", key.as_str()));
        let record = document::create_once(self.storage.as_ref(), &key, || KeyRecord {
            key: STANDARD.encode(rand::random::<[u8; 32]>()),
        })
        .await
        // A record that does not parse is reported as the wrong kind of record.
        .map_err(|e| match e {
            StorageError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::InvalidData => not_a_key(),
            e => e,
        })?;
        STANDARD
            .decode(record.into_inner().key)
            .ok()
            .filter(|k| k.len() >= 32)
            .map(Arc::from)
            .ok_or_else(not_a_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn a_session_is_seen_by_another_replica_until_it_ends() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let (a, b) = (Sessions::new(storage.clone()), Sessions::new(storage.clone()));
        let (cookie, session) = a.start("alice").await.unwrap();
        assert_eq!(b.resolve(&cookie).await.unwrap(), Some(session.clone()));
        assert_eq!(b.resolve("garbage").await.unwrap(), None);
        let forged = cookie.replacen(&session.expires.to_string(), &(session.expires + 99).to_string(), 1);
        assert_eq!(
            b.resolve(&forged).await.unwrap(),
            None,
            "a longer expiry is another record"
        );
        a.end(&cookie).await.unwrap();
        assert_eq!(a.resolve(&cookie).await.unwrap(), None, "at once on this replica");
        let c = Sessions::new(storage);
        assert_eq!(c.resolve(&cookie).await.unwrap(), None);
    }

    #[tokio::test]
    async fn replicas_share_one_signing_key() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let (a, b) = (Sessions::new(storage.clone()), Sessions::new(storage));
        let (ka, kb) = tokio::join!(a.signing_key(), b.signing_key());
        assert_eq!(ka.unwrap(), kb.unwrap());
        assert_eq!(a.signing_key().await.unwrap().len(), 32);
    }
}
