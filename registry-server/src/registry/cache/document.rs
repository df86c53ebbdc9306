//! One package at one revision, ready to send: its views (templates cut from the stored bytes,
//! independent of the host name clients use) and, per base URL asked for, the rendered bytes
//! of small documents and the compressed variants clients asked for.

use super::encode::{self, Encoding};
use crate::package::packument::{Packument, Template};
use crate::storage::Revision;
use crate::uplink::UpstreamCopy;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Documents up to this size are rendered into one buffer per base URL (a memcpy, and one write
/// per response); larger ones are sent as slices of their source and never copied.
pub const RENDER_MAX: usize = 1024 * 1024;
/// Base URLs kept rendered per document (ALB, in-cluster Service, a port-forward...).
const MAX_BASES: usize = 4;

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Full,
    Abbreviated,
}

pub struct Document {
    pub packument: Packument,
    /// The local packument's storage revision this was built from (`None`: no local data).
    pub local: Option<Revision>,
    /// The upstream copy this was built from.
    pub upstream: Option<Arc<UpstreamCopy>>,
    /// The quarantine minute this was built for (`0` without one).
    pub minute: i64,
    /// The signing keys' generation its local versions were signed in (see `Signer::generation`).
    pub keys: u64,
    /// What the ETags are made of: changes whenever the content may.
    stamp: String,
    renders: Mutex<Vec<Arc<Rendered>>>,
    /// Milliseconds since the cache's epoch when storage last confirmed `local`.
    pub(super) checked: AtomicU64,
    /// Milliseconds since the Unix epoch when upstream was last asked, for a document without an
    /// upstream copy (no uplink has the package, or they failed).
    none_checked: AtomicI64,
}

impl Document {
    pub fn new(
        packument: Packument,
        local: Option<Revision>,
        upstream: Option<Arc<UpstreamCopy>>,
        minute: i64,
        keys: u64,
    ) -> Self {
        let stamp = format!(
            "{}|{}|{minute}|{keys}",
            local.as_ref().map_or("-", |r| r.0.as_str()),
            upstream.as_ref().map_or_else(|| "-".to_owned(), |u| u.stamp()),
        );
        Document {
            packument,
            local,
            upstream,
            minute,
            keys,
            stamp,
            renders: Mutex::new(Vec::new()),
            checked: AtomicU64::new(0),
            none_checked: AtomicI64::new(chrono::Utc::now().timestamp_millis()),
        }
    }

    /// Whether upstream need not be asked yet: its copy is fresh within `maxage`, or, without one,
    /// upstream was asked within `maxage`.
    pub fn upstream_is_fresh(&self, maxage: std::time::Duration, proxies: &[String]) -> bool {
        match &self.upstream {
            Some(u) => u.is_fresh(maxage, proxies),
            None => {
                chrono::Utc::now().timestamp_millis() - self.none_checked.load(Ordering::Relaxed)
                    < maxage.as_millis() as i64
            }
        }
    }

    /// Upstream was asked just now (and changed nothing).
    pub fn upstream_checked_now(&self) {
        self.none_checked
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// The template of `kind`; the full one only when this was built with it.
    pub fn template(&self, kind: Kind) -> Option<&Template> {
        match kind {
            Kind::Full => self.packument.full.as_ref().map(|f| &f.template),
            Kind::Abbreviated => Some(&self.packument.abbreviated),
        }
    }

    /// Whether this can answer requests for `kind`.
    pub fn has(&self, kind: Kind) -> bool {
        self.template(kind).is_some()
    }

    /// The rendering for `base`, made now if it is new; `true` when it is (the weight changed).
    pub(super) fn render(&self, base: &str) -> (Arc<Rendered>, bool) {
        let mut renders = self.renders.lock().expect("not poisoned");
        if let Some(r) = renders.iter().find(|r| r.base == base) {
            return (r.clone(), false);
        }
        let r = Arc::new(Rendered::new(self, base));
        if renders.len() >= MAX_BASES {
            renders.remove(0);
        }
        renders.push(r.clone());
        (r, true)
    }

    /// Every byte this document holds: its views and sources, and each rendering and
    /// compression made of them.
    pub fn weight(&self) -> usize {
        let renders: usize = self
            .renders
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|r| r.heap_bytes())
            .sum();
        std::mem::size_of::<Self>() + self.stamp.len() + self.packument.heap_bytes() + renders
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        crate::allocator::freed(self.weight());
    }
}

/// A JSON string's content: the base URL goes inside `"..."`.
fn json_escaped(s: &str) -> Bytes {
    let quoted = serde_json::to_string(s).expect("a string serializes");
    Bytes::copy_from_slice(&quoted.as_bytes()[1..quoted.len() - 1])
}

fn etag(stamp: &str, base: &str, kind: Kind) -> String {
    let mut h = Sha256::new();
    h.update(stamp.as_bytes());
    h.update([0]);
    h.update(base.as_bytes());
    h.update([0]);
    h.update(match kind {
        Kind::Full => b"full".as_slice(),
        Kind::Abbreviated => b"abbreviated",
    });
    format!("W/\"{}\"", hex::encode(&h.finalize()[..12]))
}

/// A document for one base URL.
pub struct Rendered {
    pub base: String,
    pub base_json: Bytes,
    full: Option<Variant>,
    abbreviated: Variant,
}

impl Rendered {
    fn new(doc: &Document, base: &str) -> Self {
        let base_json = json_escaped(base);
        let variant = |kind| {
            let t = doc.template(kind)?;
            Some(Variant::new(t, &base_json, etag(&doc.stamp, base, kind)))
        };
        Rendered {
            full: variant(Kind::Full),
            abbreviated: variant(Kind::Abbreviated).expect("every document has its abbreviated form"),
            base: base.to_owned(),
            base_json,
        }
    }

    pub fn variant(&self, kind: Kind) -> Option<&Variant> {
        match kind {
            Kind::Full => self.full.as_ref(),
            Kind::Abbreviated => Some(&self.abbreviated),
        }
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.base.len() * 2
            + self.full.as_ref().map_or(0, Variant::heap_bytes)
            + self.abbreviated.heap_bytes()
    }
}

/// One document for one base URL: its ETag, its bytes when small, and its compressions once
/// made.
pub struct Variant {
    pub etag: String,
    pub len: usize,
    /// The rendered bytes (documents up to [`RENDER_MAX`]).
    pub whole: Option<Bytes>,
    compressed: [OnceLock<Bytes>; 2],
    /// Requests that asked for each compression before it was made.
    asks: [AtomicU32; 2],
    started: [AtomicBool; 2],
}

fn slot(e: Encoding) -> usize {
    match e {
        Encoding::Gzip => 0,
        _ => 1,
    }
}

impl Variant {
    fn new(t: &Template, base_json: &Bytes, etag: String) -> Self {
        let len = t.len(base_json);
        Variant {
            etag,
            len,
            whole: (len <= RENDER_MAX).then(|| t.render(base_json)),
            compressed: Default::default(),
            asks: Default::default(),
            started: Default::default(),
        }
    }

    /// The compression in `e`, if made.
    pub fn compressed(&self, e: Encoding) -> Option<&Bytes> {
        self.compressed[slot(e)].get()
    }

    /// Counts a request for `e`; `true` when this one should start its compression.
    pub(super) fn ask(&self, e: Encoding, asks_before_compressing: u32) -> bool {
        let asked = self.asks[slot(e)].fetch_add(1, Ordering::Relaxed) + 1;
        asked >= asks_before_compressing && !self.started[slot(e)].swap(true, Ordering::AcqRel)
    }

    /// A compression that could not run (no memory left for it): a later request may try again.
    pub(super) fn not_started(&self, e: Encoding) {
        self.started[slot(e)].store(false, Ordering::Release);
    }

    pub(super) fn set_compressed(&self, e: Encoding, bytes: Bytes) {
        let _ = self.compressed[slot(e)].set(bytes);
    }

    /// Whether compressing is worth it at all.
    pub fn compressible(&self) -> bool {
        self.len >= encode::COMPRESS_MIN
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.etag.len()
            + self.whole.as_ref().map_or(0, Bytes::len)
            + self
                .compressed
                .iter()
                .filter_map(OnceLock::get)
                .map(Bytes::len)
                .sum::<usize>()
    }
}
