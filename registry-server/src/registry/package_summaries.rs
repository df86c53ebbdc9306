//! Every local package in one in-memory list, newest first, for the web UI's home page and a
//! package's dependents: a summary of each packument (what a list shows and the names its
//! latest version depends on). The list is rebuilt when this process wrote since (at once) or
//! when it is older than [`LISTING_TTL`] (the bound on how late another replica's publish shows);
//! a rebuild re-reads only the packuments whose revision moved. Memory: one summary per local
//! package, a few hundred bytes each.
//!
//! A stand-in for the search index: [`Registry::list`] and [`Registry::dependents`] keep their
//! shape (search-result entries, names) when an index answers them.

use super::{Registry, RegistryError, Result, packument_key, tarball_key, verdaccio_db};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::{PackageName, search};
use crate::storage::Revision;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LISTING_TTL: Duration = Duration::from_secs(5);
/// Revision checks in flight at once during a rebuild (S3 answers each in milliseconds).
const CONCURRENCY: usize = 16;
/// The dependency kinds that make a package a dependent (not `devDependencies`: they do not
/// travel with the package).
const DEPENDENCY_KINDS: &[&str] = &["dependencies", "optionalDependencies", "peerDependencies"];

struct Entry {
    name: PackageName,
    revision: Revision,
    /// A search-result entry (`package::search::result`) with the latest version's `license`.
    summary: Value,
    modified: String,
    depends_on: BTreeSet<String>,
}

struct Snapshot {
    taken: Instant,
    /// The packument cache's write generation when the rebuild began.
    generation: u64,
    /// Newest first.
    entries: Vec<Arc<Entry>>,
}

#[derive(Default)]
pub(super) struct Listing {
    current: Mutex<Option<Arc<Snapshot>>>,
    rebuild: tokio::sync::Mutex<()>,
}

impl Listing {
    fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, s: Arc<Snapshot>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }
}

/// A license as a string, from `"MIT"` or the old `{"type": "MIT"}`.
fn license(manifest: &Value) -> Option<&str> {
    let l = manifest.get("license")?;
    l.as_str().or_else(|| l.get("type")?.as_str())
}

fn entry(name: PackageName, revision: Revision, doc: &Value) -> Entry {
    let indexed = search::Entry::from_doc(name.as_str(), doc, search::latest_manifest(doc));
    let mut summary = search::result(&indexed, 1.0, 1.0);
    let latest = doc
        .pointer("/dist-tags/latest")
        .and_then(Value::as_str)
        .and_then(|v| doc.get("versions")?.get(v));
    if let Some(l) = latest.and_then(license) {
        summary["package"]["license"] = Value::String(l.to_owned());
    }
    let depends_on = latest
        .map(|m| {
            DEPENDENCY_KINDS
                .iter()
                .filter_map(|k| m.get(*k)?.as_object())
                .flat_map(|deps| deps.keys().cloned())
                .collect()
        })
        .unwrap_or_default();
    Entry {
        name,
        revision,
        summary,
        modified: doc
            .pointer("/time/modified")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        depends_on,
    }
}

impl Registry {
    /// Every local package the caller may read, most recently changed first: `(page, total)`,
    /// each entry shaped as a search result.
    pub async fn list(&self, from: usize, size: usize, who: &Identity) -> Result<(Vec<Value>, usize)> {
        let snapshot = self.snapshot().await?;
        let readable: Vec<&Arc<Entry>> = snapshot
            .entries
            .iter()
            .filter(|e| self.rules.allows(e.name.as_str(), Action::Access, who))
            .collect();
        let total = readable.len();
        let page = readable.into_iter().skip(from).take(size).map(|e| e.summary.clone());
        Ok((page.collect(), total))
    }

    /// The local packages the caller may read whose latest version depends on `name`, by name.
    pub async fn dependents(&self, name: &PackageName, who: &Identity) -> Result<Vec<String>> {
        let snapshot = self.snapshot().await?;
        let mut names: Vec<String> = snapshot
            .entries
            .iter()
            .filter(|e| e.depends_on.contains(name.as_str()))
            .filter(|e| self.rules.allows(e.name.as_str(), Action::Access, who))
            .map(|e| e.name.to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let fresh = |s: &Snapshot| s.generation == self.cache.generation() && s.taken.elapsed() < LISTING_TTL;
        if let Some(s) = self.listing.current().filter(|s| fresh(s)) {
            return Ok(s);
        }
        // One rebuild at a time; those who waited take its result.
        let _rebuilding = self.listing.rebuild.lock().await;
        let previous = self.listing.current();
        if let Some(s) = previous.as_ref().filter(|s| fresh(s)) {
            return Ok(s.clone());
        }
        let generation = self.cache.generation();
        let taken = Instant::now();
        let known: HashMap<String, Arc<Entry>> = previous
            .iter()
            .flat_map(|s| s.entries.iter())
            .map(|e| (e.name.to_string(), e.clone()))
            .collect();
        let names = verdaccio_db::read(self.storage.as_ref()).await?;
        let mut entries: Vec<Arc<Entry>> = stream::iter(names)
            .map(|n| {
                let old = known.get(&n).cloned();
                async move { self.listed(&n, old).await }
            })
            .buffer_unordered(CONCURRENCY)
            .try_filter_map(|e| async move { Ok(e) })
            .try_collect()
            .await?;
        entries.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| a.name.cmp(&b.name)));
        let snapshot = Arc::new(Snapshot {
            taken,
            generation,
            entries,
        });
        self.listing.set(snapshot.clone());
        Ok(snapshot)
    }

    /// One package's entry: the known one while its packument's revision is unchanged.
    async fn listed(&self, name: &str, known: Option<Arc<Entry>>) -> Result<Option<Arc<Entry>>> {
        let Ok(name) = PackageName::parse(name) else {
            return Ok(None);
        };
        let Some(revision) = self.storage.revision(&packument_key(&name)?).await? else {
            return Ok(None);
        };
        if let Some(e) = known.filter(|e| e.revision == revision) {
            return Ok(Some(e));
        }
        match self.read_doc(&name).await {
            Ok(Some(doc)) => Ok(Some(Arc::new(entry(name, doc.revision, &doc.value)))),
            Ok(None) => Ok(None),
            // One unreadable document must not hide every other package.
            Err(RegistryError::Package(e)) => {
                tracing::warn!(package = %name, error = %e, "left out of the package list");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl Registry {
    /// The length of a tarball stored here (never fetched from an uplink for this), for the web
    /// UI's package page.
    pub async fn local_tarball_size(&self, name: &PackageName, file: &str, who: &Identity) -> Result<Option<u64>> {
        PackageName::check_filename(file)?;
        self.authorize(name, Action::Access, who)?;
        Ok(self.storage.get_blob(&tarball_key(name, file)?).await?.map(|b| b.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_summarise_the_latest_version() {
        let doc = json!({
            "name": "app", "dist-tags": {"latest": "2.0.0"},
            "time": {"modified": "2024-05-01T00:00:00.000Z"},
            "versions": {
                "1.0.0": {"version": "1.0.0", "dependencies": {"old": "1"}},
                "2.0.0": {"version": "2.0.0", "description": "d", "license": {"type": "ISC"},
                          "dependencies": {"lib": "^1"}, "peerDependencies": {"react": "*"},
                          "devDependencies": {"jest": "*"}}
            }
        });
        let e = entry(PackageName::parse("app").unwrap(), Revision("r".into()), &doc);
        assert_eq!(e.summary["package"]["version"], "2.0.0");
        assert_eq!(e.summary["package"]["license"], "ISC");
        assert_eq!(e.modified, "2024-05-01T00:00:00.000Z");
        assert_eq!(e.depends_on.iter().collect::<Vec<_>>(), ["lib", "react"]);
    }
}
