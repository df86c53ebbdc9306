//! Tarball deletions through the package's compare-and-swap path (`package::deletion` has the
//! protocol): mark the files in the packument, delete the blobs, drop the marks (deleting a
//! finished tombstone). Used by unpublish, by the delete of a tarball and by the repair task. The
//! steps do not take the package's writer queue: a writer waiting for a deletion may finish a
//! stale one from inside its own attempt.

use super::RegistryError;
use super::{Registry, Result, packument_key, parse_doc, tarball_key};
use crate::package::{PackageName, deletion, revision};
use crate::storage::Key;
use crate::storage::document::{self, Attempt};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// What one deletion step does to the stored packument.
pub(super) enum Step {
    Write(Value),
    Delete,
    Nothing,
}

/// One read → step → conditional write (or delete) of the raw packument, tombstones included.
struct DeletionStep<'r, F> {
    registry: &'r Registry,
    name: &'r PackageName,
    key: Key,
    step: F,
}

impl<F, T> Attempt for DeletionStep<'_, F>
where
    F: FnMut(Option<&Value>) -> Result<(Step, T)> + Send,
    T: Send,
{
    type Output = T;
    type Error = RegistryError;

    async fn run(&mut self, _attempt: u32) -> Result<Option<T>> {
        let (registry, key) = (self.registry, &self.key);
        let stored = registry.storage.read(key).await?;
        let doc = stored.as_ref().map(|v| parse_doc(self.name, &v.bytes)).transpose()?;
        let revision = stored.map(|v| v.revision);
        let (step, out) = (self.step)(doc.as_ref())?;
        let done = match (step, revision) {
            (Step::Nothing, _) | (Step::Delete, None) => return Ok(Some(out)),
            (Step::Write(mut doc), revision) => {
                doc["_rev"] = Value::String(revision::next(doc.get("_rev").and_then(Value::as_str)));
                let bytes = Bytes::from(serde_json::to_vec_pretty(&doc).expect("JSON serializes"));
                let written = document::replace_at(registry.storage.as_ref(), key, bytes, revision.as_ref()).await?;
                if written.is_some() {
                    registry.index_written(self.name, &doc, None);
                }
                written.map(|_| ())
            }
            (Step::Delete, Some(revision)) => {
                let deleted = document::delete_at(registry.storage.as_ref(), key, &revision)
                    .await?
                    .then_some(());
                if let (Some(()), Some(doc)) = (&deleted, &doc) {
                    registry.index_deleted(self.name, doc);
                }
                deleted
            }
        };
        registry.cache.invalidate(self.name);
        Ok(done.map(|()| out))
    }
}

impl Registry {
    /// Applies `step` to the stored packument (raw: tombstones are seen) with compare-and-swap.
    pub(super) async fn deletion_step<T: Send>(
        &self,
        name: &PackageName,
        step: impl FnMut(Option<&Value>) -> Result<(Step, T)> + Send,
    ) -> Result<T> {
        let attempt = DeletionStep {
            registry: self,
            name,
            key: packument_key(name)?,
            step,
        };
        document::retry(name.as_str(), attempt).await
    }

    /// Steps 2 and 3: deletes the blobs of `files` (marked at `claimed`), then drops their marks;
    /// a tombstone with nothing left is deleted. Returns whether the package exists afterwards
    /// (a publish may have started it again meanwhile). A deleter slower than half the grace
    /// period stops before deleting: the repair task, which may have claimed the files again
    /// by then, finishes.
    pub(super) async fn delete_marked(
        &self,
        name: &PackageName,
        files: &[String],
        claimed: DateTime<Utc>,
    ) -> Result<bool> {
        for file in files {
            if Utc::now() - claimed > self.repair.grace / 2 {
                tracing::warn!(package = %name, "tarball deletion too slow; left to the repair task");
                return Ok(true);
            }
            self.storage.delete_blob(&tarball_key(name, file)?).await?;
        }
        self.deletion_step(name, |doc| {
            let Some(doc) = doc else {
                return Ok((Step::Nothing, false));
            };
            let mut doc = doc.clone();
            deletion::unmark(&mut doc, files);
            if deletion::is_finished(&doc) {
                Ok((Step::Delete, false))
            } else {
                let alive = !deletion::is_tombstone(&doc);
                Ok((Step::Write(doc), alive))
            }
        })
        .await
    }

    /// Finishes the deletions of `name` whose deleter is gone (claimed longer than the grace
    /// period ago): claims them again, deletes, drops the marks. Returns the files deleted.
    pub(super) async fn finish_stale_deletions(&self, name: &PackageName) -> Result<Vec<String>> {
        let now = Utc::now();
        let grace = self.repair.grace;
        let files = self
            .deletion_step(name, |doc| {
                let Some(doc) = doc else {
                    return Ok((Step::Nothing, Vec::new()));
                };
                let stale: Vec<String> = deletion::pending(doc)
                    .filter(|(_, at)| deletion::is_stale(*at, now, grace))
                    .map(|(f, _)| f.to_owned())
                    .collect();
                if stale.is_empty() {
                    return Ok((Step::Nothing, stale));
                }
                let mut doc = doc.clone();
                deletion::reclaim(&mut doc, &stale, now)?;
                Ok((Step::Write(doc), stale))
            })
            .await?;
        if !files.is_empty() {
            tracing::info!(package = %name, files = ?files, "finishing tarball deletions left by a stopped process");
            self.delete_marked(name, &files, now).await?;
        }
        Ok(files)
    }
}
