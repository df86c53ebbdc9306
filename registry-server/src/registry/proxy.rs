//! Packages that come from uplinks: the upstream packument, filtered by the package's rule and
//! laid under local data, revalidated after the uplink's `maxage` (stored data serves whenever
//! upstream fails in any way), and upstream tarballs (only of versions the rule lets through, at
//! the URL and integrity of the upstream packument, never the client's).

use super::cache::{Document, Kind};
use super::read::{Cached, build_failed, flight, local_source};
use super::{Registry, Result, not_found, packument_key};
use crate::package::PackageName;
use crate::package::packument::{Inputs, Packument, Sign, Source};
use crate::storage::{Blob, Revision};
use crate::uplink::{Refresh, Room, Upstream, UpstreamCopy};
use chrono::Utc;
use std::sync::Arc;

/// An upstream copy to build from, with its bytes when they are at hand.
struct Candidate {
    copy: Arc<UpstreamCopy>,
    source: Option<Arc<Source>>,
    room: Option<Arc<Room>>,
}

impl From<Upstream> for Candidate {
    fn from(u: Upstream) -> Self {
        Candidate {
            copy: u.copy,
            source: Some(u.source),
            room: u.room,
        }
    }
}

impl Registry {
    /// Whether the package's rule names uplinks.
    pub(super) fn proxied(&self, name: &PackageName) -> bool {
        self.uplinks.is_some() && !self.rules.proxies(name.as_str()).is_empty()
    }

    /// The minute a quarantine's view is made for (it depends on the clock); `0` without one.
    fn minute(&self, name: &PackageName) -> i64 {
        if self.rules.filter(name.as_str()).is_empty() {
            0
        } else {
            Utc::now().timestamp() / 60
        }
    }

    /// The document of a package whose rule proxies: cached while the local revision is
    /// unchanged and the upstream copy fresh within `maxage`.
    pub(super) async fn proxied_document(&self, name: &PackageName, kind: Kind) -> Result<Arc<Document>> {
        let uplinks = self.uplinks.as_ref().expect("proxied packages have uplinks");
        let proxies = self.rules.proxies(name.as_str());
        let maxage = uplinks.maxage(proxies);
        let minute = self.minute(name);
        let usable = |d: &Document| d.minute == minute && d.upstream_is_fresh(maxage, proxies);
        match self.cached(name, kind, usable).await? {
            Cached::Current(d) => return Ok(d),
            // The local data went away: a document of the upstream's alone is built.
            Cached::Gone => self.metrics.cache(false),
            Cached::Stale => {}
        }
        let generation = self.cache.generation();
        self.builds
            .run(&flight(name, generation, kind), || {
                self.build_proxied(name, kind, generation, minute)
            })
            .await
    }

    async fn build_proxied(
        &self,
        name: &PackageName,
        kind: Kind,
        generation: u64,
        minute: i64,
    ) -> Result<Arc<Document>> {
        let cached = self.cache.get(name.as_str());
        let key = packument_key(name)?;
        let keys = self.keys_generation();
        let (cached_local, cached_upstream) = cached.as_ref().map_or((None, None), |d| d.packument.sources());
        // Local data, read again only when it changed.
        let local: Option<(Revision, Option<Arc<Source>>)> = match self.storage.revision(&key).await? {
            None => None,
            Some(r) if cached.as_ref().is_some_and(|d| d.local.as_ref() == Some(&r)) => {
                Some((r, cached_local.cloned()))
            }
            Some(r) => Some((r, None)),
        };
        let current = cached.as_ref().and_then(|d| {
            Some(Candidate {
                copy: d.upstream.clone()?,
                source: cached_upstream.cloned(),
                room: None,
            })
        });
        let upstream = self.upstream_copy(name, current, local.is_some()).await?;
        if local.is_none() && upstream.is_none() {
            return Err(not_found(name));
        }
        // Nothing changed: the cached document stands.
        if let Some(d) = &cached
            && d.has(kind)
            && d.minute == minute
            && d.keys == keys
            && d.local == local.as_ref().map(|(r, _)| r.clone())
            && match (&d.upstream, &upstream) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, &b.copy),
                (None, None) => true,
                _ => false,
            }
        {
            d.upstream_checked_now();
            self.cache.confirmed(d);
            return Ok(d.clone());
        }
        let local = match local {
            None => None,
            Some((r, Some(s))) => Some((r, s)),
            Some(_) => match self.storage.read(&key).await? {
                Some(v) => {
                    let n = name.clone();
                    let source = crate::cpu_pool::cpu(move || local_source(&n, v.bytes))
                        .await
                        .map_err(build_failed)??;
                    source.map(|s| (v.revision, s))
                }
                None => None,
            },
        };
        let upstream = match upstream {
            Some(Candidate {
                copy,
                source: Some(source),
                room,
            }) => Some(Upstream { copy, source, room }),
            Some(c) => self.upstream_bytes(name, c.copy).await,
            None => None,
        };
        let room = upstream.as_ref().and_then(|u| u.room.clone());
        // A copy not built from before may be signed with keys the uplink did not list yet.
        let new_copy = upstream.as_ref().is_some_and(|u| {
            cached
                .as_ref()
                .and_then(|d| d.upstream.as_ref())
                .is_none_or(|c| !Arc::ptr_eq(c, &u.copy))
        });
        let (n, filter, full) = (
            name.clone(),
            self.rules.filter(name.as_str()).clone(),
            kind == Kind::Full,
        );
        let (l, u) = (
            local.as_ref().map(|(_, s)| s.clone()),
            upstream.as_ref().map(|u| u.source.clone()),
        );
        let sign = self.sign();
        let looks_for_keys = new_copy && self.uplink_keys.is_some();
        let (packument, keyids) = crate::cpu_pool::cpu(move || {
            let keyids = u.as_ref().filter(|_| looks_for_keys).map(|u| u.signature_keyids());
            let inputs = Inputs {
                name: &n,
                local: l,
                upstream: u,
                filter: &filter,
                now: Utc::now(),
                sign: sign.as_ref().map(|f| f as &Sign),
            };
            (Packument::build(inputs, full), keyids)
        })
        .await
        .map_err(build_failed)?;
        let packument = packument.ok_or_else(|| not_found(name))?;
        if let (Some(keys), Some(ids), Some(u)) = (&self.uplink_keys, keyids, &upstream) {
            // Before the document is served, so a version signed by a rotated key verifies.
            keys.saw_keyids(&u.copy.uplink, &ids).await;
        }
        let doc = Arc::new(Document::new(
            packument,
            local.map(|(r, _)| r),
            upstream.map(|u| u.copy),
            minute,
            keys,
        ));
        self.cache.insert(&doc, generation);
        // The cache counts the upstream bytes now, if it kept them.
        if let Some(room) = room
            && doc.packument.full.is_some()
            && self.cache.holds(&doc)
        {
            room.release();
        }
        Ok(doc)
    }

    /// The upstream copy to build from: the current one while fresh, else what upstream says
    /// now; whatever upstream's fault, the stored copy serves (or local data alone).
    async fn upstream_copy(
        &self,
        name: &PackageName,
        current: Option<Candidate>,
        have_local: bool,
    ) -> Result<Option<Candidate>> {
        let uplinks = self.uplinks.as_ref().expect("proxied packages have uplinks");
        let proxies = self.rules.proxies(name.as_str());
        let current = match current {
            Some(c) => Some(c),
            None => uplinks.stored(name).await.map(Candidate::from),
        };
        if let Some(c) = &current
            && c.copy.is_fresh(uplinks.maxage(proxies), proxies)
        {
            return Ok(current);
        }
        let asked = uplinks
            .refresh(name, proxies, current.as_ref().map(|c| (&c.copy, c.source.as_ref())))
            .await;
        Ok(match asked {
            Refresh::Unchanged => match current {
                Some(c) => Some(c),
                // Another request's copy was confirmed: it is the stored one.
                None => uplinks.stored(name).await.map(Candidate::from),
            },
            Refresh::Fresh(u) => Some(u.into()),
            Refresh::NotFound => None,
            Refresh::Failed(e) => match current {
                Some(c) => {
                    tracing::warn!(package = %name, error = %e, "serving the stored upstream copy");
                    Some(c)
                }
                None if have_local => {
                    tracing::warn!(package = %name, error = %e, "serving local versions only");
                    None
                }
                None => return Err(e.into()),
            },
        })
    }

    /// The bytes of an upstream copy the cached document did not keep (it was built for
    /// installs only): the stored copy, else a new download.
    async fn upstream_bytes(&self, name: &PackageName, copy: Arc<UpstreamCopy>) -> Option<Upstream> {
        let uplinks = self.uplinks.as_ref().expect("proxied packages have uplinks");
        if let Some(stored) = uplinks.stored(name).await {
            let copy = if stored.copy.stamp() == copy.stamp() {
                copy
            } else {
                stored.copy
            };
            return Some(Upstream {
                copy,
                source: stored.source,
                room: None,
            });
        }
        match uplinks.refresh(name, self.rules.proxies(name.as_str()), None).await {
            Refresh::Fresh(u) => Some(u),
            _ => None,
        }
    }

    /// A tarball from the package's uplinks (kept by their cache, or fetched); `None` when no
    /// uplink has it or the rule hides its version. Any copy of the packument will do to find
    /// it (tarballs never change): upstream is asked again only for a file that copy lacks.
    pub(super) async fn upstream_tarball(&self, name: &PackageName, file: &str) -> Result<Option<Blob>> {
        if !self.proxied(name) {
            return Ok(None);
        }
        let uplinks = self.uplinks.as_ref().expect("proxied packages have uplinks");
        let known = match self.cache.get(name.as_str()) {
            Some(d) => d,
            None => self.document(name, Kind::Abbreviated).await?,
        };
        let (doc, tarball) = match known.packument.upstream_tarball(file) {
            Some(t) => (known, t),
            None => {
                let current = self.document(name, Kind::Abbreviated).await?;
                if Arc::ptr_eq(&current, &known) {
                    return Ok(None);
                }
                match current.packument.upstream_tarball(file) {
                    Some(t) => (current, t),
                    None => return Ok(None),
                }
            }
        };
        let Some(copy) = &doc.upstream else {
            return Ok(None);
        };
        if let Some(blob) = uplinks.cached_tarball(name, file).await? {
            return Ok(Some(blob));
        }
        Ok(uplinks.tarball(name, file, &copy.uplink, &tarball).await?)
    }
}
