use super::*;
use crate::config::Config;
use crate::storage::fs::FsStorage;
use crate::storage::{Key, Versioned};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU32, Ordering};

/// Storage where another writer always wins the race for every document.
struct AlwaysRaced {
    inner: FsStorage,
    writes: AtomicU32,
}

#[async_trait]
impl Storage for AlwaysRaced {
    async fn read(&self, key: &Key) -> Result<Option<Versioned>, StorageError> {
        self.inner.read(key).await
    }
    async fn write(&self, key: &Key, _bytes: Bytes, _expected: Option<&Revision>) -> Result<Revision, StorageError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Err(StorageError::Conflict(key.as_str().to_owned()))
    }
    async fn delete(&self, key: &Key, expected: &Revision) -> Result<(), StorageError> {
        self.inner.delete(key, expected).await
    }
    async fn put_blob(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError> {
        self.inner.put_blob(key, bytes).await
    }
    async fn get_blob(&self, key: &Key) -> Result<Option<Blob>, StorageError> {
        self.inner.get_blob(key).await
    }
    async fn delete_blob(&self, key: &Key) -> Result<(), StorageError> {
        self.inner.delete_blob(key).await
    }
    async fn list(&self, prefix: &Key) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }
    async fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[tokio::test]
async fn endless_conflicts_give_up_with_contended_after_bounded_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(AlwaysRaced {
        inner: FsStorage::new(dir.path()).unwrap(),
        writes: AtomicU32::new(0),
    });
    let config = Config::parse(crate::config::EMBEDDED_DEFAULT, dir.path())
        .unwrap()
        .config;
    let cache = PackumentCache::new(1 << 20, std::time::Duration::ZERO);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let registry = Registry::new(storage.clone(), AccessRules::new(config.packages), cache, metrics);
    let name = PackageName::parse("raced").unwrap();
    let body = serde_json::json!({"versions": {}, "dist-tags": {}});
    let err = registry
        .update(&name, None, &body, &Identity::anonymous())
        .await
        .unwrap_err();
    // A missing package is reported before any write; seed one through the inner store.
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    storage
        .inner
        .write(
            &layout::packument(&name).unwrap(),
            Bytes::from_static(br#"{"name":"raced","versions":{"1.0.0":{}},"dist-tags":{"latest":"1.0.0"}}"#),
            None,
        )
        .await
        .unwrap();
    let err = registry
        .set_tag(&name, "beta", "1.0.0", &Identity::user("tester", vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Contended(_)), "{err}");
    assert_eq!(storage.writes.load(Ordering::SeqCst), MAX_ATTEMPTS);
    let api = crate::http::error::ApiError::from(err);
    assert_eq!(api.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(api.message.contains("try again"), "{}", api.message);
}
