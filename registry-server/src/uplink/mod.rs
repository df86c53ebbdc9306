//! Pull-through caching of upstream registries. Upstream packuments are kept apart from local data
//! (under keys of their own in the storage backend, so they survive restarts and are shared by
//! replicas), as the bytes upstream sent ([`record`]); they are served without asking upstream
//! within `maxage`, then revalidated with `If-None-Match` (a 304 counts as fresh). An answer is
//! used and stored only when it is the packument asked for ([`Source::validate`]); when upstream
//! fails in any way, stored data is served. Concurrent requests for one tarball make a single
//! upstream request; large tarballs are downloaded to a spool file at upstream speed and read
//! from there by every client ([`spool`]).

mod client;
mod health;
mod packument;
mod packument_budget;
mod record;
mod spool;
mod tarball;

pub use client::{AuditAnswer, AuditRequest, FetchError, UplinkClient};
pub use packument::{Refresh, Upstream, UpstreamCopy};
pub use packument_budget::{Budget, Room};

use crate::config::Uplink;
use crate::metrics::Metrics;
use crate::package::PackageError;
use crate::package::packument::IndexError;
use crate::storage::{Key, Storage, StorageError, StorageKey};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("uplink {uplink} sent an answer for {name} that is not its packument: {reason}")]
    BadDocument {
        uplink: String,
        name: String,
        reason: IndexError,
    },
    #[error("tarball {file} from uplink {uplink} was refused: {source}")]
    Integrity {
        uplink: String,
        file: String,
        source: Box<PackageError>,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How much of the budget for upstream documents in flight one uplink's largest packument may
/// take: room for one at the limit and several ordinary ones beside it.
const IN_FLIGHT_PER_LARGEST: f64 = 1.5;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn doc_key(name: &str) -> Result<Key, StorageError> {
    StorageKey::UplinkPackument { package: name }.key()
}

fn tarball_key(name: &str, file: &str) -> Result<Key, StorageError> {
    StorageKey::UplinkTarball { package: name, file }.key()
}

/// `@scope%2fname`, the spelling every registry accepts.
fn escaped(name: &str) -> String {
    name.replace('/', "%2f")
}

pub struct Uplinks {
    clients: BTreeMap<String, Arc<UplinkClient>>,
    storage: Arc<dyn Storage>,
    budget: Budget,
    /// Upstream packument requests in flight, by package: one per package however many ask.
    refreshes: crate::flight::Flights<Refresh>,
    /// Large tarball downloads in flight, by storage key.
    spools: Arc<Mutex<HashMap<String, Arc<spool::Spool>>>>,
    /// Small tarball downloads in flight, by storage key.
    fetches: crate::flight::Flights<Result<Option<tarball::Fetched>, UplinkError>>,
}

impl Uplinks {
    pub fn new(
        config: &BTreeMap<String, Uplink>,
        storage: Arc<dyn Storage>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let mut clients = BTreeMap::new();
        for (name, uplink) in config {
            clients.insert(
                name.clone(),
                Arc::new(UplinkClient::new(name, uplink.clone(), metrics.clone())?),
            );
        }
        let largest = config.values().map(|u| u.max_packument_size).max().unwrap_or(0);
        Ok(Uplinks {
            clients,
            storage,
            budget: Budget::new(Self::in_flight_budget(largest)),
            refreshes: Default::default(),
            spools: Arc::new(Mutex::new(HashMap::new())),
            fetches: Default::default(),
        })
    }

    /// The memory upstream documents in flight may take, for uplinks whose largest
    /// `max_packument_size` is `largest`.
    pub fn in_flight_budget(largest: u64) -> u64 {
        (largest as f64 * IN_FLIGHT_PER_LARGEST) as u64
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The uplink called `uplink`.
    pub fn client(&self, uplink: &str) -> Option<&Arc<UplinkClient>> {
        self.clients.get(uplink)
    }

    /// The configured uplinks, by name.
    pub fn clients(&self) -> impl Iterator<Item = &Arc<UplinkClient>> {
        self.clients.values()
    }

    /// How long an upstream copy is served without asking upstream again.
    pub fn maxage(&self, proxies: &[String]) -> Duration {
        proxies
            .iter()
            .filter_map(|p| self.clients.get(p))
            .map(|c| c.config.maxage)
            .min()
            .unwrap_or_default()
    }

    /// Passes an audit request to the first uplink that answers it.
    pub async fn audit(&self, request: &AuditRequest<'_>) -> Result<Option<AuditAnswer>, FetchError> {
        let mut last = None;
        for client in self.clients.values() {
            match client.audit(request).await {
                Ok(r) if (200..300).contains(&r.status) => return Ok(Some(r)),
                Ok(r) => last = Some(Ok(r)),
                Err(e) => last = Some(Err(e)),
            }
        }
        last.transpose()
    }
}
