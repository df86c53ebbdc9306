//! The one write protocol for stored documents, on top of a backend's compare-and-swap: read
//! with revision, update through one bounded retry loop with jitter, create-once returning the
//! winner's value, replace-at a revision, and a lease. It knows bytes and serde types, never what
//! a document means; every conditional write of the server goes through here, so a lost race
//! (`Conflict`, `AlreadyExists`) is named nowhere above the storage floor.

use super::{Key, Revision, Storage, StorageError, Versioned};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Attempts of one change before giving up with [`Contended`].
pub const MAX_ATTEMPTS: u32 = 100;

/// A change lost the race [`MAX_ATTEMPTS`] times in a row (names what it changed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0} is being changed by too many writers at once; try again")]
pub struct Contended(pub String);

impl From<Contended> for StorageError {
    fn from(e: Contended) -> Self {
        StorageError::Unavailable(e.to_string())
    }
}

/// A stored document, parsed, with the revision it was read at.
#[derive(Debug, Clone)]
pub struct Doc<T> {
    pub value: T,
    pub revision: Revision,
}

/// One read → change → write of a document, for [`retry`]; `Ok(None)` when the write lost a race
/// (the document changed since it was read).
pub trait Attempt: Send {
    type Output;
    type Error: From<Contended>;
    fn run(&mut self, attempt: u32) -> impl Future<Output = Result<Option<Self::Output>, Self::Error>> + Send;
}

/// The retry loop: runs `change` until it writes, again after each lost race following a
/// jittered backoff that grows a little with each one (so replicas racing on one document spread
/// out); gives up with [`Contended`] naming `subject` after [`MAX_ATTEMPTS`].
pub async fn retry<A: Attempt>(subject: &str, mut change: A) -> Result<A::Output, A::Error> {
    for attempt in 0..MAX_ATTEMPTS {
        if let Some(done) = change.run(attempt).await? {
            return Ok(done);
        }
        let ms = rand::random_range(1..=(5 + attempt as u64 * 2).min(50));
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Err(Contended(subject.to_owned()).into())
}

/// A lost race as `None`: the outcome every conditional write above the storage floor sees.
fn won<T>(written: Result<T, StorageError>) -> Result<Option<T>, StorageError> {
    match written {
        Ok(r) => Ok(Some(r)),
        Err(StorageError::Conflict(_) | StorageError::AlreadyExists(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn invalid(key: &Key, e: serde_json::Error) -> StorageError {
    StorageError::io(key, std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn to_bytes<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("stored records serialize"))
}

/// Reads a JSON document and its revision; `None` when absent. A document that does not parse
/// is an `InvalidData` I/O error.
pub async fn read<T: DeserializeOwned>(storage: &dyn Storage, key: &Key) -> Result<Option<Doc<T>>, StorageError> {
    let Some(v) = storage.read(key).await? else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&v.bytes).map_err(|e| invalid(key, e))?;
    Ok(Some(Doc {
        value,
        revision: v.revision,
    }))
}

/// Writes `bytes` if the document is still at `expected` (`None`: only if absent). `Ok(None)`
/// when it is not (somebody else wrote first); the new revision otherwise.
pub async fn replace_at(
    storage: &dyn Storage,
    key: &Key,
    bytes: Bytes,
    expected: Option<&Revision>,
) -> Result<Option<Revision>, StorageError> {
    won(storage.write(key, bytes, expected).await)
}

/// [`replace_at`] for a JSON value (serialized at once: the future does not hold it).
pub fn replace_value_at<'a, T: Serialize>(
    storage: &'a dyn Storage,
    key: &'a Key,
    value: &T,
    expected: Option<&'a Revision>,
) -> impl Future<Output = Result<Option<Revision>, StorageError>> + Send + 'a {
    replace_at(storage, key, to_bytes(value), expected)
}

/// Deletes the document if it is still at `expected`; false when somebody changed it first.
/// An absent document counts as deleted.
pub async fn delete_at(storage: &dyn Storage, key: &Key, expected: &Revision) -> Result<bool, StorageError> {
    Ok(won(storage.delete(key, expected).await)?.is_some())
}

/// Deletes the document whatever it holds (a record whose owner is done with it).
pub async fn remove(storage: &dyn Storage, key: &Key) -> Result<(), StorageError> {
    let subject = key.as_str().to_owned();
    update_raw(storage, key, &subject, |_| Ok::<_, StorageError>(Step::Delete(()))).await
}

/// Creates a document that must not exist yet: `Ok(None)` when the key is taken (by any replica).
pub fn create<'a, T: Serialize>(
    storage: &'a dyn Storage,
    key: &'a Key,
    value: &T,
) -> impl Future<Output = Result<Option<Revision>, StorageError>> + Send + 'a {
    replace_value_at(storage, key, value, None)
}

/// Creates a document that must not exist yet; a taken key is an error (`Conflict`: the HTTP
/// layer answers 409), for records whose name the caller chose (a user) or drew (a token).
pub fn insert<'a, T: Serialize>(
    storage: &'a dyn Storage,
    key: &'a Key,
    value: &T,
) -> impl Future<Output = Result<Revision, StorageError>> + Send + 'a {
    let bytes = to_bytes(value);
    async move { storage.write(key, bytes, None).await }
}

/// Who holds a document after [`create_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    /// This call stored its value.
    Ours(T),
    /// Another writer stored first; its value.
    Theirs(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Created::Ours(v) | Created::Theirs(v) => v,
        }
    }
}

/// Returns the stored document, creating it with `make()` when absent: replicas racing to create
/// it all end up with the one value that won.
pub async fn create_once<T: Serialize + DeserializeOwned + Send + Sync>(
    storage: &dyn Storage,
    key: &Key,
    make: impl Fn() -> T + Send,
) -> Result<Created<T>, StorageError> {
    struct Once<'a, M> {
        storage: &'a dyn Storage,
        key: &'a Key,
        make: M,
    }
    impl<T, M> Attempt for Once<'_, M>
    where
        T: Serialize + DeserializeOwned + Send + Sync,
        M: Fn() -> T + Send,
    {
        type Output = Created<T>;
        type Error = StorageError;

        async fn run(&mut self, _attempt: u32) -> Result<Option<Created<T>>, StorageError> {
            if let Some(doc) = read(self.storage, self.key).await? {
                return Ok(Some(Created::Theirs(doc.value)));
            }
            let value = (self.make)();
            // Lost: read the winner's on the next attempt (or create again if it was deleted).
            Ok(create(self.storage, self.key, &value)
                .await?
                .map(|_| Created::Ours(value)))
        }
    }
    retry(key.as_str(), Once { storage, key, make }).await
}

/// Writes `bytes` whatever the document holds (each copy is as good as another: the last
/// writer wins, nothing is lost that matters).
pub async fn overwrite(storage: &dyn Storage, key: &Key, bytes: Bytes) -> Result<Revision, StorageError> {
    let subject = key.as_str().to_owned();
    let (_, revision) = update_raw_at(storage, key, &subject, |_| {
        Ok::<_, StorageError>(Step::Write(bytes.clone(), ()))
    })
    .await?;
    Ok(revision.expect("a write leaves a revision"))
}

/// What an update does with the document it read.
#[derive(Debug)]
pub enum Step<D, R> {
    /// Leave it as it is; `R` is the update's result.
    Keep(R),
    /// Store `D` in its place (conditional on the revision read).
    Write(D, R),
    /// Delete it (conditional on the revision read; nothing to do when absent).
    Delete(R),
}

/// Read → `change` → conditional write of a document as stored bytes, retried on lost races. The
/// change gets `None` for an absent document and must be pure (it may run several times).
pub async fn update_raw<R, E>(
    storage: &dyn Storage,
    key: &Key,
    subject: &str,
    change: impl FnMut(Option<&Versioned>) -> Result<Step<Bytes, R>, E> + Send,
) -> Result<R, E>
where
    R: Send,
    E: From<StorageError> + From<Contended> + Send,
{
    Ok(update_raw_at(storage, key, subject, change).await?.0)
}

/// [`update_raw`], also returning the document's revision after it (`None`: absent).
pub async fn update_raw_at<R, E>(
    storage: &dyn Storage,
    key: &Key,
    subject: &str,
    change: impl FnMut(Option<&Versioned>) -> Result<Step<Bytes, R>, E> + Send,
) -> Result<(R, Option<Revision>), E>
where
    R: Send,
    E: From<StorageError> + From<Contended> + Send,
{
    let attempt = Update {
        storage,
        key,
        change,
        _marker: std::marker::PhantomData,
    };
    retry(subject, attempt).await
}

/// [`update_raw`] for a JSON document (one that does not parse is an `InvalidData` error).
pub async fn update<T, R, E>(
    storage: &dyn Storage,
    key: &Key,
    subject: &str,
    mut change: impl FnMut(Option<T>) -> Result<Step<T, R>, E> + Send,
) -> Result<R, E>
where
    T: Serialize + DeserializeOwned,
    R: Send,
    E: From<StorageError> + From<Contended> + Send,
{
    update_raw(storage, key, subject, |stored| {
        let value = stored
            .map(|v| serde_json::from_slice::<T>(&v.bytes).map_err(|e| invalid(key, e)))
            .transpose()?;
        Ok(match change(value)? {
            Step::Keep(r) => Step::Keep(r),
            Step::Write(v, r) => Step::Write(to_bytes(&v), r),
            Step::Delete(r) => Step::Delete(r),
        })
    })
    .await
}

struct Update<'a, C, R, E> {
    storage: &'a dyn Storage,
    key: &'a Key,
    change: C,
    _marker: std::marker::PhantomData<fn() -> (R, E)>,
}

impl<C, R, E> Attempt for Update<'_, C, R, E>
where
    C: FnMut(Option<&Versioned>) -> Result<Step<Bytes, R>, E> + Send,
    R: Send,
    E: From<StorageError> + From<Contended> + Send,
{
    type Output = (R, Option<Revision>);
    type Error = E;

    async fn run(&mut self, _attempt: u32) -> Result<Option<(R, Option<Revision>)>, E> {
        let (storage, key) = (self.storage, self.key);
        let current = storage.read(key).await?;
        let revision = current.as_ref().map(|v| v.revision.clone());
        Ok(match ((self.change)(current.as_ref())?, revision) {
            (Step::Keep(r), revision) => Some((r, revision)),
            (Step::Delete(r), None) => Some((r, None)),
            (Step::Write(bytes, r), revision) => replace_at(storage, key, bytes, revision.as_ref())
                .await?
                .map(|new| (r, Some(new))),
            (Step::Delete(r), Some(revision)) => delete_at(storage, key, &revision).await?.then_some((r, None)),
        })
    }
}

/// Stores a write-once blob. False when a blob is already stored under `key` (by this or any
/// replica); the caller decides whether that one will do.
pub async fn put_blob_once(storage: &dyn Storage, key: &Key, bytes: Bytes) -> Result<bool, StorageError> {
    Ok(won(storage.put_blob(key, bytes).await)?.is_some())
}

/// [`put_blob_once`] from a file.
pub async fn put_blob_file_once(
    storage: &dyn Storage,
    key: &Key,
    path: &std::path::Path,
) -> Result<bool, StorageError> {
    Ok(won(storage.put_blob_file(key, path).await)?.is_some())
}

/// A lease document: which holder may run something alone, until when (renewed while it runs),
/// and the user's own fields (`data`, stored alongside). A holder that dies holds it at most
/// one term.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LeaseRecord<T> {
    pub holder: String,
    pub until: DateTime<Utc>,
    #[serde(flatten)]
    pub data: T,
}

/// A lease this holder holds; renew it with [`Lease::renew`] while working, hand it back with
/// [`Lease::release`].
pub struct Lease<'s, T> {
    storage: &'s dyn Storage,
    key: Key,
    term: Duration,
    revision: Revision,
    pub record: LeaseRecord<T>,
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl<'s, T: Serialize + DeserializeOwned + Send + Sync> Lease<'s, T> {
    /// Takes the lease at `key` for one `term` when it is free (absent, expired, or this
    /// holder's) and `data` agrees: it gets the stored data (`None`: no lease stored, or one
    /// that does not parse) and returns the data to store, or `None` to leave the lease alone.
    /// `Ok(None)` when the lease is not taken.
    pub async fn take(
        storage: &'s dyn Storage,
        key: Key,
        holder: &str,
        term: Duration,
        data: impl FnOnce(Option<T>) -> Option<T>,
    ) -> Result<Option<Self>, StorageError> {
        let now = Utc::now();
        let current = storage.read(&key).await?;
        let stored = current
            .as_ref()
            .and_then(|v| serde_json::from_slice::<LeaseRecord<T>>(&v.bytes).ok());
        if stored.as_ref().is_some_and(|l| l.holder != holder && l.until > now) {
            return Ok(None);
        }
        let Some(data) = data(stored.map(|l| l.data)) else {
            return Ok(None);
        };
        let record = LeaseRecord {
            holder: holder.to_owned(),
            until: after(now, term),
            data,
        };
        let expected = current.map(|v| v.revision);
        let Some(revision) = replace_value_at(storage, &key, &record, expected.as_ref()).await? else {
            return Ok(None);
        };
        Ok(Some(Lease {
            storage,
            key,
            term,
            revision,
            record,
        }))
    }

    /// Extends the lease by one term; false when it was lost (another holder took it: stop).
    pub async fn renew(&mut self) -> Result<bool, StorageError> {
        self.record.until = after(Utc::now(), self.term);
        self.write().await
    }

    /// Lets the lease go now, storing `data` with it.
    pub async fn release(mut self, data: T) -> Result<(), StorageError> {
        self.record.until = Utc::now();
        self.record.data = data;
        self.write().await.map(|_| ())
    }

    async fn write(&mut self) -> Result<bool, StorageError> {
        match replace_value_at(self.storage, &self.key, &self.record, Some(&self.revision)).await? {
            Some(r) => {
                self.revision = r;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    fn key(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    #[tokio::test]
    async fn concurrent_updates_lose_nothing() {
        let storage = MemoryStorage::default();
        let k = key("counter.json");
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (s, k) = (storage.clone(), k.clone());
                tokio::spawn(async move {
                    update(&s, &k, "counter", |n: Option<u64>| {
                        Ok::<_, StorageError>(Step::Write(n.unwrap_or(0) + 1, ()))
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(read::<u64>(&storage, &k).await.unwrap().unwrap().value, 20);
    }

    #[tokio::test]
    async fn create_once_returns_the_winner() {
        let storage = MemoryStorage::default();
        let k = key("once.json");
        let first = create_once(&storage, &k, || 1u32).await.unwrap();
        let second = create_once(&storage, &k, || 2u32).await.unwrap();
        assert_eq!((first, second), (Created::Ours(1), Created::Theirs(1)));
    }

    #[tokio::test]
    async fn replace_at_a_stale_revision_loses() {
        let storage = MemoryStorage::default();
        let k = key("doc.json");
        let r1 = create(&storage, &k, &1u32).await.unwrap().unwrap();
        assert!(create(&storage, &k, &2u32).await.unwrap().is_none());
        let r2 = replace_value_at(&storage, &k, &3u32, Some(&r1)).await.unwrap().unwrap();
        assert!(
            replace_value_at(&storage, &k, &4u32, Some(&r1))
                .await
                .unwrap()
                .is_none()
        );
        assert!(!delete_at(&storage, &k, &r1).await.unwrap());
        assert!(delete_at(&storage, &k, &r2).await.unwrap());
        assert!(read::<u32>(&storage, &k).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_lease_has_one_holder_until_released() {
        let storage = MemoryStorage::default();
        let k = key("lease.json");
        let term = Duration::from_secs(60);
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Data {
            n: u32,
        }
        let mut a = Lease::take(&storage, k.clone(), "a", term, |d: Option<Data>| {
            Some(d.unwrap_or(Data { n: 0 }))
        })
        .await
        .unwrap()
        .unwrap();
        assert!(
            Lease::take(&storage, k.clone(), "b", term, |d: Option<Data>| d)
                .await
                .unwrap()
                .is_none()
        );
        assert!(a.renew().await.unwrap());
        a.release(Data { n: 7 }).await.unwrap();
        let b = Lease::take(&storage, k.clone(), "b", term, |d: Option<Data>| d)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.record.data, Data { n: 7 });
    }

    #[tokio::test]
    async fn too_many_lost_races_is_contended() {
        struct Never;
        impl Attempt for Never {
            type Output = ();
            type Error = StorageError;
            async fn run(&mut self, _: u32) -> Result<Option<()>, StorageError> {
                Ok(None)
            }
        }
        tokio::time::pause();
        let err = retry("x", Never).await.unwrap_err();
        assert!(matches!(err, StorageError::Unavailable(_)), "{err}");
    }
}
