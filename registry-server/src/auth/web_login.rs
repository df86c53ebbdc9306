//! Pending `npm login --auth-type=web` logins, in the storage backend so that npm's polling and
//! the browser's approval may reach different replicas. npm starts one and polls it; a logged-in
//! browser approves or refuses it; the first poll after approval claims it (once: a
//! compare-and-swap, so two polls never both get a token) and the caller issues the token.
//! The token itself is never stored here.

use super::expiring::{Expiring, Kind, Ticket};
use super::limiter::client_of;
use crate::storage::{Storage, StorageError};
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long npm may wait for the browser.
pub const WEB_LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// Anyone may start a login, and each start writes to storage: per client address (an IPv6
/// client by its /64, which one host usually holds whole), at most this many within
/// [`WEB_LOGIN_TTL`]. There is no process-wide count, which clients at many addresses could use
/// up for everyone; what starts cost is bounded per address (one small record, expiring with
/// the login) and the table of counts is capped.
pub const STARTS_PER_ADDRESS: u32 = 30;
const COUNTED_ADDRESSES: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("too many web logins started; try again in {} minutes", WEB_LOGIN_TTL.as_secs() / 60)]
    TooMany,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
enum Record {
    Pending,
    Approved { user: String },
    Refused,
    Claimed,
}

/// What a pending login is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    /// Approved by this user: the caller issues their token (given once).
    Approved(String),
    Refused,
    /// Unknown, expired or already claimed.
    Gone,
}

pub struct WebLogins {
    records: Expiring,
    /// Logins started by each client address within the window: an atomic counter each.
    starts: Cache<IpAddr, Arc<AtomicU32>>,
}

impl WebLogins {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        WebLogins {
            records: Expiring::new(storage, Kind::WebLogin),
            starts: Cache::builder()
                .max_capacity(COUNTED_ADDRESSES)
                .time_to_live(WEB_LOGIN_TTL)
                .build(),
        }
    }

    /// Counts a start from `from`; false past the limit. One atomic increment: concurrent
    /// starts from an address can never pass it together.
    fn admit(&self, from: Option<IpAddr>) -> bool {
        let Some(from) = from else {
            return true;
        };
        let counter = self.starts.get_with(client_of(from), || Arc::new(AtomicU32::new(0)));
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < STARTS_PER_ADDRESS).then_some(n + 1)
            })
            .is_ok()
    }

    /// Starts a login from client address `from`; the ticket goes into both URLs npm is given.
    pub async fn start(&self, from: Option<IpAddr>) -> Result<String, StartError> {
        if !self.admit(from) {
            return Err(StartError::TooMany);
        }
        self.records.sweep().await;
        let ticket = Ticket::new(WEB_LOGIN_TTL);
        self.records.create(&ticket, &Record::Pending).await?;
        Ok(ticket.encode())
    }

    async fn read(&self, ticket: &str) -> Result<Option<(Ticket, Record, crate::storage::Revision)>, StorageError> {
        let Some(t) = Ticket::parse(ticket) else {
            return Ok(None);
        };
        Ok(self.records.read(&t).await?.map(|(r, rev)| (t, r, rev)))
    }

    /// Whether a login is still waiting for the browser (for the approval page).
    pub async fn is_pending(&self, ticket: &str) -> Result<bool, StorageError> {
        Ok(matches!(self.read(ticket).await?, Some((_, Record::Pending, _))))
    }

    /// The browser's answer: approved as `user`, or refused (`None`). False when the login is no
    /// longer pending.
    pub async fn decide(&self, ticket: &str, user: Option<&str>) -> Result<bool, StorageError> {
        let Some((t, Record::Pending, rev)) = self.read(ticket).await? else {
            return Ok(false);
        };
        let next = match user {
            Some(u) => Record::Approved { user: u.to_owned() },
            None => Record::Refused,
        };
        self.records.replace(&t, &next, &rev).await
    }

    /// npm's poll. An approved login is claimed by the first poll and gone for every later one.
    pub async fn poll(&self, ticket: &str) -> Result<Status, StorageError> {
        let Some((t, record, rev)) = self.read(ticket).await? else {
            return Ok(Status::Gone);
        };
        match record {
            Record::Pending => Ok(Status::Pending),
            Record::Refused => {
                self.records.delete(&t).await?;
                Ok(Status::Refused)
            }
            Record::Claimed => Ok(Status::Gone),
            Record::Approved { user } => {
                if !self.records.replace(&t, &Record::Claimed, &rev).await? {
                    return Ok(Status::Gone);
                }
                // Claimed is final; deleting it is tidiness (the sweep would do it too).
                if let Err(e) = self.records.delete(&t).await {
                    tracing::warn!(error = %e, "could not delete a claimed web login");
                }
                Ok(Status::Approved(user))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn approved_once_then_gone() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let (npm_side, browser_side) = (WebLogins::new(storage.clone()), WebLogins::new(storage));
        let ticket = npm_side.start(None).await.unwrap();
        assert_eq!(npm_side.poll(&ticket).await.unwrap(), Status::Pending);
        assert!(browser_side.is_pending(&ticket).await.unwrap());
        assert!(browser_side.decide(&ticket, Some("alice")).await.unwrap());
        assert!(!browser_side.decide(&ticket, None).await.unwrap(), "decided already");
        assert!(!browser_side.is_pending(&ticket).await.unwrap());
        let (a, b) = tokio::join!(npm_side.poll(&ticket), browser_side.poll(&ticket));
        let mut got = [a.unwrap(), b.unwrap()];
        got.sort_by_key(|s| matches!(s, Status::Gone));
        assert_eq!(got, [Status::Approved("alice".into()), Status::Gone], "one poll wins");
        assert_eq!(npm_side.poll(&ticket).await.unwrap(), Status::Gone);
        assert_eq!(npm_side.poll("1.not-a-ticket").await.unwrap(), Status::Gone);
    }

    #[tokio::test]
    async fn refused() {
        let logins = WebLogins::new(Arc::new(MemoryStorage::default()));
        let ticket = logins.start(None).await.unwrap();
        assert!(logins.decide(&ticket, None).await.unwrap());
        assert_eq!(logins.poll(&ticket).await.unwrap(), Status::Refused);
        assert_eq!(logins.poll(&ticket).await.unwrap(), Status::Gone);
    }

    #[tokio::test]
    async fn starts_are_limited_per_address() {
        let logins = WebLogins::new(Arc::new(MemoryStorage::default()));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..STARTS_PER_ADDRESS {
            logins.start(Some(a)).await.unwrap();
        }
        assert!(matches!(logins.start(Some(a)).await, Err(StartError::TooMany)));
        assert!(logins.start(Some(b)).await.is_ok(), "another address");
        let (c, d): (IpAddr, IpAddr) = ("2001:db8::1".parse().unwrap(), "2001:db8::ffff:2".parse().unwrap());
        assert_eq!(client_of(c), client_of(d), "one /64");
        assert_ne!(client_of(c), client_of("2001:db8:0:1::1".parse().unwrap()));
    }

    #[tokio::test]
    async fn concurrent_starts_from_many_addresses_never_pass_the_limit_nor_shut_out_others() {
        let logins = Arc::new(WebLogins::new(Arc::new(MemoryStorage::default())));
        let tasks: Vec<_> = (0..170u32)
            .flat_map(|i| std::iter::repeat_n(i, STARTS_PER_ADDRESS as usize + 5))
            .map(|i| {
                let logins = logins.clone();
                tokio::spawn(async move {
                    let from = IpAddr::from([127, 0, (i / 250) as u8, (i % 250 + 1) as u8]);
                    logins.start(Some(from)).await.is_ok()
                })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            admitted += u32::from(t.await.unwrap());
        }
        assert_eq!(admitted, 170 * STARTS_PER_ADDRESS);
        assert!(logins.start(Some("127.0.9.9".parse().unwrap())).await.is_ok());
    }
}
