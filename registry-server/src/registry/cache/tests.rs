use super::*;
use crate::package::PackageName;
use crate::package::merge::VersionFilter;
use crate::package::packument::{Inputs, Packument, Source};
use crate::storage::Revision;
use serde_json::json;
use std::io::Read;

fn doc(name: &str, revision: &str, readme: usize, full: bool) -> Arc<Document> {
    let name = PackageName::parse(name).unwrap();
    let json = json!({"name": name.as_str(), "readme": "x".repeat(readme), "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"version": "1.0.0", "dist": {"tarball": "http://x/p/-/p-1.0.0.tgz"}}}});
    let source = Source::parse(serde_json::to_vec(&json).unwrap().into()).unwrap();
    let inputs = Inputs {
        name: &name,
        local: Some(Arc::new(source)),
        upstream: None,
        filter: &VersionFilter::default(),
        now: Utc::now(),
        sign: None,
    };
    let p = Packument::build(inputs, full).unwrap();
    Arc::new(Document::new(p, Some(Revision(revision.into())), None, 0, 0))
}

async fn bytes(p: &Prepared, kind: Kind, e: Encoding) -> (Vec<u8>, Encoding) {
    let (payload, sent) = p.body(kind, e, false).await;
    let b = match payload {
        Payload::Whole(b) => b.to_vec(),
        Payload::Rope(r) => r.chunks().flat_map(|c| c.to_vec()).collect(),
    };
    (b, sent)
}

#[tokio::test]
async fn compressed_variants_decode_to_the_same_bytes() {
    let cache = PackumentCache::new(1 << 24, Duration::from_secs(1));
    let p = cache.prepare(doc("p", "r1", 5000, true), "http://h/");
    let (plain, e) = bytes(&p, Kind::Full, Encoding::Identity).await;
    assert_eq!(e, Encoding::Identity);
    let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(v["versions"]["1.0.0"]["dist"]["tarball"], "http://h/p/-/p-1.0.0.tgz");
    let (gz, e) = bytes(&p, Kind::Full, Encoding::Gzip).await;
    assert_eq!(e, Encoding::Gzip);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    assert_eq!(out, plain);
    let (br, e) = bytes(&p, Kind::Full, Encoding::Brotli).await;
    assert_eq!(e, Encoding::Brotli);
    let mut out = Vec::new();
    brotli::Decompressor::new(&br[..], 4096).read_to_end(&mut out).unwrap();
    assert_eq!(out, plain);
    assert!(br.len() < plain.len() / 10);
    // Small documents are not compressed.
    let (_, e) = bytes(&p, Kind::Abbreviated, Encoding::Brotli).await;
    assert_eq!(e, Encoding::Identity);
    assert_ne!(p.etag(Kind::Full), p.etag(Kind::Abbreviated));
    let q = cache.prepare(doc("p", "r2", 5000, true), "http://h/");
    assert_ne!(p.etag(Kind::Full), q.etag(Kind::Full), "a new revision is a new ETag");
    let other = cache.prepare(p.doc.clone(), "https://other/");
    assert_ne!(p.etag(Kind::Full), other.etag(Kind::Full), "a base URL of its own");
    let (o, _) = bytes(&other, Kind::Full, Encoding::Identity).await;
    assert!(String::from_utf8(o).unwrap().contains("https://other/p/-/p-1.0.0.tgz"));
}

#[tokio::test]
async fn a_write_during_a_read_is_not_cached() {
    let cache = PackumentCache::new(1 << 20, Duration::from_secs(1));
    let name = PackageName::parse("p").unwrap();
    let generation = cache.generation();
    cache.invalidate(&name); // a publish lands while the read is in flight
    cache.insert(&doc("p", "r", 10, false), generation);
    assert!(cache.get("p").is_none());
    let generation = cache.generation();
    cache.insert(&doc("p", "r", 10, false), generation);
    let d = cache.get("p").unwrap();
    assert!(!cache.is_due(&d));
    assert!(!d.has(Kind::Full) && d.has(Kind::Abbreviated));
}

#[tokio::test]
async fn every_rendering_and_compression_is_weighed() {
    let cache = PackumentCache::new(1 << 24, Duration::from_secs(1));
    let d = doc("p", "r", 200_000, true);
    cache.insert(&d, cache.generation());
    let bare = cache.weighted_size();
    assert!(bare as usize >= 200_000, "the source is counted: {bare}");
    let p = cache.prepare(d.clone(), "http://a/");
    let rendered = cache.weighted_size();
    assert!(
        rendered >= bare + 200_000,
        "the rendered copy is counted: {bare} -> {rendered}"
    );
    bytes(&p, Kind::Full, Encoding::Gzip).await;
    assert!(cache.weighted_size() > rendered, "and the compression");
    cache.prepare(d.clone(), "http://b/");
    assert!(cache.weighted_size() >= rendered + 200_000, "and a second host's");
}

#[tokio::test]
async fn a_document_larger_than_the_cache_is_not_kept_but_shared_while_in_use() {
    let cache = PackumentCache::new(100_000, Duration::from_secs(1));
    let d = doc("big", "r", 300_000, true);
    cache.insert(&d, cache.generation());
    assert_eq!(cache.weighted_size(), 0);
    let again = cache.get("big").expect("in use: shared");
    assert!(Arc::ptr_eq(&again, &d));
    drop((d, again));
    assert!(cache.get("big").is_none(), "gone with its last user");
}
