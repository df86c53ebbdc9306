//! Pull-through caching of upstream registries. Upstream packuments are kept apart from local data
//! (under keys of their own in the storage backend, so they survive restarts and are shared by
//! replicas), served without asking upstream within `maxage`, then revalidated with
//! `If-None-Match` (a 304 counts as fresh). Concurrent requests for one package or tarball make a
//! single upstream request. When upstream fails, stored data is served.

mod client;
mod health;
mod relay;

pub use client::{AuditAnswer, AuditRequest, FetchError, UplinkClient};

use crate::config::Uplink;
use crate::metrics::Metrics;
use crate::package::{PackageError, PackageName, integrity};
use crate::storage::{Blob, Key, Revision, Storage, StorageError, StorageKey};
use bytes::Bytes;
use client::Packument;
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("uplink {uplink} sent a packument for {name} that is not valid JSON: {reason}")]
    BadDocument {
        uplink: String,
        name: String,
        reason: String,
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

/// An upstream packument as stored: which uplink, its ETag, when it was fetched.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    uplink: String,
    etag: Option<String>,
    /// Milliseconds since the epoch.
    fetched: i64,
    doc: Value,
}

#[derive(Debug)]
pub struct UpstreamDoc {
    pub uplink: String,
    pub etag: Option<String>,
    pub fetched: i64,
    pub doc: Value,
    size: usize,
    revision: Option<Revision>,
}

impl UpstreamDoc {
    /// Changes whenever the upstream data or its freshness does.
    pub fn stamp(&self) -> String {
        format!(
            "{}:{}:{}",
            self.uplink,
            self.etag.as_deref().unwrap_or("-"),
            self.fetched
        )
    }
}

/// What a tarball fetch produced.
pub enum Fetched {
    /// Another request stored it meanwhile: read it from storage.
    Stored,
    /// A small file, downloaded and verified whole.
    Bytes(Bytes),
    /// A large file, passed on while it downloads (see `relay`).
    Streaming(Blob),
}

/// Tarballs larger than this are passed on while they download; smaller ones arrive in about a
/// round trip anyway, and are checked whole first so that a mismatch still answers a clear 502.
const STREAM_ABOVE: u64 = 1024 * 1024;

/// Checks an upstream tarball against the integrity its packument declares.
fn verify(uplink: &str, file: &str, bytes: &[u8], sri: Option<&str>, shasum: Option<&str>) -> Result<(), UplinkError> {
    integrity::verify(file, bytes, sri, shasum).map_err(|e| UplinkError::Integrity {
        uplink: uplink.to_owned(),
        file: file.to_owned(),
        source: Box::new(e),
    })
}

/// Stores a verified upstream tarball; a failure only costs a later download.
async fn keep(storage: &dyn Storage, key: &Key, bytes: Bytes, package: &str, file: &str) {
    match storage.put_blob(key, bytes).await {
        Ok(()) | Err(StorageError::AlreadyExists(_)) => {}
        Err(e) => tracing::warn!(package, file, error = %e, "tarball not cached"),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn doc_key(name: &PackageName) -> Result<Key, StorageError> {
    StorageKey::UplinkPackument { package: name.as_str() }.key()
}

fn tarball_key(name: &PackageName, file: &str) -> Result<Key, StorageError> {
    StorageKey::UplinkTarball {
        package: name.as_str(),
        file,
    }
    .key()
}

/// `@scope%2fname`, the spelling every registry accepts.
fn escaped(name: &PackageName) -> String {
    name.as_str().replace('/', "%2f")
}

pub struct Uplinks {
    clients: BTreeMap<String, Arc<UplinkClient>>,
    storage: Arc<dyn Storage>,
    docs: Cache<String, Arc<UpstreamDoc>>,
    /// One async lock per package or tarball: the single flight of upstream requests.
    flights: Cache<String, Arc<Mutex<()>>>,
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
        Ok(Uplinks {
            clients,
            storage,
            docs: Cache::builder()
                .max_capacity(256 * 1024 * 1024)
                .weigher(|_, d: &Arc<UpstreamDoc>| d.size.try_into().unwrap_or(u32::MAX))
                .build(),
            flights: Cache::builder().time_to_idle(Duration::from_secs(300)).build(),
        })
    }

    /// The uplink called `name`.
    pub fn client(&self, name: &str) -> Option<&Arc<UplinkClient>> {
        self.clients.get(name)
    }

    /// The configured uplinks, by name.
    pub fn clients(&self) -> impl Iterator<Item = &Arc<UplinkClient>> {
        self.clients.values()
    }

    fn flight(&self, key: &str) -> Arc<Mutex<()>> {
        self.flights.get_with(key.to_owned(), || Arc::new(Mutex::new(())))
    }

    fn maxage(&self, proxies: &[String]) -> Duration {
        proxies
            .iter()
            .filter_map(|p| self.clients.get(p))
            .map(|c| c.config.maxage)
            .min()
            .unwrap_or_default()
    }

    async fn load(&self, name: &PackageName) -> Result<Option<Arc<UpstreamDoc>>, StorageError> {
        let Some(v) = self.storage.read(&doc_key(name)?).await? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<Record>(&v.bytes) else {
            tracing::warn!(package = %name, "ignoring an unreadable uplink cache entry");
            return Ok(None);
        };
        Ok(Some(Arc::new(UpstreamDoc {
            uplink: record.uplink,
            etag: record.etag,
            fetched: record.fetched,
            doc: record.doc,
            size: v.bytes.len(),
            revision: Some(v.revision),
        })))
    }

    async fn save(&self, name: &PackageName, doc: UpstreamDoc, previous: Option<&Revision>) -> Arc<UpstreamDoc> {
        let record = Record {
            uplink: doc.uplink.clone(),
            etag: doc.etag.clone(),
            fetched: doc.fetched,
            doc: doc.doc.clone(),
        };
        let bytes = Bytes::from(serde_json::to_vec(&record).expect("JSON serializes"));
        let size = bytes.len();
        let revision = match doc_key(name) {
            Ok(key) => match self.storage.write(&key, bytes, previous).await {
                Ok(r) => Some(r),
                // Another replica refreshed it meanwhile, or storage is down: the copy in memory
                // still serves.
                Err(e) => {
                    tracing::debug!(package = %name, error = %e, "uplink cache entry not stored");
                    None
                }
            },
            Err(_) => None,
        };
        let doc = Arc::new(UpstreamDoc { size, revision, ..doc });
        self.docs.insert(name.to_string(), doc.clone());
        doc
    }

    /// The package's upstream packument from the first of `proxies` that has it, fresh within
    /// `maxage`, or stale when every uplink fails. `None` when no uplink knows the package.
    pub async fn packument(
        &self,
        name: &PackageName,
        proxies: &[String],
    ) -> Result<Option<Arc<UpstreamDoc>>, UplinkError> {
        let maxage = self.maxage(proxies).as_millis() as i64;
        let fresh = |d: &UpstreamDoc| now_ms() - d.fetched < maxage && proxies.contains(&d.uplink);
        if let Some(d) = self.docs.get(name.as_str()).filter(|d| fresh(d)) {
            return Ok(Some(d));
        }
        let flight = self.flight(name.as_str());
        let _single = flight.lock().await;
        let current = match self.docs.get(name.as_str()) {
            Some(d) => Some(d),
            None => self.load(name).await.unwrap_or(None),
        };
        if let Some(d) = current.as_ref().filter(|d| fresh(d)) {
            self.docs.insert(name.to_string(), d.clone());
            return Ok(Some(d.clone()));
        }
        let mut failure = None;
        for uplink in proxies {
            let Some(client) = self.clients.get(uplink) else {
                continue;
            };
            let etag = current
                .as_ref()
                .filter(|d| d.uplink == *uplink)
                .and_then(|d| d.etag.clone());
            match client.packument(&escaped(name), etag.as_deref()).await {
                Ok(Packument::NotModified) => {
                    let d = current.as_ref().expect("a 304 answers our own ETag");
                    let refreshed = UpstreamDoc {
                        uplink: d.uplink.clone(),
                        etag: d.etag.clone(),
                        fetched: now_ms(),
                        doc: d.doc.clone(),
                        size: d.size,
                        revision: None,
                    };
                    return Ok(Some(self.save(name, refreshed, d.revision.as_ref()).await));
                }
                Ok(Packument::Fresh { body, etag }) => {
                    let doc: Value = serde_json::from_slice(&body).map_err(|e| UplinkError::BadDocument {
                        uplink: uplink.clone(),
                        name: name.to_string(),
                        reason: e.to_string(),
                    })?;
                    let new = UpstreamDoc {
                        uplink: uplink.clone(),
                        etag,
                        fetched: now_ms(),
                        doc,
                        size: body.len(),
                        revision: None,
                    };
                    let previous = current.as_ref().and_then(|d| d.revision.clone());
                    return Ok(Some(self.save(name, new, previous.as_ref()).await));
                }
                Ok(Packument::NotFound) => continue,
                Err(e) => {
                    tracing::warn!(package = %name, error = %e, "uplink request failed");
                    failure = Some(e);
                }
            }
        }
        match (current, failure) {
            // Stale is better than broken.
            (Some(d), Some(_)) => Ok(Some(d)),
            (_, Some(e)) => Err(e.into()),
            (_, None) => Ok(None),
        }
    }

    /// An upstream tarball this cache has already stored.
    pub async fn cached_tarball(&self, name: &PackageName, file: &str) -> Result<Option<Blob>, StorageError> {
        self.storage.get_blob(&tarball_key(name, file)?).await
    }

    /// Fetches a tarball from `uplink`, checks it against the integrity its packument declares,
    /// and stores it (when the uplink caches). One fetch per file however many ask at once: the
    /// others wait, then read it from storage.
    pub async fn tarball(
        &self,
        name: &PackageName,
        file: &str,
        uplink: &str,
        url: &str,
        sri: Option<&str>,
        shasum: Option<&str>,
    ) -> Result<Option<Fetched>, UplinkError> {
        let key = tarball_key(name, file)?;
        let single = self.flight(key.as_str()).lock_owned().await;
        if self.storage.revision(&key).await?.is_some() {
            return Ok(Some(Fetched::Stored));
        }
        let Some(client) = self.clients.get(uplink).cloned() else {
            return Ok(None);
        };
        let Some(res) = client.tarball(url).await? else {
            return Ok(None);
        };
        let cache = client.config.cache.then(|| (self.storage.clone(), key));
        if let Some(len) = res.content_length().filter(|&n| n > STREAM_ABOVE) {
            let download = relay::Download {
                client,
                package: name.to_string(),
                file: file.to_owned(),
                sri: sri.map(str::to_owned),
                shasum: shasum.map(str::to_owned),
                cache,
            };
            return Ok(Some(Fetched::Streaming(relay::start(download, res, len, single))));
        }
        let bytes = res.bytes().await.map_err(|e| client.body_failed(e))?;
        client.body_done();
        verify(uplink, file, &bytes, sri, shasum)?;
        if let Some((storage, key)) = &cache {
            keep(storage.as_ref(), key, bytes.clone(), name.as_str(), file).await;
        }
        Ok(Some(Fetched::Bytes(bytes)))
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
