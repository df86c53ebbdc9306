//! Packuments held in memory, ready to send: one [`Document`] per package (its views cut from
//! the stored bytes, independent of the host name), rendered per base URL, compressed once per
//! encoding clients ask for. Every byte an entry holds counts against `packument_cache.max_size`
//! (an entry is weighed again when a rendering or a compression is added). A document larger
//! than the whole cache is not kept, but while responses still send it, later requests share
//! that one copy.
//!
//! Writes through this process invalidate an entry at once; changes made by other processes
//! (replicas) are noticed by a cheap revision check (a stat, a HEAD) made at most once per
//! `revalidate_after`.

mod document;
mod encode;
mod payload;

pub use document::{Document, Kind, RENDER_MAX, Rendered, Variant};
pub use encode::Encoding;
pub use payload::{Payload, Rope};

use chrono::{DateTime, Utc};
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::sync::Cache;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A large document is compressed once this many requests asked for the encoding (the first
/// client of a cold package gets it at once, uncompressed; a popular one gets it compressed).
const ASKS_BEFORE_COMPRESSING_LARGE: u32 = 2;

struct Shared {
    entries: Cache<String, Arc<Document>>,
    /// Documents out of the cache (too large for it, or evicted) that responses still send.
    live: Mutex<HashMap<String, Weak<Document>>>,
    /// One compression at a time: it is background work, and bounded.
    compress: Semaphore,
}

impl Shared {
    fn keep_live(&self, name: &str, doc: &Arc<Document>) {
        let mut live = self.live.lock().expect("not poisoned");
        live.retain(|_, w| w.strong_count() > 0);
        live.insert(name.to_owned(), Arc::downgrade(doc));
    }

    /// Counts what `doc` holds now, if it is still the cached entry.
    fn reweigh(&self, doc: &Arc<Document>) {
        self.entries
            .entry(doc.packument.name().to_string())
            .and_compute_with(|current| match current {
                Some(e) if Arc::ptr_eq(e.value(), doc) => Op::Put(doc.clone()),
                _ => Op::Nop,
            });
    }
}

pub struct PackumentCache {
    shared: Arc<Shared>,
    max_bytes: u64,
    revalidate_after: Duration,
    epoch: Instant,
    /// Bumped by every write, so a read that raced with a write does not cache what it read.
    writes: AtomicU64,
}

impl PackumentCache {
    pub fn new(max_bytes: u64, revalidate_after: Duration) -> Self {
        let shared = Arc::new_cyclic(|me: &Weak<Shared>| {
            let me = me.clone();
            Shared {
                entries: Cache::builder()
                    .max_capacity(max_bytes)
                    .weigher(|_, d: &Arc<Document>| d.weight().try_into().unwrap_or(u32::MAX))
                    .eviction_listener(move |name: Arc<String>, doc: Arc<Document>, cause| {
                        // Still being sent: later requests share it rather than build another.
                        if cause == RemovalCause::Size
                            && Arc::strong_count(&doc) > 1
                            && let Some(shared) = me.upgrade()
                        {
                            shared.keep_live(&name, &doc);
                        }
                    })
                    .build(),
                live: Mutex::new(HashMap::new()),
                compress: Semaphore::new(1),
            }
        });
        PackumentCache {
            shared,
            max_bytes,
            revalidate_after,
            epoch: Instant::now(),
            writes: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The document of `name` in memory, cached or still being sent.
    pub fn get(&self, name: &str) -> Option<Arc<Document>> {
        self.shared.entries.get(name).or_else(|| {
            let live = self.shared.live.lock().expect("not poisoned");
            live.get(name).and_then(Weak::upgrade)
        })
    }

    /// Whether the entry must be checked against storage before it is served.
    pub fn is_due(&self, d: &Document) -> bool {
        self.now_ms().saturating_sub(d.checked.load(Ordering::Relaxed)) >= self.revalidate_after.as_millis() as u64
    }

    pub fn confirmed(&self, d: &Document) {
        d.checked.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A token to pass to [`insert`](Self::insert), taken before reading storage.
    pub fn generation(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    /// Keeps `doc` unless a write happened since `generation` was taken.
    pub fn insert(&self, doc: &Arc<Document>, generation: u64) {
        self.confirmed(doc);
        if self.generation() != generation {
            return;
        }
        let name = doc.packument.name().as_str();
        if doc.weight() as u64 > self.max_bytes {
            self.shared.keep_live(name, doc);
            return;
        }
        self.shared.entries.insert(name.to_owned(), doc.clone());
        self.shared.live.lock().expect("not poisoned").remove(name);
    }

    /// Whether `doc` is the cached entry of its package.
    pub fn holds(&self, doc: &Arc<Document>) -> bool {
        self.shared
            .entries
            .get(doc.packument.name().as_str())
            .is_some_and(|d| Arc::ptr_eq(&d, doc))
    }

    pub fn invalidate(&self, name: &crate::package::PackageName) {
        self.writes.fetch_add(1, Ordering::AcqRel);
        self.shared.entries.invalidate(name.as_str());
        self.shared.live.lock().expect("not poisoned").remove(name.as_str());
    }

    /// `doc` for `base`.
    pub fn prepare(&self, doc: Arc<Document>, base: &str) -> Prepared {
        let (render, new) = doc.render(base);
        if new {
            self.shared.reweigh(&doc);
        }
        Prepared {
            doc,
            render,
            shared: self.shared.clone(),
        }
    }

    /// Bytes held by cached entries (after pending evictions).
    pub fn weighted_size(&self) -> u64 {
        self.shared.entries.run_pending_tasks();
        self.shared.entries.weighted_size()
    }
}

/// A package's documents for one base URL.
pub struct Prepared {
    pub doc: Arc<Document>,
    render: Arc<Rendered>,
    shared: Arc<Shared>,
}

impl Prepared {
    /// The variant of `kind` (the full one exists when the document was built with it: see
    /// `Registry::prepared_for`).
    fn variant(&self, kind: Kind) -> &Variant {
        self.render
            .variant(kind)
            .expect("the registry prepares the kind it is asked for")
    }

    pub fn has(&self, kind: Kind) -> bool {
        self.render.variant(kind).is_some()
    }

    pub fn etag(&self, kind: Kind) -> &str {
        &self.variant(kind).etag
    }

    pub fn modified(&self) -> Option<DateTime<Utc>> {
        self.doc.packument.modified()
    }

    fn identity(&self, kind: Kind) -> Payload {
        let v = self.variant(kind);
        match &v.whole {
            Some(b) => Payload::Whole(b.clone()),
            None => Payload::Rope(Rope {
                doc: self.doc.clone(),
                kind,
                base: self.render.base_json.clone(),
                len: v.len,
            }),
        }
    }

    /// The body for `wanted` (or identity, when that compression is not made yet), and the
    /// encoding it is in. Small documents are compressed when first asked for (milliseconds);
    /// large ones go out at once uncompressed, and are compressed in the background once asked
    /// for again. `head`: nothing is compressed for a HEAD request.
    pub async fn body(&self, kind: Kind, wanted: Encoding, head: bool) -> (Payload, Encoding) {
        let v = self.variant(kind);
        if wanted == Encoding::Identity || !v.compressible() {
            return (self.identity(kind), Encoding::Identity);
        }
        if let Some(c) = v.compressed(wanted) {
            return (Payload::Whole(c.clone()), wanted);
        }
        if !head && v.len <= RENDER_MAX {
            if v.ask(wanted, 1)
                && let Some(c) = self.compress_now(kind, wanted).await
            {
                return (Payload::Whole(c), wanted);
            }
        } else if !head {
            self.compress_later(kind, wanted, v);
        }
        // Brotli is not made yet: gzip will do, if it is.
        if let Some(c) = v.compressed(Encoding::Gzip) {
            return (Payload::Whole(c.clone()), Encoding::Gzip);
        }
        (self.identity(kind), Encoding::Identity)
    }

    async fn compress_now(&self, kind: Kind, e: Encoding) -> Option<bytes::Bytes> {
        let _turn = self.shared.compress.acquire().await.ok()?;
        let (doc, render) = (self.doc.clone(), self.render.clone());
        let c = tokio::task::spawn_blocking(move || {
            let t = doc.template(kind)?;
            Some(encode::compress(t, &render.base_json, e))
        })
        .await
        .ok()??;
        self.variant(kind).set_compressed(e, c.clone());
        self.shared.reweigh(&self.doc);
        Some(c)
    }

    fn compress_later(&self, kind: Kind, e: Encoding, v: &Variant) {
        if !v.ask(e, ASKS_BEFORE_COMPRESSING_LARGE) {
            return;
        }
        let this = Prepared {
            doc: self.doc.clone(),
            render: self.render.clone(),
            shared: self.shared.clone(),
        };
        tokio::spawn(async move {
            if this.compress_now(kind, e).await.is_none() {
                this.variant(kind).not_started(e);
            }
        });
    }

    /// One version by number or dist-tag, as the full document holds it.
    pub fn version(&self, spec: &str) -> Option<bytes::Bytes> {
        Some(self.doc.packument.version(spec)?.render(&self.render.base_json))
    }
}

#[cfg(test)]
mod tests;
