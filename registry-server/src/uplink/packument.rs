//! Upstream packuments: the copy in storage, and asking upstream for a newer one. An answer is
//! used only once indexed and found to be the packument asked for; it is stored off the request
//! path, as received.

use super::client::Packument;
use super::{UplinkError, Uplinks, doc_key, escaped, now_ms, packument_budget::Room, record};
use crate::package::PackageName;
use crate::package::packument::{IndexError, Source};
use crate::storage::{Revision, document};
use bytes::Bytes;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What is known of one upstream copy of a packument.
#[derive(Debug)]
pub struct UpstreamCopy {
    pub uplink: String,
    pub etag: Option<String>,
    /// When this content arrived (milliseconds since the epoch).
    pub fetched: i64,
    /// When upstream last confirmed it (a 304, or the same bytes again).
    checked: AtomicI64,
    /// The stored record's revision, once stored: what the next store replaces.
    revision: Mutex<Option<Revision>>,
}

impl UpstreamCopy {
    fn new(h: &record::Header, revision: Option<Revision>) -> Self {
        UpstreamCopy {
            uplink: h.uplink.clone(),
            etag: h.etag.clone(),
            fetched: h.fetched,
            checked: AtomicI64::new(h.fetched),
            revision: Mutex::new(revision),
        }
    }

    /// Changes whenever the content may have.
    pub fn stamp(&self) -> String {
        format!(
            "{}:{}:{}",
            self.uplink,
            self.etag.as_deref().unwrap_or("-"),
            self.fetched
        )
    }

    /// Served without asking upstream while this holds.
    pub fn is_fresh(&self, maxage: Duration, proxies: &[String]) -> bool {
        now_ms() - self.checked.load(Ordering::Relaxed) < maxage.as_millis() as i64 && proxies.contains(&self.uplink)
    }

    fn confirm(&self) {
        self.checked.store(now_ms(), Ordering::Relaxed);
    }

    fn revision(&self) -> Option<Revision> {
        self.revision.lock().expect("not poisoned").clone()
    }
}

/// An upstream packument: what is known of it, and its bytes indexed.
#[derive(Clone)]
pub struct Upstream {
    pub copy: Arc<UpstreamCopy>,
    pub source: Arc<Source>,
    /// The memory its bytes hold in the budget for documents in flight, until the packument
    /// cache takes them over.
    pub room: Option<Arc<Room>>,
}

/// What asking upstream gave.
#[derive(Clone)]
pub enum Refresh {
    /// The copy asked about is still upstream's.
    Unchanged,
    Fresh(Upstream),
    /// No uplink has the package.
    NotFound,
    Failed(UplinkError),
}

/// Indexes `body` and checks that it is the packument of `name`. CPU work, off the workers.
async fn index(name: &PackageName, body: Bytes) -> Result<Arc<Source>, IndexError> {
    let n = name.to_string();
    crate::cpu_pool::cpu(move || {
        let s = Source::parse(body)?;
        s.validate(&n)?;
        Ok(Arc::new(s))
    })
    .await
    .map_err(IndexError::Json)?
}

impl Uplinks {
    /// The stored copy, whatever its age; `None` when there is none or it is not a valid
    /// packument of `name` (it is then replaced by the next good answer).
    pub async fn stored(&self, name: &PackageName) -> Option<Upstream> {
        let key = doc_key(name.as_str()).ok()?;
        let stored = match self.storage.read(&key).await {
            Ok(v) => v?,
            Err(e) => {
                tracing::warn!(package = %name, error = %e, "stored upstream copy unreadable");
                return None;
            }
        };
        let Some((header, body)) = record::read(&stored.bytes) else {
            tracing::warn!(package = %name, "ignoring an unreadable uplink cache entry");
            return None;
        };
        match index(name, body).await {
            Ok(source) => Some(Upstream {
                copy: Arc::new(UpstreamCopy::new(&header, Some(stored.revision))),
                source,
                room: None,
            }),
            Err(e) => {
                tracing::warn!(package = %name, error = %e, "ignoring a stored upstream copy that is not a packument");
                None
            }
        }
    }

    /// Asks the first of `proxies` that has the package for a newer copy than `current`
    /// (conditionally, when it has an ETag); one request per package however many ask.
    pub async fn refresh(
        &self,
        name: &PackageName,
        proxies: &[String],
        current: Option<(&Arc<UpstreamCopy>, Option<&Arc<Source>>)>,
    ) -> Refresh {
        self.refreshes
            .run(name.as_str(), || self.ask(name, proxies, current))
            .await
    }

    async fn ask(
        &self,
        name: &PackageName,
        proxies: &[String],
        current: Option<(&Arc<UpstreamCopy>, Option<&Arc<Source>>)>,
    ) -> Refresh {
        let mut failure = None;
        for uplink in proxies {
            let Some(client) = self.client(uplink) else {
                continue;
            };
            let ours = current.filter(|(c, _)| c.uplink == *uplink);
            let etag = ours.and_then(|(c, _)| c.etag.as_deref());
            match client.packument(&escaped(name.as_str()), etag, &self.budget).await {
                Ok(Packument::NotModified) => {
                    if let Some((c, _)) = ours {
                        c.confirm();
                        return Refresh::Unchanged;
                    }
                }
                Ok(Packument::Fresh {
                    record,
                    body_at,
                    header,
                    room,
                }) => {
                    let body = record.slice(body_at..);
                    if let Some((c, Some(s))) = ours
                        && s.bytes() == &body
                    {
                        c.confirm();
                        return Refresh::Unchanged;
                    }
                    match index(name, body).await {
                        Ok(source) => {
                            let copy = Arc::new(UpstreamCopy::new(&header, None));
                            let previous = current.and_then(|(c, _)| c.revision());
                            self.store_later(name, record, copy.clone(), previous);
                            return Refresh::Fresh(Upstream {
                                copy,
                                source,
                                room: Some(room),
                            });
                        }
                        Err(reason) => {
                            client.health.failed("sent an answer that is not a packument");
                            let e = UplinkError::BadDocument {
                                uplink: uplink.clone(),
                                name: name.to_string(),
                                reason,
                            };
                            tracing::warn!(package = %name, error = %e, "uplink answer refused");
                            failure = Some(e);
                        }
                    }
                }
                Ok(Packument::NotFound) => {}
                Err(e) => {
                    tracing::warn!(package = %name, error = %e, "uplink request failed");
                    failure = Some(e.into());
                }
            }
        }
        match failure {
            Some(e) => Refresh::Failed(e),
            None => Refresh::NotFound,
        }
    }

    /// Stores a fresh record (header and body, as received) in the background; a failure costs
    /// only a later download.
    fn store_later(&self, name: &PackageName, record: Bytes, copy: Arc<UpstreamCopy>, previous: Option<Revision>) {
        let Ok(key) = doc_key(name.as_str()) else {
            return;
        };
        let storage = self.storage.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            match document::replace_at(storage.as_ref(), &key, record, previous.as_ref()).await {
                Ok(Some(r)) => *copy.revision.lock().expect("not poisoned") = Some(r),
                // Another replica stored a copy meanwhile, or storage is down: the copy in
                // memory still serves.
                Ok(None) => tracing::debug!(package = %name, "uplink cache entry stored by another replica"),
                Err(e) => tracing::debug!(package = %name, error = %e, "uplink cache entry not stored"),
            }
        });
    }
}

/// The header a fresh answer is stored with.
pub(super) fn header(uplink: &str, etag: Option<String>) -> record::Header {
    record::Header {
        uplink: uplink.to_owned(),
        etag,
        fetched: now_ms(),
    }
}
