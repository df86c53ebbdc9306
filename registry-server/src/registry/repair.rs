//! Leftover repair: a background pass over every local package, run by one replica at a time (a
//! lease, `storage::document::Lease`; a replica that dies loses it when it expires),
//! every step idempotent and made through the package's compare-and-swap path:
//! - deletions whose deleter stopped (crash, kill) are finished (`deletes`);
//! - orphan tarballs (no version names them, written longer ago than the grace period, so no
//!   publish in flight can still write the document that names them) are deleted the way
//!   unpublish deletes, so a re-publish of the version is never refused because of them;
//! - the package list gets the packages it misses and loses the ones that are gone;
//! - temp files of interrupted writes are swept.

use super::tarball_deletion::Step;
use super::{Registry, Result, packument_key, parse_doc, tarball_key, verdaccio_db};
use crate::package::search::{self, Entry};
use crate::package::{PackageName, deletion, packument};
use crate::storage::document::Lease;
use crate::storage::{Storage, StorageKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How leftovers are repaired (`repair` in the config).
#[derive(Debug, Clone)]
pub struct RepairPolicy {
    /// How often a repair pass runs (one replica at a time).
    pub interval: Duration,
    /// How old a leftover must be before it is repaired: longer than any write in flight takes.
    pub grace: chrono::Duration,
}

impl Default for RepairPolicy {
    fn default() -> Self {
        RepairPolicy::new(
            registry_config::defaults::REPAIR_INTERVAL,
            registry_config::defaults::REPAIR_GRACE,
        )
    }
}

impl RepairPolicy {
    pub fn new(interval: Duration, grace: Duration) -> Self {
        RepairPolicy {
            interval,
            grace: chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX),
        }
    }
}

/// What one pass repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub packages: usize,
    pub orphan_tarballs: usize,
    pub finished_deletions: usize,
    pub listed: usize,
    pub unlisted: usize,
    pub temp_files: usize,
    /// Search index entries put right (all of them when the index was built).
    pub search_entries: usize,
}

impl Repaired {
    fn anything(&self) -> bool {
        self.orphan_tarballs
            + self.finished_deletions
            + self.listed
            + self.unlisted
            + self.temp_files
            + self.search_entries
            > 0
    }
}

/// What the repair lease stores besides its holder and term: when the last pass ended.
#[derive(Debug, Serialize, Deserialize)]
struct LastPass {
    #[serde(default)]
    last_pass: Option<DateTime<Utc>>,
}

/// A replica that dies mid-pass holds the lease at most this long.
const LEASE_TTL: Duration = Duration::from_secs(300);
/// How often a running pass renews its lease.
const RENEW_AFTER: Duration = Duration::from_secs(60);

/// The repair lease, held by this replica while it runs a pass.
struct Held<'s> {
    lease: Lease<'s, LastPass>,
    renewed: std::time::Instant,
}

impl<'s> Held<'s> {
    /// Takes the lease when nobody holds it and no pass ended within `interval`.
    async fn take(storage: &'s dyn Storage, holder: &str, interval: Duration) -> Result<Option<Held<'s>>> {
        let now = Utc::now();
        let interval = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
        let lease = Lease::take(storage, StorageKey::RepairLease.key()?, holder, LEASE_TTL, |stored| {
            let last_pass = stored.and_then(|d: LastPass| d.last_pass);
            let due = last_pass.is_none_or(|t| now - t >= interval);
            due.then_some(LastPass { last_pass })
        })
        .await?;
        Ok(lease.map(|lease| Held {
            lease,
            renewed: std::time::Instant::now(),
        }))
    }

    /// Renews the lease when due; false when it was lost (the pass must stop).
    async fn keep(&mut self) -> Result<bool> {
        if self.renewed.elapsed() < RENEW_AFTER {
            return Ok(true);
        }
        self.renewed = std::time::Instant::now();
        Ok(self.lease.renew().await?)
    }

    /// Lets the lease go, recording that a pass just ended.
    async fn release(self) -> Result<()> {
        let ended = LastPass {
            last_pass: Some(Utc::now()),
        };
        Ok(self.lease.release(ended).await?)
    }
}

/// Runs a repair pass every `interval` (across replicas) for as long as the process lives. The
/// first comes soon after start (a crash's leftovers, an index to build).
pub fn start(registry: Arc<Registry>) {
    let holder = format!("{:016x}", rand::random::<u64>());
    tokio::spawn(async move {
        let interval = registry.repair.interval;
        // Without a search index (new storage, Verdaccio's), the first pass builds it at once.
        let built = registry.search.is_built().await.unwrap_or(true);
        let mut wait = if built {
            interval.min(Duration::from_secs(10))
        } else {
            Duration::ZERO
        };
        loop {
            tokio::time::sleep(wait + Duration::from_millis(rand::random_range(0..1000))).await;
            wait = interval;
            let storage = registry.storage.as_ref();
            let due = match registry.search.is_built().await {
                Ok(false) => Duration::ZERO,
                _ => interval,
            };
            match Held::take(storage, &holder, due).await {
                Ok(Some(mut lease)) => {
                    match registry.repair_with(&mut lease).await {
                        Ok(r) if r.anything() => tracing::info!(repaired = ?r, "repair pass"),
                        Ok(r) => tracing::debug!(repaired = ?r, "repair pass: nothing to repair"),
                        Err(e) => tracing::warn!(error = %e, "repair pass failed; retried at the next interval"),
                    }
                    if let Err(e) = lease.release().await {
                        tracing::warn!(error = %e, "cannot release the repair lease");
                    }
                }
                Ok(None) => tracing::debug!("repair pass not due, or running on another replica"),
                Err(e) => tracing::warn!(error = %e, "cannot take the repair lease"),
            }
        }
    });
}

fn older_than(written: SystemTime, grace: chrono::Duration) -> bool {
    SystemTime::now()
        .duration_since(written)
        .ok()
        .and_then(|age| chrono::Duration::from_std(age).ok())
        .is_some_and(|age| age >= grace)
}

impl Registry {
    /// One repair pass over every local package, holding the lease.
    async fn repair_with(&self, lease: &mut Held<'_>) -> Result<Repaired> {
        let mut done = Repaired::default();
        let started = Utc::now();
        let listed: BTreeSet<String> = verdaccio_db::read(self.storage.as_ref()).await?.into_iter().collect();
        let mut present = BTreeSet::new();
        let mut entries = Vec::new();
        let mut skipped = BTreeSet::new();
        for name in self.local_package_names().await? {
            if !lease.keep().await? {
                tracing::warn!("repair lease lost to another replica; pass stopped");
                return Ok(done);
            }
            done.packages += 1;
            let listed_here = listed.contains(name.as_str());
            match self.repair_package(&name, listed_here, &mut done).await {
                Ok(Some(entry)) => {
                    present.insert(name.to_string());
                    entries.push(entry);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(package = %name, error = %e, "cannot repair package; skipped");
                    skipped.insert(name.to_string());
                }
            }
        }
        // A skipped package keeps the entry it has.
        done.search_entries = self.search.reconcile(entries, &skipped, started).await?;
        for name in present.difference(&listed) {
            if let Ok(n) = PackageName::parse(name) {
                verdaccio_db::add(self.storage.as_ref(), &n).await?;
                done.listed += 1;
            }
        }
        for name in listed.difference(&present) {
            let Ok(n) = PackageName::parse(name) else {
                continue;
            };
            if self.read_doc(&n).await?.is_none() {
                verdaccio_db::remove(self.storage.as_ref(), &n).await?;
                done.unlisted += 1;
            }
        }
        let grace = self.repair.grace.to_std().unwrap_or(Duration::MAX);
        done.temp_files = self.storage.sweep_temp(grace).await?;
        Ok(done)
    }

    /// Every package folder in storage (`name`, `@scope/name`).
    async fn local_package_names(&self) -> Result<Vec<PackageName>> {
        let mut names = Vec::new();
        for top in self.storage.list_root().await? {
            if top.starts_with('@') {
                let scope = StorageKey::PackageDir { package: &top }.key()?;
                for pkg in self.storage.list(&scope).await? {
                    names.extend(PackageName::parse(&format!("{top}/{pkg}")).ok());
                }
            } else {
                names.extend(PackageName::parse(&top).ok());
            }
        }
        Ok(names)
    }

    /// Repairs one package; its search entry when it exists (a document that is not a tombstone).
    /// A folder that holds Verdaccio's copy of an upstream package, not in the package list
    /// (`listed`), is a cache, not a package of this registry: left as it is, no entry.
    async fn repair_package(&self, name: &PackageName, listed: bool, done: &mut Repaired) -> Result<Option<Entry>> {
        if !listed
            && let Some(v) = self.storage.read(&packument_key(name)?).await?
            && parse_doc(name, &v.bytes).is_ok_and(|d| packument::is_upstream_copy(&d))
        {
            return Ok(None);
        }
        done.finished_deletions += self.finish_stale_deletions(name).await?.len();
        let folder = StorageKey::PackageDir { package: name.as_str() }.key()?;
        let files: Vec<String> = self
            .storage
            .list(&folder)
            .await?
            .into_iter()
            .filter(|f| f.ends_with(".tgz") && PackageName::check_filename(f).is_ok())
            .collect();
        let stored = self.storage.read(&packument_key(name)?).await?;
        let doc = stored.map(|v| parse_doc(name, &v.bytes)).transpose()?;
        let entry = doc
            .as_ref()
            .filter(|d| !deletion::is_tombstone(d))
            .map(|d| Entry::from_doc(name.as_str(), d, search::latest_manifest(d)));
        let accounted = |d: &serde_json::Value| -> BTreeSet<String> {
            let mut files = deletion::named_files(name, d);
            files.extend(deletion::pending(d).map(|(f, _)| f.to_owned()));
            files
        };
        let known = doc.as_ref().map(accounted).unwrap_or_default();
        let mut orphans = Vec::new();
        for file in files.into_iter().filter(|f| !known.contains(f)) {
            if let Some(written) = self.storage.modified(&tarball_key(name, &file)?).await?
                && older_than(written, self.repair.grace)
            {
                orphans.push(file);
            }
        }
        if orphans.is_empty() {
            return Ok(entry);
        }
        let now = Utc::now();
        let marked = self
            .deletion_step(name, |doc| match doc {
                // A crashed first publish: a placeholder makes a publish of the package wait.
                None => Ok((Step::Write(deletion::placeholder(name, &orphans, now)), orphans.clone())),
                Some(d) => {
                    let known = accounted(d);
                    let still: Vec<String> = orphans.iter().filter(|f| !known.contains(*f)).cloned().collect();
                    if still.is_empty() {
                        return Ok((Step::Nothing, still));
                    }
                    let mut d = d.clone();
                    deletion::mark(name, &mut d, &still, now)?;
                    Ok((Step::Write(d), still))
                }
            })
            .await?;
        if !marked.is_empty() {
            tracing::info!(package = %name, files = ?marked, "removing orphan tarballs no version names");
            self.delete_marked(name, &marked, now).await?;
            done.orphan_tarballs += marked.len();
        }
        Ok(entry)
    }
}
