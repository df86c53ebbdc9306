//! Packuments held in memory as ready-to-send bytes: full and abbreviated, each also gzip- and
//! brotli-compressed, with its ETag. Writes through this process invalidate an entry at once;
//! changes made by other processes (replicas) are noticed by a cheap revision check (a stat, a
//! HEAD) made at most once per `revalidate_after`.

use crate::package::{PackageName, packument};
use crate::storage::Revision;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use moka::sync::Cache;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Below this size compression saves too little to be worth a variant.
const COMPRESS_MIN: usize = 1024;

/// The encodings every large packument is prepared in (chosen per request by `http::encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

#[derive(Debug)]
pub struct Variant {
    pub etag: String,
    identity: Bytes,
    gzip: Option<Bytes>,
    brotli: Option<Bytes>,
}

impl Variant {
    fn new(bytes: Vec<u8>, etag: String) -> Self {
        let compress = bytes.len() >= COMPRESS_MIN;
        let gzip = compress.then(|| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(&bytes).expect("writing to a Vec cannot fail");
            Bytes::from(e.finish().expect("writing to a Vec cannot fail"))
        });
        let brotli = compress.then(|| {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(&bytes).expect("writing to a Vec cannot fail");
            }
            Bytes::from(out)
        });
        Variant {
            etag,
            identity: Bytes::from(bytes),
            gzip,
            brotli,
        }
    }

    /// The bytes to send for `wanted`, and the encoding they are in.
    pub fn body(&self, wanted: Encoding) -> (Bytes, Encoding) {
        match wanted {
            Encoding::Brotli if self.brotli.is_some() => (self.brotli.clone().expect("checked"), Encoding::Brotli),
            Encoding::Gzip | Encoding::Brotli if self.gzip.is_some() => {
                (self.gzip.clone().expect("checked"), Encoding::Gzip)
            }
            _ => (self.identity.clone(), Encoding::Identity),
        }
    }

    fn weight(&self) -> usize {
        self.identity.len() + self.gzip.as_ref().map_or(0, Bytes::len) + self.brotli.as_ref().map_or(0, Bytes::len)
    }
}

/// One package's prepared responses for one base URL.
#[derive(Debug)]
pub struct Prepared {
    pub revision: Revision,
    pub base: String,
    pub full: Variant,
    pub abbreviated: Variant,
    pub modified: Option<DateTime<Utc>>,
    /// Milliseconds since the cache's epoch when storage last confirmed `revision`.
    checked: AtomicU64,
}

fn etag(revision: &Revision, base: &str, variant: &str) -> String {
    let mut h = Sha256::new();
    h.update(revision.0.as_bytes());
    h.update([0]);
    h.update(base.as_bytes());
    h.update([0]);
    h.update(variant.as_bytes());
    format!("W/\"{}\"", hex::encode(&h.finalize()[..12]))
}

impl Prepared {
    /// Builds every representation of a stored packument. CPU work: run it off the async workers.
    pub fn build(name: &PackageName, stored: &Value, revision: Revision, base: &str) -> Self {
        let full = packument::client_view(stored, name, base);
        let abbreviated = packument::abbreviated_view(&full);
        let modified = packument::modified(&full);
        Prepared {
            full: Variant::new(
                serde_json::to_vec(&full).expect("JSON serializes"),
                etag(&revision, base, "full"),
            ),
            abbreviated: Variant::new(
                serde_json::to_vec(&abbreviated).expect("JSON serializes"),
                etag(&revision, base, "abbreviated"),
            ),
            modified,
            revision,
            base: base.to_owned(),
            checked: AtomicU64::new(0),
        }
    }
}

pub struct PackumentCache {
    entries: Cache<String, Arc<Prepared>>,
    revalidate_after: Duration,
    epoch: Instant,
    /// Bumped by every write, so a read that raced with a write does not cache what it read.
    writes: AtomicU64,
}

impl PackumentCache {
    pub fn new(max_bytes: u64, revalidate_after: Duration) -> Self {
        PackumentCache {
            entries: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, p: &Arc<Prepared>| {
                    (p.full.weight() + p.abbreviated.weight())
                        .try_into()
                        .unwrap_or(u32::MAX)
                })
                .build(),
            revalidate_after,
            epoch: Instant::now(),
            writes: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn get(&self, name: &PackageName, base: &str) -> Option<Arc<Prepared>> {
        self.entries.get(name.as_str()).filter(|p| p.base == base)
    }

    /// Whether the entry must be checked against storage before it is served.
    pub fn is_due(&self, p: &Prepared) -> bool {
        self.now_ms().saturating_sub(p.checked.load(Ordering::Relaxed)) >= self.revalidate_after.as_millis() as u64
    }

    pub fn confirmed(&self, p: &Prepared) {
        p.checked.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A token to pass to [`insert`](Self::insert), taken before reading storage.
    pub fn generation(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    pub fn insert(&self, name: &PackageName, p: Arc<Prepared>, generation: u64) {
        self.confirmed(&p);
        if self.generation() == generation {
            self.entries.insert(name.to_string(), p);
        }
    }

    pub fn invalidate(&self, name: &PackageName) {
        self.writes.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(name.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Read;

    #[test]
    fn prepares_compressed_variants_that_decode_to_the_same_bytes() {
        let name = PackageName::parse("p").unwrap();
        let readme = "x".repeat(5000);
        let doc = json!({"name": "p", "readme": readme, "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {"version": "1.0.0", "dist": {"tarball": "http://x/p/-/p-1.0.0.tgz"}}}});
        let p = Prepared::build(&name, &doc, Revision("r1".into()), "http://h/");
        let (plain, e) = p.full.body(Encoding::Identity);
        assert_eq!(e, Encoding::Identity);
        let (gz, e) = p.full.body(Encoding::Gzip);
        assert_eq!(e, Encoding::Gzip);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);
        let (br, e) = p.full.body(Encoding::Brotli);
        assert_eq!(e, Encoding::Brotli);
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096).read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);
        assert!(br.len() < plain.len() / 10);
        // Small documents are not compressed; a request for br gets identity.
        let (_, e) = p.abbreviated.body(Encoding::Brotli);
        assert_eq!(e, Encoding::Identity);
        assert_ne!(p.full.etag, p.abbreviated.etag);
        let q = Prepared::build(&name, &doc, Revision("r2".into()), "http://h/");
        assert_ne!(p.full.etag, q.full.etag, "a new revision is a new ETag");
    }

    #[test]
    fn a_write_during_a_read_is_not_cached() {
        let cache = PackumentCache::new(1 << 20, Duration::from_secs(1));
        let name = PackageName::parse("p").unwrap();
        let doc = json!({"name": "p", "versions": {}});
        let generation = cache.generation();
        cache.invalidate(&name); // a publish lands while the read is in flight
        cache.insert(
            &name,
            Arc::new(Prepared::build(&name, &doc, Revision("r".into()), "b")),
            generation,
        );
        assert!(cache.get(&name, "b").is_none());
        let generation = cache.generation();
        cache.insert(
            &name,
            Arc::new(Prepared::build(&name, &doc, Revision("r".into()), "b")),
            generation,
        );
        let p = cache.get(&name, "b").unwrap();
        assert!(!cache.is_due(&p));
        assert!(cache.get(&name, "other-base").is_none());
    }
}
