//! The read paths: a package's documents from memory when storage confirms they are current (the
//! hot path of every install), built once per revision however many ask (single flight, on at
//! most one core each); the stored and merged documents; tarballs.

use super::cache::{Document, Kind, Prepared};
use super::{Registry, RegistryError, Result, corrupt, not_found, packument_key, tarball_key};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::merge::{self, VersionFilter};
use crate::package::packument::{Inputs, Packument, Sign, Source, template};
use crate::package::{PackageError, PackageName, deletion};
use crate::storage::{Blob, StorageError};
use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;
use std::sync::Arc;

/// A failed build (a panic in it) as the error its callers get.
/// What [`Registry::cached`] found.
pub(super) enum Cached {
    /// Current: serve it.
    Current(Arc<Document>),
    /// Not cached, or changed since: build it again.
    Stale,
    /// Built from local data storage no longer has.
    Gone,
}

/// The single-flight key of a document build: one build per package, cache generation and kind
/// at a time; the requests that ask meanwhile share its outcome.
pub(super) fn flight(name: &PackageName, generation: u64, kind: Kind) -> String {
    format!("{name}\0{generation}\0{kind:?}")
}

pub(super) fn build_failed(e: String) -> RegistryError {
    StorageError::Unavailable(format!("packument preparation failed: {e}")).into()
}

/// A local packument's bytes, indexed; pretty-printed storage is made compact first, so that
/// clients get what they would from a compact document. `None` for a tombstone (a package being
/// unpublished), which readers see as no package.
pub(super) fn local_source(name: &PackageName, bytes: Bytes) -> Result<Option<Arc<Source>>> {
    let bytes = template::minify(&bytes).map(Bytes::from).unwrap_or(bytes);
    let source = Source::parse(bytes).map_err(|e| PackageError::Corrupt(format!("{name}/package.json: {e}")))?;
    let tombstone = source.top_member(deletion::FIELD).is_some() && source.versions.is_empty();
    Ok((!tombstone).then(|| Arc::new(source)))
}

impl Registry {
    /// The locally stored packument (for `?write=true`: what a modification starts from).
    pub async fn packument(&self, name: &PackageName, who: &Identity) -> Result<Value> {
        self.authorize(name, Action::Access, who)?;
        self.read_doc(name)
            .await?
            .map(|d| d.value)
            .ok_or_else(|| not_found(name))
    }

    /// The package as clients see it, as a tree of values (for the few callers that need one):
    /// local data over the (filtered) upstream packument, tarball URLs as stored.
    pub async fn merged(&self, name: &PackageName, who: &Identity) -> Result<Value> {
        self.authorize(name, Action::Access, who)?;
        let doc = self.document(name, Kind::Full).await?;
        let (local, upstream) = doc.packument.sources();
        let (local, upstream) = (local.cloned(), upstream.cloned());
        let filter = self.rules.filter(name.as_str()).clone();
        let n = name.clone();
        crate::cpu_pool::cpu(move || {
            let parse = |s: &Source| serde_json::from_slice::<Value>(s.bytes()).map_err(|e| corrupt(&n, e));
            let local = local.as_deref().map(parse).transpose()?;
            let upstream = match upstream.as_deref().map(parse).transpose()? {
                Some(mut u) => {
                    filter.apply(n.as_str(), &mut u, Utc::now());
                    Some(u)
                }
                None => None,
            };
            merge::merge(local.as_ref(), upstream).ok_or_else(|| not_found(&n))
        })
        .await
        .map_err(build_failed)?
    }

    /// The package's full and abbreviated documents for `base`: see [`prepared_for`](Self::prepared_for).
    pub async fn prepared(&self, name: &PackageName, who: &Identity, base: &str) -> Result<Prepared> {
        self.prepared_for(name, who, base, Kind::Full).await
    }

    /// The package's documents for `base`, with `kind` among them, from memory when storage
    /// confirms they are current. The hot path of every install (which asks for the abbreviated
    /// document only: then the full one need not be kept).
    pub async fn prepared_for(&self, name: &PackageName, who: &Identity, base: &str, kind: Kind) -> Result<Prepared> {
        self.authorize(name, Action::Access, who)?;
        let doc = self.document(name, kind).await?;
        Ok(self.cache.prepare(doc, base))
    }

    /// One version (by number or dist-tag) as the full document holds it, for `base`; from the
    /// cached document, nothing parsed on the request's thread.
    pub async fn version(&self, name: &PackageName, spec: &str, who: &Identity, base: &str) -> Result<Bytes> {
        self.prepared_for(name, who, base, Kind::Full)
            .await?
            .version(spec)
            .ok_or_else(|| RegistryError::NotFound(format!("version or dist-tag {spec} of {name} not found")))
    }

    /// The package's document with `kind` in it, cached or built.
    pub(super) async fn document(&self, name: &PackageName, kind: Kind) -> Result<Arc<Document>> {
        if self.proxied(name) {
            return self.proxied_document(name, kind).await;
        }
        match self.cached(name, kind, |d| d.upstream.is_none()).await? {
            Cached::Current(d) => return Ok(d),
            Cached::Gone => {
                self.cache.invalidate(name);
                return Err(not_found(name));
            }
            Cached::Stale => {}
        }
        let generation = self.cache.generation();
        self.builds
            .run(&flight(name, generation, kind), || {
                self.build_local(name, kind, generation)
            })
            .await
    }

    /// The read path's one freshness check: the cached document of `name` with `kind` in it,
    /// when `usable` and signed with the current keys, is current while it is not due for
    /// revalidation, or when storage is still at the local revision it was built from (a stat,
    /// a HEAD). Counts a hit or a miss (not a document that is gone: the caller decides).
    pub(super) async fn cached(
        &self,
        name: &PackageName,
        kind: Kind,
        usable: impl Fn(&Document) -> bool,
    ) -> Result<Cached> {
        let found = self
            .cache
            .get(name.as_str())
            .filter(|d| d.has(kind) && d.keys == self.keys_generation() && usable(d));
        let outcome = match found {
            None => Cached::Stale,
            Some(d) if !self.cache.is_due(&d) => Cached::Current(d),
            Some(d) => match self.storage.revision(&packument_key(name)?).await? {
                r if r == d.local => {
                    self.cache.confirmed(&d);
                    Cached::Current(d)
                }
                None => Cached::Gone,
                Some(_) => Cached::Stale,
            },
        };
        match outcome {
            Cached::Current(_) => self.metrics.cache(true),
            Cached::Stale => self.metrics.cache(false),
            Cached::Gone => {}
        }
        Ok(outcome)
    }

    async fn build_local(&self, name: &PackageName, kind: Kind, generation: u64) -> Result<Arc<Document>> {
        let stored = self
            .storage
            .read(&packument_key(name)?)
            .await?
            .ok_or_else(|| not_found(name))?;
        let (n, keys, sign) = (name.clone(), self.keys_generation(), self.sign());
        let packument = crate::cpu_pool::cpu(move || -> Result<Packument> {
            let local = local_source(&n, stored.bytes)?.ok_or_else(|| not_found(&n))?;
            let inputs = Inputs {
                name: &n,
                local: Some(local),
                upstream: None,
                filter: &VersionFilter::default(),
                now: Utc::now(),
                sign: sign.as_ref().map(|f| f as &Sign),
            };
            Ok(Packument::build(inputs, kind == Kind::Full).expect("a source to cut from"))
        })
        .await
        .map_err(build_failed)??;
        let doc = Arc::new(Document::new(packument, Some(stored.revision), None, 0, keys));
        self.cache.insert(&doc, generation);
        Ok(doc)
    }

    /// A tarball: stored here, or else from the package's uplinks.
    pub async fn tarball(&self, name: &PackageName, file: &str, who: &Identity) -> Result<Blob> {
        PackageName::check_filename(file)?;
        self.authorize(name, Action::Access, who)?;
        if let Some(blob) = self.storage.get_blob(&tarball_key(name, file)?).await? {
            return Ok(blob);
        }
        self.upstream_tarball(name, file)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("tarball {file} of {name} not found")))
    }

    /// A short-lived direct download URL for a tarball, when storage hands them out.
    pub async fn tarball_redirect(&self, name: &PackageName, file: &str, who: &Identity) -> Result<Option<String>> {
        PackageName::check_filename(file)?;
        self.authorize(name, Action::Access, who)?;
        Ok(self.storage.blob_redirect(&tarball_key(name, file)?).await?)
    }
}
