//! The read paths: the packument's prepared bytes from memory when storage confirms they are
//! current (the hot path of every install), the merged and stored documents, and tarballs.

use super::cache::Prepared;
use super::{Registry, RegistryError, Result, not_found, packument_key, parse_doc, tarball_key, visible};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::PackageName;
use crate::storage::{Blob, Revision, StorageError};
use chrono::Utc;
use serde_json::Value;
use std::sync::Arc;

impl Registry {
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

    /// The packument's ready-to-send representations for `base`, from memory when storage confirms
    /// they are current. The hot path of every install.
    pub async fn prepared(&self, name: &PackageName, who: &Identity, base: &str) -> Result<Arc<Prepared>> {
        self.authorize(name, Action::Access, who)?;
        if self.uplinks.is_some() && !self.rules.proxies(name.as_str()).is_empty() {
            return self.prepared_proxied(name, base).await;
        }
        let key = packument_key(name)?;
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
            let doc = visible(parse_doc(&n, &stored.bytes)?).ok_or_else(|| not_found(&n))?;
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
        let local_revision = self.storage.revision(&packument_key(name)?).await?;
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
