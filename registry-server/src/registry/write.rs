//! Packument writes, through the storage floor's retry loop (`storage::document`). One writer at
//! a time per package in this process (they queue instead of losing races to each other), and the
//! packument each package was last published to kept parsed, so the next publish to a busy package checks the revision (a
//! stat, a HEAD) instead of reading and parsing the whole document again.
//!
//! A packument change never sees a tombstone (`package::deletion`): it gets `None`, as for a
//! package that does not exist, and the deletions the tombstone lists stay listed. A change whose
//! result names a tarball being deleted waits (it is retried like a lost race) until the deletion
//! is over.

use super::{Registry, RegistryError, Result, corrupt, packument_key, parse_doc};
use crate::package::{PackageName, deletion, raw_manifests, revision};
use crate::storage::document::{self, Attempt};
use crate::storage::{Key, Revision};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Room for kept packuments, in bytes of their JSON (they take about twice that in memory).
const PUBLISHED_CACHE: u64 = 16 * 1024 * 1024;

/// Work a change does after reading and before writing, in every attempt (a publish stores its
/// tarballs there). Run again on each retry: a tarball stored before a lost race may have been
/// deleted since, by a deletion the document that lost the race did not show yet; stored after
/// the read of the revision the write is conditional on, it is covered by that write.
pub(super) type Prepare<'r> = Box<dyn FnMut() -> BoxFuture<'r, Result<()>> + Send + 'r>;

/// How [`Registry::modify`] reads the stored document: whole, or for a change that only adds
/// versions, with the stored manifests kept as raw text (`package::raw_manifests`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Reading {
    Whole,
    AddingVersions,
}

pub(super) struct Writes {
    /// One async lock per package for writers in this process; CAS still guards across processes.
    queues: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
    published: moka::sync::Cache<String, Arc<Published>>,
}

impl Writes {
    pub(super) fn new() -> Self {
        Writes {
            queues: moka::sync::Cache::builder()
                .time_to_idle(Duration::from_secs(60))
                .build(),
            published: moka::sync::Cache::builder()
                .max_capacity(PUBLISHED_CACHE)
                .weigher(|_, p: &Arc<Published>| p.weight)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        }
    }
}

/// A packument as this process wrote it, in the form a publish reads it ([`raw_manifests`]).
struct Published {
    weight: u32,
    kept: std::sync::Mutex<Option<Kept>>,
}

struct Kept {
    revision: Revision,
    doc: Value,
    stored: raw_manifests::Stored<'static>,
}

impl Registry {
    /// Applies `change` to the current packument with compare-and-swap, retrying on conflicts.
    /// `change` gets `None` when the package does not exist yet (or is being unpublished).
    /// `prepare` runs after each successful `change` and before its write (a publish stores its
    /// tarballs there: only once the merge has accepted them, and before metadata names them).
    pub(super) async fn modify<'r, T: Send>(
        &'r self,
        name: &'r PackageName,
        reading: Reading,
        change: impl FnMut(Option<Value>) -> Result<(Value, T)> + Send,
        prepare: Option<Prepare<'r>>,
    ) -> Result<T> {
        let key = packument_key(name)?;
        let queue = self
            .writes
            .queues
            .get_with(name.to_string(), || Arc::new(tokio::sync::Mutex::new(())));
        let _turn = queue.lock().await;
        let change = PackumentChange {
            registry: self,
            name,
            key,
            reading,
            change,
            prepare,
        };
        document::retry(name.as_str(), change).await
    }

    /// The packument this process last published for `name`, if storage is still at that
    /// revision. Taken out of the cache: the caller holds the package's writer lock, and puts
    /// the document it writes back with [`keep`](Self::keep).
    async fn kept(&self, name: &PackageName, key: &Key, wanted: bool) -> Result<Option<Kept>> {
        let Some(published) = self.writes.published.remove(name.as_str()).filter(|_| wanted) else {
            return Ok(None);
        };
        let Some(kept) = published.kept.lock().expect("not poisoned").take() else {
            return Ok(None);
        };
        let current = self.storage.revision(key).await?;
        Ok((current.as_ref() == Some(&kept.revision)).then_some(kept))
    }

    fn keep(
        &self,
        name: &PackageName,
        revision: Revision,
        mut doc: Value,
        mut stored: raw_manifests::Stored<'static>,
        weight: u32,
    ) {
        stored.absorb(&mut doc);
        let kept = Kept { revision, doc, stored };
        let published = Published {
            weight,
            kept: std::sync::Mutex::new(Some(kept)),
        };
        self.writes.published.insert(name.to_string(), Arc::new(published));
    }
}

/// [`Registry::modify`]'s attempt: read (or take the kept document), change, write.
struct PackumentChange<'r, C> {
    registry: &'r Registry,
    name: &'r PackageName,
    key: Key,
    reading: Reading,
    change: C,
    prepare: Option<Prepare<'r>>,
}

impl<C, T> Attempt for PackumentChange<'_, C>
where
    C: FnMut(Option<Value>) -> Result<(Value, T)> + Send,
    T: Send,
{
    type Output = T;
    type Error = RegistryError;

    async fn run(&mut self, attempt: u32) -> Result<Option<T>> {
        let (registry, name, key) = (self.registry, self.name, &self.key);
        let adding = matches!(self.reading, Reading::AddingVersions);
        let (revision, doc, stored) = match registry.kept(name, key, adding && attempt == 0).await? {
            Some(k) => (Some(k.revision), Some(k.doc), k.stored),
            None => match (registry.storage.read(key).await?, self.reading) {
                (None, _) => (None, None, raw_manifests::Stored::default()),
                (Some(v), Reading::Whole) => (
                    Some(v.revision),
                    Some(parse_doc(name, &v.bytes)?),
                    raw_manifests::Stored::default(),
                ),
                (Some(v), Reading::AddingVersions) => {
                    let (doc, stored) = raw_manifests::parse(&v.bytes).map_err(|e| corrupt(name, e))?;
                    // Owned, to be kept after the write: one copy of the raw manifests, in place
                    // of the read and parse the next publish to this package saves.
                    (Some(v.revision), Some(doc), stored.into_owned())
                }
            },
        };
        let (doc, tombstone) = match doc {
            Some(d) if deletion::is_tombstone(&d) => (None, Some(d)),
            d => (d, None),
        };
        let (mut doc, out) = (self.change)(doc)?;
        if let Some(t) = &tombstone {
            deletion::carry_over(t, &mut doc);
        }
        if !deletion::blocked(name, &doc).is_empty() {
            // Wait for the deletion to end; one whose deleter is gone is finished here.
            registry.finish_stale_deletions(name).await?;
            return Ok(None);
        }
        doc["_rev"] = Value::String(revision::next(doc.get("_rev").and_then(Value::as_str)));
        let bytes = stored.to_vec_pretty(&doc);
        if let Some(prepare) = self.prepare.as_mut() {
            prepare().await?;
        }
        let weight = bytes.len().try_into().unwrap_or(u32::MAX);
        let written =
            document::replace_at(registry.storage.as_ref(), key, Bytes::from(bytes), revision.as_ref()).await?;
        let Some(written) = written else {
            return Ok(None);
        };
        registry.cache.invalidate(name);
        registry.index_written(name, &doc, Some(&stored));
        if adding {
            registry.keep(name, written, doc, stored, weight);
        }
        Ok(Some(out))
    }
}
