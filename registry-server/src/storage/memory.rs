//! An in-memory backend with the same contract as the folder and S3 ones, for fast tests of the
//! layers above storage. Clones share one store (like two processes on one folder); nothing
//! survives the last clone.

use super::{Blob, Key, Revision, Storage, StorageError, Versioned};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    inner: Arc<Mutex<Store>>,
}

#[derive(Debug, Default)]
struct Store {
    /// Documents and blobs share one namespace, as files do in a folder.
    entries: BTreeMap<String, Versioned>,
    /// Every write takes the next number: a revision is never reused.
    writes: u64,
    /// When each entry was written.
    written: BTreeMap<String, std::time::SystemTime>,
}

impl Store {
    fn current(&self, key: &Key) -> Option<&Revision> {
        self.entries.get(key.as_str()).map(|v| &v.revision)
    }

    fn put(&mut self, key: &Key, bytes: Bytes) -> Revision {
        self.writes += 1;
        let revision = Revision(format!("m{}", self.writes));
        let entry = Versioned {
            bytes,
            revision: revision.clone(),
        };
        self.entries.insert(key.as_str().to_owned(), entry);
        self.written
            .insert(key.as_str().to_owned(), std::time::SystemTime::now());
        revision
    }
}

impl MemoryStorage {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn read(&self, key: &Key) -> Result<Option<Versioned>, StorageError> {
        Ok(self.store().entries.get(key.as_str()).cloned())
    }

    async fn write(&self, key: &Key, bytes: Bytes, expected: Option<&Revision>) -> Result<Revision, StorageError> {
        let mut store = self.store();
        if store.current(key) != expected {
            return Err(StorageError::Conflict(key.as_str().to_owned()));
        }
        Ok(store.put(key, bytes))
    }

    async fn delete(&self, key: &Key, expected: &Revision) -> Result<(), StorageError> {
        let mut store = self.store();
        match store.current(key) {
            None => Ok(()),
            Some(r) if r != expected => Err(StorageError::Conflict(key.as_str().to_owned())),
            Some(_) => {
                store.entries.remove(key.as_str());
                store.written.remove(key.as_str());
                Ok(())
            }
        }
    }

    async fn put_blob(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError> {
        let mut store = self.store();
        if store.current(key).is_some() {
            return Err(StorageError::AlreadyExists(key.as_str().to_owned()));
        }
        store.put(key, bytes);
        Ok(())
    }

    async fn get_blob(&self, key: &Key) -> Result<Option<Blob>, StorageError> {
        let bytes = self.store().entries.get(key.as_str()).map(|v| v.bytes.clone());
        Ok(bytes.map(Blob::whole))
    }

    async fn delete_blob(&self, key: &Key) -> Result<(), StorageError> {
        let mut store = self.store();
        store.entries.remove(key.as_str());
        store.written.remove(key.as_str());
        Ok(())
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<String>, StorageError> {
        let folder = format!("{}/", prefix.as_str());
        let store = self.store();
        let mut names: Vec<String> = store
            .entries
            .range(folder.clone()..)
            .take_while(|(k, _)| k.starts_with(&folder))
            .filter_map(|(k, _)| k[folder.len()..].split('/').next())
            .filter(|n| !n.starts_with('.'))
            .map(str::to_owned)
            .collect();
        // Key order is not name order (`a-b/…` sorts before `a/…`).
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn list_root(&self) -> Result<Vec<String>, StorageError> {
        let store = self.store();
        let mut names: Vec<String> = store
            .entries
            .keys()
            .filter_map(|k| k.split('/').next())
            .filter(|n| !n.starts_with('.'))
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn modified(&self, key: &Key) -> Result<Option<std::time::SystemTime>, StorageError> {
        Ok(self.store().written.get(key.as_str()).copied())
    }

    async fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
