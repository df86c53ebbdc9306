//! The only code that touches disk or S3. Backends store small JSON documents with
//! compare-and-swap writes, and write-once blobs (tarballs) that are streamed on read.

pub mod blob_cache;
pub mod document;
pub mod fs;
pub mod instrumented;
pub mod keys;
pub mod memory;
pub mod s3;

pub use keys::StorageKey;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// A storage key: a relative `/`-separated path whose segments are never empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    pub fn new(path: impl Into<String>) -> Result<Self, StorageError> {
        let path = path.into();
        let ok = !path.is_empty()
            && !path.starts_with('/')
            && path
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\') && !s.contains('\0'));
        if ok {
            Ok(Key(path))
        } else {
            Err(StorageError::InvalidKey(path))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Identifies one stored version of a document (a content hash on disk, an ETag on S3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision(pub String);

#[derive(Debug, Clone)]
pub struct Versioned {
    pub bytes: Bytes,
    pub revision: Revision,
}

/// A blob being read: its length and a stream of its bytes.
pub struct Blob {
    pub len: u64,
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

impl Blob {
    /// A blob already in memory.
    pub fn whole(bytes: Bytes) -> Self {
        Blob {
            len: bytes.len() as u64,
            stream: futures_util::stream::once(async move { Ok(bytes) }).boxed(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0} changed since it was read")]
    Conflict(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    #[error("storage I/O error on {key}: {source}")]
    Io { key: String, source: std::io::Error },
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

/// A copy for each request that waited on the same work; an I/O error keeps its kind and text.
impl Clone for StorageError {
    fn clone(&self) -> Self {
        match self {
            StorageError::Conflict(k) => StorageError::Conflict(k.clone()),
            StorageError::AlreadyExists(k) => StorageError::AlreadyExists(k.clone()),
            StorageError::InvalidKey(k) => StorageError::InvalidKey(k.clone()),
            StorageError::Io { key, source } => StorageError::Io {
                key: key.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StorageError::Unavailable(m) => StorageError::Unavailable(m.clone()),
        }
    }
}

impl StorageError {
    pub fn io(key: &Key, source: std::io::Error) -> Self {
        StorageError::Io {
            key: key.as_str().to_owned(),
            source,
        }
    }
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads a document with its revision; `None` when absent.
    async fn read(&self, key: &Key) -> Result<Option<Versioned>, StorageError>;

    /// The current revision of a document without reading it: cheap (a stat, a HEAD), for
    /// revalidating cached copies.
    async fn revision(&self, key: &Key) -> Result<Option<Revision>, StorageError> {
        Ok(self.read(key).await?.map(|v| v.revision))
    }

    /// Writes a document if it is still at `expected` (`None`: only if absent). Atomic: readers see
    /// the old or the new content, never a mix. Returns the new revision.
    async fn write(&self, key: &Key, bytes: Bytes, expected: Option<&Revision>) -> Result<Revision, StorageError>;

    /// Deletes a document if it is still at `expected`. Absent documents are not an error.
    async fn delete(&self, key: &Key, expected: &Revision) -> Result<(), StorageError>;

    /// Stores a blob that must not exist yet (`AlreadyExists` otherwise).
    async fn put_blob(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError>;

    async fn get_blob(&self, key: &Key) -> Result<Option<Blob>, StorageError>;

    /// Stores a blob that must not exist yet from the file at `path` (left in place), without
    /// holding it in memory where the backend can (a large upstream tarball).
    async fn put_blob_file(&self, key: &Key, path: &std::path::Path) -> Result<(), StorageError> {
        let bytes = tokio::fs::read(path).await.map_err(|e| StorageError::io(key, e))?;
        self.put_blob(key, bytes.into()).await
    }

    /// Deletes a blob; absent blobs are not an error.
    async fn delete_blob(&self, key: &Key) -> Result<(), StorageError>;

    /// Names of the blobs and documents directly under `prefix` (a folder), sorted.
    async fn list(&self, prefix: &Key) -> Result<Vec<String>, StorageError>;

    /// Names directly under the backend's root (folders and files; hidden ones left out), sorted.
    /// For the repair task's walk over every package; `[]` where a backend cannot list.
    async fn list_root(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    /// When a blob was written (`None`: absent, or unknown to this backend). The repair task
    /// leaves files of unknown age alone.
    async fn modified(&self, _key: &Key) -> Result<Option<std::time::SystemTime>, StorageError> {
        Ok(None)
    }

    /// Removes temp files left by interrupted writes that are older than `older_than`; returns
    /// how many. Backends whose writes leave nothing behind (S3) have nothing to do.
    async fn sweep_temp(&self, _older_than: std::time::Duration) -> Result<usize, StorageError> {
        Ok(0)
    }

    /// Whether the backend can be used right now (readiness).
    async fn check(&self) -> Result<(), StorageError>;

    /// Where Verdaccio keeps its list of published packages in this backend's layout.
    fn package_list_key(&self) -> Key {
        StorageKey::PackageList.key().expect("a constant key")
    }

    /// A short-lived URL a client can download the blob from directly, when the backend is set
    /// up to hand them out and the blob exists; `None`: serve it through [`Storage::get_blob`].
    async fn blob_redirect(&self, _key: &Key) -> Result<Option<String>, StorageError> {
        Ok(None)
    }
}

/// Reads a whole blob into memory; for small blobs and comparisons only.
pub async fn read_blob_bytes(storage: &dyn Storage, key: &Key) -> Result<Option<Bytes>, StorageError> {
    use futures_util::TryStreamExt;
    let Some(blob) = storage.get_blob(key).await? else {
        return Ok(None);
    };
    let chunks: Vec<Bytes> = blob.stream.try_collect().await.map_err(|e| StorageError::io(key, e))?;
    Ok(Some(chunks.concat().into()))
}

#[cfg(test)]
mod tests {
    use super::Key;

    #[test]
    fn keys_refuse_escapes() {
        assert!(Key::new("@s/pkg/package.json").is_ok());
        for bad in ["", "/abs", "a//b", "../x", "a/./b", "a/..", "a\\b"] {
            assert!(Key::new(bad).is_err(), "{bad:?}");
        }
    }
}
