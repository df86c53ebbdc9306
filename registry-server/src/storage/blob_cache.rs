//! A [`Storage`] decorator that keeps small blobs (tarballs) in memory, so that a popular
//! tarball is answered without a trip to the disk or to S3. Blobs are write-once: a cached copy
//! is right for as long as the blob exists. Whether it still exists (an unpublish through another
//! replica) is checked with a cheap `revision` call (a stat, a HEAD) at most once per
//! `revalidate_after`, the same bound as for cached packuments.

use super::{Blob, Key, Revision, Storage, StorageError, Versioned};
use crate::metrics::Metrics;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use moka::sync::Cache;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Larger blobs are streamed from storage, never held whole.
pub const MAX_CACHED_BLOB: u64 = 1024 * 1024;

struct Entry {
    bytes: Bytes,
    /// Milliseconds since the cache's epoch when storage last confirmed the blob exists.
    checked: AtomicU64,
}

pub struct BlobCache<S> {
    inner: S,
    entries: Cache<String, Arc<Entry>>,
    revalidate_after: Duration,
    epoch: Instant,
    /// Bumped by every delete, so a read that raced with a delete does not cache what it read.
    deletes: AtomicU64,
    metrics: Arc<Metrics>,
}

impl<S: Storage> BlobCache<S> {
    pub fn new(inner: S, max_bytes: u64, revalidate_after: Duration, metrics: Arc<Metrics>) -> Self {
        BlobCache {
            inner,
            entries: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, e: &Arc<Entry>| e.bytes.len().try_into().unwrap_or(u32::MAX))
                .build(),
            revalidate_after,
            epoch: Instant::now(),
            deletes: AtomicU64::new(0),
            metrics,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The cached copy, if storage confirmed within `revalidate_after` that the blob exists
    /// (checking now when it is due).
    async fn cached(&self, key: &Key) -> Result<Option<Bytes>, StorageError> {
        let Some(entry) = self.entries.get(key.as_str()) else {
            return Ok(None);
        };
        let due = self.now_ms().saturating_sub(entry.checked.load(Ordering::Relaxed))
            >= self.revalidate_after.as_millis() as u64;
        if due {
            if self.inner.revision(key).await?.is_none() {
                self.entries.invalidate(key.as_str());
                return Ok(None);
            }
            entry.checked.store(self.now_ms(), Ordering::Relaxed);
        }
        Ok(Some(entry.bytes.clone()))
    }
}

#[async_trait]
impl<S: Storage> Storage for BlobCache<S> {
    async fn read(&self, key: &Key) -> Result<Option<Versioned>, StorageError> {
        self.inner.read(key).await
    }

    async fn revision(&self, key: &Key) -> Result<Option<Revision>, StorageError> {
        self.inner.revision(key).await
    }

    async fn write(&self, key: &Key, bytes: Bytes, expected: Option<&Revision>) -> Result<Revision, StorageError> {
        self.inner.write(key, bytes, expected).await
    }

    async fn delete(&self, key: &Key, expected: &Revision) -> Result<(), StorageError> {
        self.inner.delete(key, expected).await
    }

    async fn put_blob(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError> {
        self.inner.put_blob(key, bytes).await
    }

    async fn get_blob(&self, key: &Key) -> Result<Option<Blob>, StorageError> {
        if let Some(bytes) = self.cached(key).await? {
            self.metrics.tarball_cache(true);
            return Ok(Some(Blob::whole(bytes)));
        }
        self.metrics.tarball_cache(false);
        let deletes = self.deletes.load(Ordering::Acquire);
        let Some(blob) = self.inner.get_blob(key).await? else {
            return Ok(None);
        };
        if blob.len > MAX_CACHED_BLOB {
            return Ok(Some(blob));
        }
        let chunks: Vec<Bytes> = blob.stream.try_collect().await.map_err(|e| StorageError::io(key, e))?;
        let bytes = match chunks.len() {
            1 => chunks.into_iter().next().expect("one chunk"),
            _ => Bytes::from(chunks.concat()),
        };
        if bytes.len() as u64 == blob.len && self.deletes.load(Ordering::Acquire) == deletes {
            let entry = Entry {
                bytes: bytes.clone(),
                checked: AtomicU64::new(self.now_ms()),
            };
            self.entries.insert(key.as_str().to_owned(), Arc::new(entry));
            self.metrics.held("tarball_cache", self.entries.weighted_size());
        }
        Ok(Some(Blob::whole(bytes)))
    }

    async fn put_blob_file(&self, key: &Key, path: &std::path::Path) -> Result<(), StorageError> {
        self.inner.put_blob_file(key, path).await
    }

    async fn delete_blob(&self, key: &Key) -> Result<(), StorageError> {
        self.deletes.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(key.as_str());
        let result = self.inner.delete_blob(key).await;
        // Again: a read may have filled the entry while the delete was under way.
        self.entries.invalidate(key.as_str());
        result
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }

    async fn list_root(&self) -> Result<Vec<String>, StorageError> {
        self.inner.list_root().await
    }

    async fn modified(&self, key: &Key) -> Result<Option<std::time::SystemTime>, StorageError> {
        self.inner.modified(key).await
    }

    async fn sweep_temp(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        self.inner.sweep_temp(older_than).await
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.inner.check().await
    }

    fn package_list_key(&self) -> Key {
        self.inner.package_list_key()
    }

    async fn blob_redirect(&self, key: &Key) -> Result<Option<String>, StorageError> {
        self.inner.blob_redirect(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::FsStorage;
    use crate::storage::read_blob_bytes;

    fn cache(revalidate_after: Duration) -> (tempfile::TempDir, BlobCache<FsStorage>) {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStorage::new(dir.path()).unwrap();
        let cache = BlobCache::new(fs, 1 << 24, revalidate_after, Arc::new(Metrics::default()));
        (dir, cache)
    }

    async fn put(c: &BlobCache<FsStorage>, key: &Key, len: usize) -> Bytes {
        let bytes = Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        c.put_blob(key, bytes.clone()).await.unwrap();
        bytes
    }

    #[tokio::test]
    async fn a_read_blob_is_served_from_memory_until_revalidation_is_due() {
        let (dir, c) = cache(Duration::from_secs(3600));
        let k = Key::new("p/p-1.0.0.tgz").unwrap();
        let bytes = put(&c, &k, 5000).await;
        assert_eq!(read_blob_bytes(&c, &k).await.unwrap(), Some(bytes.clone()));
        // Gone behind the cache's back (another replica): still served, the check is not due.
        std::fs::remove_file(dir.path().join("p/p-1.0.0.tgz")).unwrap();
        assert_eq!(read_blob_bytes(&c, &k).await.unwrap(), Some(bytes));
        assert!(
            c.metrics
                .render()
                .contains("npm_registry_tarball_cache_total{result=\"hit\"} 1")
        );
    }

    #[tokio::test]
    async fn a_blob_deleted_elsewhere_is_noticed_when_revalidation_is_due() {
        let (dir, c) = cache(Duration::ZERO);
        let k = Key::new("p/p-1.0.0.tgz").unwrap();
        let bytes = put(&c, &k, 5000).await;
        assert_eq!(read_blob_bytes(&c, &k).await.unwrap(), Some(bytes.clone()));
        assert_eq!(read_blob_bytes(&c, &k).await.unwrap(), Some(bytes));
        std::fs::remove_file(dir.path().join("p/p-1.0.0.tgz")).unwrap();
        assert_eq!(read_blob_bytes(&c, &k).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_blob_deleted_through_the_cache_is_gone_at_once() {
        let (_dir, c) = cache(Duration::from_secs(3600));
        let k = Key::new("p/p-1.0.0.tgz").unwrap();
        put(&c, &k, 5000).await;
        assert!(read_blob_bytes(&c, &k).await.unwrap().is_some());
        c.delete_blob(&k).await.unwrap();
        assert_eq!(read_blob_bytes(&c, &k).await.unwrap(), None);
    }

    #[tokio::test]
    async fn large_blobs_are_streamed_not_kept() {
        let (dir, c) = cache(Duration::from_secs(3600));
        let k = Key::new("p/p-1.0.0.tgz").unwrap();
        let bytes = put(&c, &k, MAX_CACHED_BLOB as usize + 1).await;
        assert_eq!(read_blob_bytes(&c, &k).await.unwrap(), Some(bytes));
        std::fs::remove_file(dir.path().join("p/p-1.0.0.tgz")).unwrap();
        assert_eq!(read_blob_bytes(&c, &k).await.unwrap(), None);
    }
}
