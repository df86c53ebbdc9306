//! The registry's use cases over a [`Storage`]: read, publish, update, unpublish, tags, search.
//! Every packument change is read → pure change (in `package`) → compare-and-swap write, retried
//! on conflict, so concurrent writers (threads, processes, pods) never lose each other's work.

pub mod cache;
mod error;
mod package_list;

pub use cache::{Encoding, PackumentCache, Prepared};
pub use error::{RegistryError, Result};

use crate::auth::Identity;
use crate::metrics::Metrics;
use crate::package::access::{AccessRules, Action};
use crate::package::merge;
use crate::package::{PackageError, PackageName, publish, search, shallow, tags, update};
use crate::storage::{self, Blob, Revision, Storage, StorageError, layout, read_blob_bytes};
use crate::uplink::{Fetched, Uplinks, UpstreamDoc};
use bytes::Bytes;
use chrono::Utc;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Attempts of one compare-and-swap change before giving up with `Contended`.
const MAX_ATTEMPTS: u32 = 100;

pub struct Registry {
    storage: Arc<dyn Storage>,
    rules: AccessRules,
    cache: PackumentCache,
    metrics: Arc<Metrics>,
    uplinks: Option<Arc<Uplinks>>,
    /// One async lock per package for writers in this process: they queue instead of losing
    /// compare-and-swap races to each other and backing off. CAS still guards across processes.
    writers: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
    /// The packument each package was last published to by this process, kept parsed: the next
    /// publish to a busy package then checks the revision (a stat, a HEAD) instead of reading
    /// and parsing the whole document again.
    published: moka::sync::Cache<String, Arc<Published>>,
}

/// Room for kept packuments, in bytes of their JSON (they take about twice that in memory).
const PUBLISHED_CACHE: u64 = 16 * 1024 * 1024;

/// A packument as this process wrote it, in the form a publish reads it ([`shallow`]).
struct Published {
    weight: u32,
    kept: std::sync::Mutex<Option<Kept>>,
}

struct Kept {
    revision: Revision,
    doc: Value,
    stored: shallow::Stored<'static>,
}

/// A stored packument and the storage revision it was read at.
pub struct Doc {
    pub value: Value,
    pub revision: Revision,
}

fn corrupt(name: &PackageName, e: serde_json::Error) -> RegistryError {
    PackageError::Corrupt(format!("{name}/package.json: {e}")).into()
}

fn parse_doc(name: &PackageName, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(name, e))
}

/// How [`Registry::modify`] reads the stored document: whole, or for a change that only adds
/// versions, with the stored manifests kept as raw text (`package::shallow`).
#[derive(Debug, Clone, Copy)]
enum Reading {
    Whole,
    AddingVersions,
}

fn not_found(name: &PackageName) -> RegistryError {
    RegistryError::NotFound(format!("package {name} not found"))
}

impl Registry {
    pub fn new(storage: Arc<dyn Storage>, rules: AccessRules, cache: PackumentCache, metrics: Arc<Metrics>) -> Self {
        Registry {
            storage,
            rules,
            cache,
            metrics,
            uplinks: None,
            writers: moka::sync::Cache::builder()
                .time_to_idle(Duration::from_secs(60))
                .build(),
            published: moka::sync::Cache::builder()
                .max_capacity(PUBLISHED_CACHE)
                .weigher(|_, p: &Arc<Published>| p.weight)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        }
    }

    /// Lets packages whose rule names uplinks come from them.
    pub fn with_uplinks(mut self, uplinks: Arc<Uplinks>) -> Self {
        self.uplinks = Some(uplinks);
        self
    }

    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// Refuses `action` on `name` for `who`. A package the caller may not read is reported as
    /// missing (its existence is not revealed), except that anonymous callers are told to log in.
    pub fn authorize(&self, name: &PackageName, action: Action, who: &Identity) -> Result<()> {
        if who.readonly && action != Action::Access {
            return Err(RegistryError::Forbidden(format!(
                "this token is read-only: it cannot publish or change {name}"
            )));
        }
        if self.rules.allows(name.as_str(), action, who) {
            return Ok(());
        }
        let verb = match action {
            Action::Access => "read",
            Action::Publish => "publish",
            Action::Unpublish => "unpublish or change",
        };
        match (&who.name, action) {
            (None, _) => Err(RegistryError::Unauthorized(format!(
                "authentication required to {verb} {name}; log in with `npm login`"
            ))),
            (Some(_), Action::Access) => Err(not_found(name)),
            (Some(user), _) => Err(RegistryError::Forbidden(format!(
                "user {user} is not allowed to {verb} {name}"
            ))),
        }
    }

    pub async fn read_doc(&self, name: &PackageName) -> Result<Option<Doc>> {
        let Some(v) = self.storage.read(&layout::packument(name)?).await? else {
            return Ok(None);
        };
        Ok(Some(Doc {
            value: parse_doc(name, &v.bytes)?,
            revision: v.revision,
        }))
    }

    /// The locally stored packument (for `?write=true`: what a modification starts from).
    pub async fn packument(&self, name: &PackageName, who: &Identity) -> Result<Value> {
        self.authorize(name, Action::Access, who)?;
        self.read_doc(name)
            .await?
            .map(|d| d.value)
            .ok_or_else(|| not_found(name))
    }

    /// The package as clients see it: local data over the (filtered) upstream packument.
    pub async fn merged(&self, name: &PackageName, who: &Identity) -> Result<Value> {
        self.authorize(name, Action::Access, who)?;
        let local = self.read_doc(name).await?;
        let upstream = self.upstream(name, local.is_some()).await?;
        self.merge_view(name, local.map(|d| d.value), upstream.as_deref())
            .ok_or_else(|| not_found(name))
    }

    /// The upstream packument when the package's rule proxies; errors are tolerated when local
    /// data can answer alone.
    async fn upstream(&self, name: &PackageName, have_local: bool) -> Result<Option<Arc<UpstreamDoc>>> {
        let proxies = self.rules.proxies(name.as_str());
        let Some(uplinks) = self.uplinks.as_ref().filter(|_| !proxies.is_empty()) else {
            return Ok(None);
        };
        match uplinks.packument(name, proxies).await {
            Ok(u) => Ok(u),
            Err(e) if have_local => {
                tracing::warn!(package = %name, error = %e, "serving local versions only");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn merge_view(&self, name: &PackageName, local: Option<Value>, upstream: Option<&UpstreamDoc>) -> Option<Value> {
        let filtered = upstream.map(|u| {
            let mut doc = u.doc.clone();
            self.rules
                .filter(name.as_str())
                .apply(name.as_str(), &mut doc, Utc::now());
            doc
        });
        merge::merge(local.as_ref(), filtered)
    }

    /// The packument's ready-to-send representations for `base`, from memory when storage confirms
    /// they are current. The hot path of every install.
    pub async fn prepared(&self, name: &PackageName, who: &Identity, base: &str) -> Result<Arc<Prepared>> {
        self.authorize(name, Action::Access, who)?;
        if self.uplinks.is_some() && !self.rules.proxies(name.as_str()).is_empty() {
            return self.prepared_proxied(name, base).await;
        }
        let key = layout::packument(name)?;
        if let Some(p) = self.cache.get(name, base) {
            if !self.cache.is_due(&p) {
                self.metrics.cache(true);
                return Ok(p);
            }
            match self.storage.revision(&key).await? {
                Some(r) if r == p.revision => {
                    self.cache.confirmed(&p);
                    self.metrics.cache(true);
                    return Ok(p);
                }
                None => {
                    self.cache.invalidate(name);
                    return Err(not_found(name));
                }
                Some(_) => {}
            }
        }
        self.metrics.cache(false);
        let generation = self.cache.generation();
        let stored = self.storage.read(&key).await?.ok_or_else(|| not_found(name))?;
        let (n, b) = (name.clone(), base.to_owned());
        let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared> {
            let doc = parse_doc(&n, &stored.bytes)?;
            Ok(Prepared::build(&n, &doc, stored.revision, &b))
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("packument preparation failed: {e}")))??;
        let prepared = Arc::new(prepared);
        self.cache.insert(name, prepared.clone(), generation);
        Ok(prepared)
    }

    /// `prepared` for a package whose rule proxies: the cached bytes are current while the local
    /// revision and the upstream copy (fresh within the uplink's `maxage`) are unchanged.
    async fn prepared_proxied(&self, name: &PackageName, base: &str) -> Result<Arc<Prepared>> {
        let local_revision = self.storage.revision(&layout::packument(name)?).await?;
        let upstream = self.upstream(name, local_revision.is_some()).await?;
        let filter = self.rules.filter(name.as_str());
        // Quarantine depends on the clock: let the view change at least once a minute.
        let minute = if filter.is_empty() {
            0
        } else {
            Utc::now().timestamp() / 60
        };
        let stamp = upstream.as_ref().map(|u| u.stamp()).unwrap_or_default();
        let revision = Revision(format!(
            "{}|{stamp}|{minute}",
            local_revision.as_ref().map(|r| r.0.as_str()).unwrap_or("-")
        ));
        if let Some(p) = self.cache.get(name, base).filter(|p| p.revision == revision) {
            self.metrics.cache(true);
            return Ok(p);
        }
        self.metrics.cache(false);
        let generation = self.cache.generation();
        let local = self.read_doc(name).await?.map(|d| d.value);
        let merged = self
            .merge_view(name, local, upstream.as_deref())
            .ok_or_else(|| not_found(name))?;
        let (n, b) = (name.clone(), base.to_owned());
        let prepared = tokio::task::spawn_blocking(move || Prepared::build(&n, &merged, revision, &b))
            .await
            .map_err(|e| StorageError::Unavailable(format!("packument preparation failed: {e}")))?;
        let prepared = Arc::new(prepared);
        self.cache.insert(name, prepared.clone(), generation);
        Ok(prepared)
    }

    /// Applies `change` to the current packument with compare-and-swap, retrying on conflicts.
    /// `change` gets `None` when the package does not exist yet. `before_write` runs once, after
    /// the first successful `change` and before anything is written (a publish stores its
    /// tarballs there: only once the merge has accepted them, and before metadata names them).
    async fn modify<T>(
        &self,
        name: &PackageName,
        reading: Reading,
        mut change: impl FnMut(Option<Value>) -> Result<(Value, T)>,
        mut before_write: Option<BoxFuture<'_, Result<()>>>,
    ) -> Result<T> {
        let key = layout::packument(name)?;
        let writer = self
            .writers
            .get_with(name.to_string(), || Arc::new(tokio::sync::Mutex::new(())));
        let _queue = writer.lock().await;
        let adding = matches!(reading, Reading::AddingVersions);
        for attempt in 0..MAX_ATTEMPTS {
            let (revision, doc, stored) = match self.kept(name, &key, adding && attempt == 0).await? {
                Some(k) => (Some(k.revision), Some(k.doc), k.stored),
                None => match (self.storage.read(&key).await?, reading) {
                    (None, _) => (None, None, shallow::Stored::default()),
                    (Some(v), Reading::Whole) => (
                        Some(v.revision),
                        Some(parse_doc(name, &v.bytes)?),
                        shallow::Stored::default(),
                    ),
                    (Some(v), Reading::AddingVersions) => {
                        let (doc, stored) = shallow::parse(&v.bytes).map_err(|e| corrupt(name, e))?;
                        // Owned, to be kept after the write: one copy of the raw manifests, in
                        // place of the read and parse the next publish to this package saves.
                        (Some(v.revision), Some(doc), stored.into_owned())
                    }
                },
            };
            let (mut doc, out) = change(doc)?;
            doc["_rev"] = Value::String(crate::package::revision::next(doc.get("_rev").and_then(Value::as_str)));
            let bytes = stored.to_vec_pretty(&doc);
            if let Some(prepare) = before_write.take() {
                prepare.await?;
            }
            let weight = bytes.len().try_into().unwrap_or(u32::MAX);
            match self.storage.write(&key, Bytes::from(bytes), revision.as_ref()).await {
                Ok(written) => {
                    self.cache.invalidate(name);
                    if adding {
                        self.keep(name, written, doc, stored, weight);
                    }
                    return Ok(out);
                }
                Err(StorageError::Conflict(_)) => {
                    // Jittered backoff, growing a little with each lost race.
                    let ms = rand::random_range(1..=(5 + attempt as u64 * 2).min(50));
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Contended(name.to_string()))
    }

    /// The packument this process last published for `name`, if storage is still at that
    /// revision. Taken out of the cache: the caller holds the package's writer lock, and puts
    /// the document it writes back with [`keep`](Self::keep).
    async fn kept(&self, name: &PackageName, key: &storage::Key, wanted: bool) -> Result<Option<Kept>> {
        let Some(published) = self.published.remove(name.as_str()).filter(|_| wanted) else {
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
        mut stored: shallow::Stored<'static>,
        weight: u32,
    ) {
        stored.absorb(&mut doc);
        let kept = Kept { revision, doc, stored };
        let published = Published {
            weight,
            kept: std::sync::Mutex::new(Some(kept)),
        };
        self.published.insert(name.to_string(), Arc::new(published));
    }

    /// `PUT /:pkg` with attachments. `base` is this registry's URL for `dist.tarball`.
    pub async fn publish(&self, name: &PackageName, body: &Value, who: &Identity, base: &str) -> Result<()> {
        self.authorize(name, Action::Publish, who)?;
        let parsed = publish::parse(name, body)?;
        let publisher = who.name.clone();
        let now = Utc::now();
        // Tarballs are stored once the merge has accepted the versions (an existing version is
        // refused before anything is written) and before the metadata that names them.
        let store_tarballs = Box::pin(async {
            for v in &parsed.versions {
                self.store_tarball(name, &v.filename, &v.tarball).await?;
            }
            Ok(())
        });
        let created = self
            .modify(
                name,
                Reading::AddingVersions,
                |doc| {
                    let created = doc.is_none();
                    if created {
                        name.validate_new()?;
                    }
                    Ok((
                        publish::merge(name, doc, &parsed, base, now, publisher.as_deref())?,
                        created,
                    ))
                },
                Some(store_tarballs),
            )
            .await?;
        if created {
            package_list::add(self.storage.as_ref(), name).await?;
        }
        Ok(())
    }

    async fn store_tarball(&self, name: &PackageName, file: &str, bytes: &[u8]) -> Result<()> {
        let key = layout::tarball(name, file)?;
        match self.storage.put_blob(&key, Bytes::copy_from_slice(bytes)).await {
            Ok(()) => Ok(()),
            Err(StorageError::AlreadyExists(_)) => {
                // A retried publish of identical bytes is fine; anything else would silently
                // change a tarball whose integrity someone may already have recorded.
                if read_blob_bytes(self.storage.as_ref(), &key).await?.as_deref() == Some(bytes) {
                    Ok(())
                } else {
                    Err(RegistryError::Conflict(format!(
                        "a different tarball {file} is already stored for {name}; publish a new version"
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `PUT /:pkg[/-rev/:rev]` without attachments: deprecate, unpublish versions, tags, star, owners.
    pub async fn update(&self, name: &PackageName, rev: Option<&str>, body: &Value, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Access, who)?;
        let rev = rev.or_else(|| body.get("_rev").and_then(Value::as_str));
        let now = Utc::now();
        let removed = self
            .modify(
                name,
                Reading::Whole,
                |doc| {
                    let doc = doc.ok_or_else(|| match body.get("versions").and_then(Value::as_object) {
                        // A first publish that forgot its tarball, not an update.
                        Some(vs) if !vs.is_empty() => {
                            PackageError::MissingAttachment(vs.keys().next().cloned().unwrap_or_default()).into()
                        }
                        _ => not_found(name),
                    })?;
                    update::check_revision(&doc, rev)?;
                    let u = update::apply(&doc, body, now)?;
                    let action = if u.is_destructive() {
                        Action::Unpublish
                    } else {
                        Action::Publish
                    };
                    self.authorize(name, action, who)?;
                    Ok((u.doc, u.removed_versions))
                },
                None,
            )
            .await?;
        tracing::info!(package = %name, removed = ?removed, "packument updated");
        Ok(())
    }

    /// `DELETE /:pkg/-rev/:rev`: the whole package with its tarballs.
    pub async fn unpublish_package(&self, name: &PackageName, rev: &str, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Unpublish, who)?;
        let doc = self.read_doc(name).await?.ok_or_else(|| not_found(name))?;
        update::check_revision(&doc.value, Some(rev))?;
        self.storage
            .delete(&layout::packument(name)?, &doc.revision)
            .await
            .map_err(|e| match e {
                StorageError::Conflict(_) => {
                    RegistryError::Conflict(format!("{name} changed while it was being unpublished; retry"))
                }
                e => e.into(),
            })?;
        self.cache.invalidate(name);
        for file in self.storage.list(&layout::package_dir(name)?).await? {
            if file.ends_with(".tgz") {
                self.storage.delete_blob(&layout::tarball(name, &file)?).await?;
            }
        }
        package_list::remove(self.storage.as_ref(), name).await?;
        tracing::info!(package = %name, "package unpublished");
        Ok(())
    }

    /// `DELETE /:pkg/-/:file/-rev/:rev`: the tarball of a version already removed from metadata.
    pub async fn delete_tarball(&self, name: &PackageName, file: &str, rev: &str, who: &Identity) -> Result<()> {
        PackageName::check_filename(file)?;
        self.authorize(name, Action::Unpublish, who)?;
        let doc = self.read_doc(name).await?.ok_or_else(|| not_found(name))?;
        update::check_revision(&doc.value, Some(rev))?;
        let still_used = doc.value.get("versions").and_then(Value::as_object).is_some_and(|vs| {
            vs.iter()
                .any(|(v, m)| crate::package::packument::tarball_file(name, v, m) == file)
        });
        if still_used {
            return Err(RegistryError::Conflict(format!(
                "{file} belongs to a published version of {name}; unpublish the version first"
            )));
        }
        self.storage.delete_blob(&layout::tarball(name, file)?).await?;
        Ok(())
    }

    pub async fn tarball(&self, name: &PackageName, file: &str, who: &Identity) -> Result<Blob> {
        PackageName::check_filename(file)?;
        self.authorize(name, Action::Access, who)?;
        let missing = || RegistryError::NotFound(format!("tarball {file} of {name} not found"));
        if let Some(blob) = self.storage.get_blob(&layout::tarball(name, file)?).await? {
            return Ok(blob);
        }
        let Some(upstream) = self.upstream(name, false).await? else {
            return Err(missing());
        };
        // Only a version the rule lets through; its tarball URL and integrity come from the
        // upstream packument, never from the client.
        let filter = self.rules.filter(name.as_str());
        let now = Utc::now();
        let version = upstream.doc.get("versions").and_then(Value::as_object).and_then(|vs| {
            vs.iter().find(|(v, m)| {
                crate::package::packument::tarball_file(name, v, m) == file
                    && !filter.hides(
                        name.as_str(),
                        v,
                        upstream.doc.pointer(&format!("/time/{v}")).and_then(Value::as_str),
                        now,
                    )
            })
        });
        let Some((_, manifest)) = version else {
            return Err(missing());
        };
        let cached = crate::uplink::tarball_key(name, file)?;
        if let Some(blob) = self.storage.get_blob(&cached).await? {
            return Ok(blob);
        }
        let url = manifest
            .pointer("/dist/tarball")
            .and_then(Value::as_str)
            .ok_or_else(missing)?;
        let sri = manifest.pointer("/dist/integrity").and_then(Value::as_str);
        let sha = manifest.pointer("/dist/shasum").and_then(Value::as_str);
        let uplinks = self.uplinks.as_ref().expect("upstream data implies uplinks");
        match uplinks.tarball(name, file, &upstream.uplink, url, sri, sha).await? {
            Some(Fetched::Stored) => self.storage.get_blob(&cached).await?.ok_or_else(missing),
            Some(Fetched::Bytes(bytes)) => Ok(Blob::whole(bytes)),
            Some(Fetched::Streaming(blob)) => Ok(blob),
            None => Err(missing()),
        }
    }

    /// Passes an audit request to the uplinks; `None` when none is configured or answers.
    pub async fn audit(
        &self,
        path: &str,
        headers: &reqwest::header::HeaderMap,
        body: Bytes,
    ) -> Result<Option<(u16, reqwest::header::HeaderMap, Bytes)>> {
        let Some(uplinks) = &self.uplinks else { return Ok(None) };
        uplinks
            .audit(path, headers, body)
            .await
            .map_err(|e| RegistryError::from(crate::uplink::UplinkError::from(e)))
    }

    /// A short-lived direct download URL for a tarball, when storage hands them out.
    pub async fn tarball_redirect(&self, name: &PackageName, file: &str, who: &Identity) -> Result<Option<String>> {
        PackageName::check_filename(file)?;
        self.authorize(name, Action::Access, who)?;
        Ok(self.storage.blob_redirect(&layout::tarball(name, file)?).await?)
    }

    pub async fn dist_tags(&self, name: &PackageName, who: &Identity) -> Result<Map<String, Value>> {
        Ok(tags::tags(&self.merged(name, who).await?))
    }

    pub async fn set_tag(&self, name: &PackageName, tag: &str, version: &str, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Publish, who)?;
        let change = |doc: Option<Value>| {
            let mut doc = doc.ok_or_else(|| not_found(name))?;
            tags::set(&mut doc, tag, version)?;
            Ok((doc, ()))
        };
        self.modify(name, Reading::Whole, change, None).await
    }

    pub async fn remove_tag(&self, name: &PackageName, tag: &str, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Publish, who)?;
        let change = |doc: Option<Value>| {
            let mut doc = doc.ok_or_else(|| not_found(name))?;
            tags::remove(&mut doc, tag)?;
            Ok((doc, ()))
        };
        self.modify(name, Reading::Whole, change, None).await
    }

    /// Local packages the caller may read that match `text`, best first: `(page, total)`.
    pub async fn search(&self, text: &str, from: usize, size: usize, who: &Identity) -> Result<(Vec<Value>, usize)> {
        let query = search::Query::parse(text);
        let mut hits = Vec::new();
        for n in package_list::read(self.storage.as_ref()).await? {
            let Ok(name) = PackageName::parse(&n) else {
                continue;
            };
            if !self.rules.allows(name.as_str(), Action::Access, who) {
                continue;
            }
            let Some(doc) = self.read_doc(&name).await? else {
                continue;
            };
            let score = query.score(&doc.value);
            if score > 0.0 {
                hits.push((score, doc.value));
            }
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        let max = hits.first().map(|h| h.0).unwrap_or(0.0);
        let total = hits.len();
        let page = hits
            .into_iter()
            .skip(from)
            .take(size)
            .map(|(s, d)| search::result(&d, s, max))
            .collect();
        Ok((page, total))
    }
}

#[cfg(test)]
mod tests;
