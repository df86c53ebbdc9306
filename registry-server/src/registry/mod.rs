//! The registry's use cases over a [`Storage`], one room each: [`read`] (the cached read paths),
//! [`write`] (the one compare-and-swap loop), [`publish`], [`update`], [`unpublish`], [`tags`],
//! [`proxy`] (uplinks), [`search`], [`listing`] (local packages, newest first), [`audit`]; who
//! may do what is asked of `auth::access`.
//! Every packument change is read → pure change (in `package`) → compare-and-swap write, retried
//! on conflict, so concurrent writers (threads, processes, pods) never lose each other's work.

mod audit;
pub mod cache;
mod error;
mod package_summaries;
mod proxy;
mod publish;
mod read;
pub mod repair;
mod search;
pub mod search_index;
mod tags;
mod tarball_deletion;
mod trust;
mod unpublish;
mod update;
mod verdaccio_db;
mod write;

/// What the HTTP layer gets out of storage through the registry: tarball streams, and storage
/// failures (mapped to statuses in `http::error`).
pub use crate::storage::{Blob, StorageError};
pub use audit::{AuditAnswer, AuditRequest};
pub use cache::{Encoding, Kind, PackumentCache, Payload, Prepared};
pub use error::{RegistryError, Result};
pub use repair::RepairPolicy;

use crate::auth::Identity;
use crate::auth::access::{AccessRules, Action};
use crate::flight::Flights;
use crate::metrics::Metrics;
use crate::package::{PackageError, PackageName, deletion};
use crate::signing::Signer;
use crate::signing::uplinks::UplinkKeys;
use crate::storage::{Key, Revision, Storage, StorageKey};
use crate::uplink::Uplinks;
use serde_json::Value;
use std::sync::Arc;

const DEFAULT_SEARCH_REVALIDATION: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Registry {
    storage: Arc<dyn Storage>,
    rules: AccessRules,
    cache: PackumentCache,
    metrics: Arc<Metrics>,
    uplinks: Option<Arc<Uplinks>>,
    writes: write::Writes,
    /// Document builds in flight, by package, write generation and kind.
    builds: Flights<Result<Arc<cache::Document>>>,
    repair: RepairPolicy,
    search: Arc<search_index::SearchIndex>,
    listing: package_summaries::Listing,
    /// Signs hosted versions (`None`: signing is off).
    signer: Option<Arc<Signer>>,
    /// The uplinks' signing keys, served beside ours.
    uplink_keys: Option<Arc<UplinkKeys>>,
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

/// The document as readers see it: a tombstone (a package being unpublished) is no package.
fn visible(doc: Value) -> Option<Value> {
    (!deletion::is_tombstone(&doc)).then_some(doc)
}

fn not_found(name: &PackageName) -> RegistryError {
    RegistryError::NotFound(format!("package {name} not found"))
}

fn packument_key(name: &PackageName) -> Result<Key, StorageError> {
    StorageKey::Packument { package: name.as_str() }.key()
}

fn tarball_key(name: &PackageName, file: &str) -> Result<Key, StorageError> {
    StorageKey::Tarball {
        package: name.as_str(),
        file,
    }
    .key()
}

impl Registry {
    pub fn new(storage: Arc<dyn Storage>, rules: AccessRules, cache: PackumentCache, metrics: Arc<Metrics>) -> Self {
        Registry {
            rules,
            cache,
            metrics,
            uplinks: None,
            writes: write::Writes::new(),
            builds: Flights::default(),
            repair: RepairPolicy::default(),
            search: Arc::new(search_index::SearchIndex::new(
                storage.clone(),
                DEFAULT_SEARCH_REVALIDATION,
            )),
            storage,
            listing: package_summaries::Listing::default(),
            signer: None,
            uplink_keys: None,
        }
    }

    /// How often a search checks whether other replicas changed the index.
    pub fn with_search_revalidation(mut self, every: std::time::Duration) -> Self {
        self.search = Arc::new(search_index::SearchIndex::new(self.storage.clone(), every));
        self
    }

    /// How leftovers are found and repaired (`repair` in the config).
    pub fn with_repair(mut self, policy: RepairPolicy) -> Self {
        self.repair = policy;
        self
    }

    /// Lets packages whose rule names uplinks come from them (and serves the uplinks' keys).
    pub fn with_uplinks(mut self, uplinks: Arc<Uplinks>) -> Self {
        self.uplink_keys = Some(UplinkKeys::new(uplinks.clone(), self.storage.clone()));
        self.uplinks = Some(uplinks);
        self
    }

    /// Puts what the packument cache and upstream documents in flight hold into the metrics.
    pub fn report_memory(&self) {
        self.metrics.held("packument_cache", self.cache.weighted_size());
        if let Some(u) = &self.uplinks {
            self.metrics.held("upstream_in_flight", u.budget().in_use());
        }
    }

    /// Signs hosted versions with `signer`'s key.
    pub fn with_signer(mut self, signer: Option<Arc<Signer>>) -> Self {
        self.signer = signer;
        self
    }

    /// The signing keys' generation: a document signed in another one is built again.
    fn keys_generation(&self) -> u64 {
        self.signer.as_ref().map_or(0, |s| s.generation())
    }

    /// What signs local versions in a document build (on a CPU worker, hence owned).
    fn sign(&self) -> Option<impl Fn(&str, &str, &str) -> Value + Send + Sync + 'static> {
        let signer = self.signer.clone()?;
        // Keys not read yet: unsigned for now, built again once they are (a new generation).
        signer.keyring()?;
        Some(move |name: &str, version: &str, integrity: &str| signer.signatures(name, version, integrity))
    }

    /// Whether storage can be used right now (readiness).
    pub async fn check_storage(&self) -> Result<()> {
        Ok(self.storage.check().await?)
    }

    /// Refuses `action` on `name` for `who` (see `auth::access` for who may do what).
    pub fn authorize(&self, name: &PackageName, action: Action, who: &Identity) -> Result<()> {
        Ok(self.rules.check(name.as_str(), action, who)?)
    }

    /// Refuses a change before its body is read (see `AccessRules::check_change`).
    pub fn authorize_change(&self, name: &PackageName, who: &Identity) -> Result<()> {
        Ok(self.rules.check_change(name.as_str(), who)?)
    }

    /// The stored packument, `None` when there is none (or it is a tombstone).
    pub async fn read_doc(&self, name: &PackageName) -> Result<Option<Doc>> {
        let Some(v) = self.storage.read(&packument_key(name)?).await? else {
            return Ok(None);
        };
        Ok(visible(parse_doc(name, &v.bytes)?).map(|value| Doc {
            value,
            revision: v.revision,
        }))
    }
}

#[cfg(test)]
mod tests;
