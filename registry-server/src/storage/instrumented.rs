//! A [`Storage`] decorator that times every operation into the metrics.

use super::{Blob, Key, Revision, Storage, StorageError, Versioned};
use crate::metrics::{Metrics, OpLabel};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

pub struct Instrumented<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S: Storage> Instrumented<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        Instrumented { inner, metrics }
    }

    fn record<T>(&self, op: &'static str, start: Instant, result: &Result<T, StorageError>) {
        let label = OpLabel { op };
        self.metrics
            .storage_duration
            .get_or_create(&label)
            .observe(start.elapsed().as_secs_f64());
        // A lost compare-and-swap race is the protocol working, not a storage failure.
        if matches!(result, Err(e) if !matches!(e, StorageError::Conflict(_) | StorageError::AlreadyExists(_))) {
            self.metrics.storage_errors.get_or_create(&label).inc();
        }
    }
}

macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let start = Instant::now();
        let result = $call.await;
        $self.record($op, start, &result);
        result
    }};
}

#[async_trait]
impl<S: Storage> Storage for Instrumented<S> {
    async fn read(&self, key: &Key) -> Result<Option<Versioned>, StorageError> {
        timed!(self, "read", self.inner.read(key))
    }

    async fn revision(&self, key: &Key) -> Result<Option<Revision>, StorageError> {
        timed!(self, "revision", self.inner.revision(key))
    }

    async fn write(&self, key: &Key, bytes: Bytes, expected: Option<&Revision>) -> Result<Revision, StorageError> {
        timed!(self, "write", self.inner.write(key, bytes, expected))
    }

    async fn delete(&self, key: &Key, expected: &Revision) -> Result<(), StorageError> {
        timed!(self, "delete", self.inner.delete(key, expected))
    }

    async fn put_blob(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError> {
        timed!(self, "put_blob", self.inner.put_blob(key, bytes))
    }

    async fn get_blob(&self, key: &Key) -> Result<Option<Blob>, StorageError> {
        timed!(self, "get_blob", self.inner.get_blob(key))
    }

    async fn put_blob_file(&self, key: &Key, path: &std::path::Path) -> Result<(), StorageError> {
        timed!(self, "put_blob", self.inner.put_blob_file(key, path))
    }

    async fn delete_blob(&self, key: &Key) -> Result<(), StorageError> {
        timed!(self, "delete_blob", self.inner.delete_blob(key))
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<String>, StorageError> {
        timed!(self, "list", self.inner.list(prefix))
    }

    async fn list_root(&self) -> Result<Vec<String>, StorageError> {
        timed!(self, "list", self.inner.list_root())
    }

    async fn modified(&self, key: &Key) -> Result<Option<std::time::SystemTime>, StorageError> {
        timed!(self, "revision", self.inner.modified(key))
    }

    async fn sweep_temp(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        timed!(self, "sweep_temp", self.inner.sweep_temp(older_than))
    }

    async fn check(&self) -> Result<(), StorageError> {
        timed!(self, "check", self.inner.check())
    }

    fn package_list_key(&self) -> Key {
        self.inner.package_list_key()
    }

    async fn blob_redirect(&self, key: &Key) -> Result<Option<String>, StorageError> {
        timed!(self, "blob_redirect", self.inner.blob_redirect(key))
    }
}
