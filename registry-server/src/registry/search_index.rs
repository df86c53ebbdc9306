//! The search index, shared by replicas through storage: [`SHARDS`] documents (a package's entry
//! lives in the shard its name hashes to), each replaced with compare-and-swap. A packument write
//! updates its package's entry in memory at once and in storage shortly after (the changes to a
//! shard within [`FLUSH_DELAY`] are written together). A query first checks, at most once per
//! revalidation interval, which shards another replica changed (a stat or HEAD each) and reloads
//! only those. The repair pass rebuilds the index from the packuments when its marker is missing
//! and reconciles it on every pass (an update lost to a crash is put right there).
//!
//! Memory: the entries of every local package, each capped (`package::search::Entry`): about
//! twice [`Entry::weight`] plus ~200 bytes per package.

use super::Result;
use crate::package::search::{Entry, Searchable};
use crate::storage::document::{self, Attempt};
use crate::storage::{Key, Revision, Storage, StorageKey};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub const SHARDS: usize = 16;
/// How long changes gather before they are written (one write per shard).
const FLUSH_DELAY: Duration = Duration::from_millis(100);
/// How long a failed write of the index waits before it is tried again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// A change to a package's entry not yet in storage.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert(Box<Entry>),
    /// The package is gone as of this state (its creation time, the revision that removed it).
    Remove {
        created: Option<String>,
        seq: u64,
    },
}

impl Change {
    /// Whether this change is newer than what `stored` describes.
    fn supersedes(&self, stored: &Entry) -> bool {
        match self {
            Change::Upsert(e) => e.is_newer_than(stored),
            Change::Remove { created, seq } => (created, *seq) >= (&stored.created, stored.seq),
        }
    }

    fn apply(&self, name: &str, entries: &mut BTreeMap<String, Entry>) -> bool {
        if entries.get(name).is_some_and(|s| !self.supersedes(s)) {
            return false;
        }
        match self {
            Change::Upsert(e) => entries.insert(name.to_owned(), (**e).clone()).as_ref() != Some(&**e),
            Change::Remove { .. } => entries.remove(name).is_some(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ShardDoc {
    #[serde(default)]
    entries: BTreeMap<String, Entry>,
}

#[derive(Default)]
struct Shard {
    loaded: bool,
    revision: Option<Revision>,
    entries: HashMap<String, Arc<Searchable>>,
}

fn shard_of(name: &str) -> usize {
    Sha256::digest(name.as_bytes())[0] as usize % SHARDS
}

fn shard_key(i: usize) -> Key {
    StorageKey::SearchShard {
        shard: &format!("{i:02}"),
    }
    .key()
    .expect("a valid key")
}

pub struct SearchIndex {
    storage: Arc<dyn Storage>,
    revalidate_after: Duration,
    shards: Vec<RwLock<Shard>>,
    checked: Mutex<Option<Instant>>,
    refreshing: tokio::sync::Mutex<()>,
    pending: Mutex<BTreeMap<String, Change>>,
    flush_scheduled: AtomicBool,
}

impl SearchIndex {
    pub fn new(storage: Arc<dyn Storage>, revalidate_after: Duration) -> Self {
        SearchIndex {
            storage,
            revalidate_after,
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            checked: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            pending: Mutex::new(BTreeMap::new()),
            flush_scheduled: AtomicBool::new(false),
        }
    }

    /// A package's entry changed: in memory now, in storage within [`FLUSH_DELAY`].
    pub fn note(self: &Arc<Self>, name: &str, change: Change) {
        apply_in_memory(
            &mut self.shards[shard_of(name)].write().expect("not poisoned"),
            name,
            &change,
        );
        self.pending
            .lock()
            .expect("not poisoned")
            .insert(name.to_owned(), change);
        self.schedule_flush(FLUSH_DELAY);
    }

    fn schedule_flush(self: &Arc<Self>, after: Duration) {
        if !self.flush_scheduled.swap(true, Ordering::AcqRel) {
            let index = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                index.flush_scheduled.store(false, Ordering::Release);
                index.flush().await;
            });
        }
    }

    async fn flush(self: &Arc<Self>) {
        let changes = std::mem::take(&mut *self.pending.lock().expect("not poisoned"));
        let mut by_shard: BTreeMap<usize, Vec<(String, Change)>> = BTreeMap::new();
        for (name, change) in changes {
            by_shard.entry(shard_of(&name)).or_default().push((name, change));
        }
        for (i, changes) in by_shard {
            let write = ShardWrite {
                storage: self.storage.as_ref(),
                key: shard_key(i),
                changes: &changes,
            };
            match document::retry("the search index", write).await {
                Ok((revision, entries)) => self.install(i, revision, entries),
                Err(e) => {
                    // Kept for the next try (unless newer changes came meanwhile).
                    tracing::warn!(error = %e, "cannot update the search index; retrying");
                    let mut pending = self.pending.lock().expect("not poisoned");
                    for (name, change) in changes {
                        pending.entry(name).or_insert(change);
                    }
                    drop(pending);
                    self.schedule_flush(RETRY_DELAY);
                }
            }
        }
    }

    /// Replaces shard `i` in memory with what storage holds (plus changes still to be written).
    fn install(&self, i: usize, revision: Option<Revision>, entries: BTreeMap<String, Entry>) {
        let pending: Vec<(String, Change)> = self
            .pending
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(n, _)| shard_of(n) == i)
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        let mut shard = self.shards[i].write().expect("not poisoned");
        let old = std::mem::take(&mut shard.entries);
        shard.entries = entries
            .into_iter()
            .map(|(name, e)| {
                let kept = old.get(&name).filter(|s| s.entry == e).cloned();
                let s = kept.unwrap_or_else(|| Arc::new(Searchable::new(e)));
                (name, s)
            })
            .collect();
        for (name, change) in &pending {
            apply_in_memory(&mut shard, name, change);
        }
        shard.revision = revision;
        shard.loaded = true;
    }

    fn due(&self) -> bool {
        self.checked
            .lock()
            .expect("not poisoned")
            .is_none_or(|t| t.elapsed() >= self.revalidate_after)
    }

    /// Brings the index up to date with storage, when the last check is older than the
    /// revalidation interval: a revision check per shard, a read of each one that changed.
    pub async fn refresh(&self) -> Result<()> {
        if !self.due() {
            return Ok(());
        }
        let _one = self.refreshing.lock().await;
        if !self.due() {
            return Ok(());
        }
        let checks = (0..SHARDS).map(|i| async move { self.storage.revision(&shard_key(i)).await });
        let revisions = futures_util::future::join_all(checks).await;
        for (i, revision) in revisions.into_iter().enumerate() {
            let revision = revision?;
            let current = {
                let s = self.shards[i].read().expect("not poisoned");
                s.loaded && s.revision == revision
            };
            if !current {
                let (revision, doc) = read_shard(self.storage.as_ref(), &shard_key(i)).await?;
                self.install(i, revision, doc.entries);
            }
        }
        *self.checked.lock().expect("not poisoned") = Some(Instant::now());
        Ok(())
    }

    /// Calls `f` with every entry (call [`refresh`](Self::refresh) first).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<Searchable>)) {
        for shard in &self.shards {
            for s in shard.read().expect("not poisoned").entries.values() {
                f(s);
            }
        }
    }

    /// Whether the index was ever built in this storage.
    pub async fn is_built(&self) -> Result<bool> {
        Ok(self.storage.revision(&marker_key()).await?.is_some())
    }

    /// The repair pass's view: `found` are the entries of every package that exists, read from
    /// the packuments since `since` (`skipped`: packages it could not read). Entries newer in
    /// storage stay, as do those of packages created during the pass or skipped; the rest is
    /// replaced. Then the marker says the index is built. Returns how many entries changed.
    pub async fn reconcile(
        &self,
        found: Vec<Entry>,
        skipped: &BTreeSet<String>,
        since: DateTime<Utc>,
    ) -> Result<usize> {
        let mut by_shard: Vec<BTreeMap<String, Entry>> = vec![BTreeMap::new(); SHARDS];
        for e in found {
            by_shard[shard_of(&e.name)].insert(e.name.clone(), e);
        }
        let mut changed = 0;
        for (i, found) in by_shard.into_iter().enumerate() {
            let write = Reconcile {
                storage: self.storage.as_ref(),
                key: shard_key(i),
                found: &found,
                skipped,
                since,
            };
            let (n, revision, entries) = document::retry("the search index", write).await?;
            changed += n;
            self.install(i, revision, entries);
        }
        let marker = serde_json::json!({"format": 1, "shards": SHARDS, "built": Utc::now()});
        let current = self.storage.revision(&marker_key()).await?;
        if current.is_none() {
            let bytes = Bytes::from(serde_json::to_vec(&marker).expect("serializes"));
            document::replace_at(self.storage.as_ref(), &marker_key(), bytes, None).await?;
        }
        Ok(changed)
    }
}

fn marker_key() -> Key {
    StorageKey::SearchMarker.key().expect("a valid key")
}

fn apply_in_memory(shard: &mut Shard, name: &str, change: &Change) {
    if shard.entries.get(name).is_some_and(|s| !change.supersedes(&s.entry)) {
        return;
    }
    match change {
        Change::Upsert(e) => {
            shard
                .entries
                .insert(name.to_owned(), Arc::new(Searchable::new((**e).clone())));
        }
        Change::Remove { .. } => {
            shard.entries.remove(name);
        }
    }
}

async fn read_shard(storage: &dyn Storage, key: &Key) -> Result<(Option<Revision>, ShardDoc)> {
    Ok(match storage.read(key).await? {
        None => (None, ShardDoc::default()),
        Some(v) => {
            // A shard that does not parse is rebuilt by the repair pass; until then it is empty.
            let doc = serde_json::from_slice(&v.bytes).unwrap_or_else(|e| {
                tracing::warn!(key = key.as_str(), error = %e, "search index shard unreadable; treated as empty");
                ShardDoc::default()
            });
            (Some(v.revision), doc)
        }
    })
}

async fn write_shard(
    storage: &dyn Storage,
    key: &Key,
    doc: &ShardDoc,
    expected: Option<&Revision>,
) -> Result<Option<Revision>> {
    let bytes = Bytes::from(serde_json::to_vec(doc).expect("serializes"));
    Ok(document::replace_at(storage, key, bytes, expected).await?)
}

/// One attempt at writing changes into a shard; its result is the shard as stored after it.
struct ShardWrite<'a> {
    storage: &'a dyn Storage,
    key: Key,
    changes: &'a [(String, Change)],
}

impl Attempt for ShardWrite<'_> {
    type Output = (Option<Revision>, BTreeMap<String, Entry>);
    type Error = super::RegistryError;

    async fn run(&mut self, _attempt: u32) -> Result<Option<Self::Output>> {
        let (revision, mut doc) = read_shard(self.storage, &self.key).await?;
        let mut changed = false;
        for (name, change) in self.changes {
            changed |= change.apply(name, &mut doc.entries);
        }
        if !changed {
            return Ok(Some((revision, doc.entries)));
        }
        let written = write_shard(self.storage, &self.key, &doc, revision.as_ref()).await?;
        Ok(written.map(|r| (Some(r), doc.entries)))
    }
}

/// One attempt at reconciling a shard with the packuments: how many entries changed.
struct Reconcile<'a> {
    storage: &'a dyn Storage,
    key: Key,
    found: &'a BTreeMap<String, Entry>,
    skipped: &'a BTreeSet<String>,
    since: DateTime<Utc>,
}

impl Attempt for Reconcile<'_> {
    type Output = (usize, Option<Revision>, BTreeMap<String, Entry>);
    type Error = super::RegistryError;

    async fn run(&mut self, _attempt: u32) -> Result<Option<Self::Output>> {
        let (revision, stored) = read_shard(self.storage, &self.key).await?;
        let mut entries = BTreeMap::new();
        for (name, e) in self.found {
            let keep = stored.entries.get(name).filter(|s| s.is_newer_than(e)).unwrap_or(e);
            entries.insert(name.clone(), keep.clone());
        }
        for (name, s) in &stored.entries {
            let created_meanwhile = s
                .created
                .as_deref()
                .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
                .is_some_and(|c| c >= self.since);
            if !self.found.contains_key(name) && (created_meanwhile || self.skipped.contains(name)) {
                entries.insert(name.clone(), s.clone());
            }
        }
        let changed = entries
            .iter()
            .filter(|(n, e)| stored.entries.get(*n) != Some(*e))
            .count()
            + stored.entries.keys().filter(|n| !entries.contains_key(*n)).count();
        if changed == 0 && revision.is_some() {
            return Ok(Some((0, revision, entries)));
        }
        let doc = ShardDoc { entries };
        let written = write_shard(self.storage, &self.key, &doc, revision.as_ref()).await?;
        Ok(written.map(|r| (changed, Some(r), doc.entries)))
    }
}
