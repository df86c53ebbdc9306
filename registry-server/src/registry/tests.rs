use super::*;
use crate::config::Config;
use crate::package::publish::request_body;
use crate::storage::document::MAX_ATTEMPTS;
use crate::storage::memory::MemoryStorage;
use crate::storage::{Blob, Versioned};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::atomic::{AtomicU32, Ordering};

/// A store that counts document reads and, when `raced`, lets another writer win the race for
/// every document.
struct Probe {
    inner: MemoryStorage,
    raced: bool,
    reads: AtomicU32,
    writes: AtomicU32,
}

#[async_trait]
impl Storage for Probe {
    async fn read(&self, key: &Key) -> Result<Option<Versioned>, StorageError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(key).await
    }
    async fn revision(&self, key: &Key) -> Result<Option<Revision>, StorageError> {
        self.inner.revision(key).await
    }
    async fn write(&self, key: &Key, bytes: Bytes, expected: Option<&Revision>) -> Result<Revision, StorageError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.raced {
            // Another writer gets in between this writer's read and its write, every time.
            if let Some(current) = self.inner.read(key).await? {
                self.inner.write(key, current.bytes, Some(&current.revision)).await?;
            }
        }
        self.inner.write(key, bytes, expected).await
    }
    async fn delete(&self, key: &Key, expected: &Revision) -> Result<(), StorageError> {
        self.inner.delete(key, expected).await
    }
    async fn put_blob(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError> {
        self.inner.put_blob(key, bytes).await
    }
    async fn get_blob(&self, key: &Key) -> Result<Option<Blob>, StorageError> {
        self.inner.get_blob(key).await
    }
    async fn delete_blob(&self, key: &Key) -> Result<(), StorageError> {
        self.inner.delete_blob(key).await
    }
    async fn list(&self, prefix: &Key) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }
    async fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

fn registry_on(store: &MemoryStorage, raced: bool) -> (Arc<Probe>, Registry) {
    let storage = Arc::new(Probe {
        inner: store.clone(),
        raced,
        reads: AtomicU32::new(0),
        writes: AtomicU32::new(0),
    });
    let config = Config::parse(crate::config::EMBEDDED_DEFAULT, std::path::Path::new("."))
        .unwrap()
        .config;
    let cache = PackumentCache::new(1 << 20, std::time::Duration::ZERO);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let registry = Registry::new(storage.clone(), AccessRules::new(config.packages), cache, metrics);
    (storage, registry)
}

#[tokio::test]
async fn endless_conflicts_give_up_with_contended_after_bounded_attempts() {
    let (storage, registry) = registry_on(&MemoryStorage::default(), true);
    let name = PackageName::parse("raced").unwrap();
    let body = serde_json::json!({"versions": {}, "dist-tags": {}});
    let err = registry
        .update(&name, None, &body, &Identity::anonymous())
        .await
        .unwrap_err();
    // A missing package is reported before any write; seed one through the inner store.
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    storage
        .inner
        .write(
            &packument_key(&name).unwrap(),
            Bytes::from_static(br#"{"name":"raced","versions":{"1.0.0":{}},"dist-tags":{"latest":"1.0.0"}}"#),
            None,
        )
        .await
        .unwrap();
    let err = registry
        .set_tag(&name, "beta", "1.0.0", &Identity::user("tester", vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Contended(_)), "{err}");
    assert_eq!(storage.writes.load(Ordering::SeqCst), MAX_ATTEMPTS);
    let api = crate::http::error::ApiError::from(err);
    assert_eq!(api.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(api.message.contains("try again"), "{}", api.message);
}

#[tokio::test]
async fn publishes_to_a_busy_package_skip_reading_it_and_lose_nothing_written_elsewhere() {
    let store = MemoryStorage::default();
    let (storage, registry) = registry_on(&store, false);
    let name = PackageName::parse("busy").unwrap();
    let who = Identity::user("tester", vec![]);
    let publish = async |v: &str| {
        let body = request_body("busy", v, format!("busy@{v}").as_bytes());
        registry.publish(&name, &body, &who, None, "http://h/").await
    };
    publish("1.0.0").await.unwrap();
    let reads = storage.reads.load(Ordering::SeqCst);
    publish("1.0.1").await.unwrap();
    publish("1.0.2").await.unwrap();
    assert_eq!(
        storage.reads.load(Ordering::SeqCst),
        reads,
        "publishes after the first use the document this process wrote"
    );

    // Another process (replica) adds a version: the kept document is out of date now.
    let key = packument_key(&name).unwrap();
    let other = store.clone();
    let current = other.read(&key).await.unwrap().unwrap();
    let mut doc: Value = serde_json::from_slice(&current.bytes).unwrap();
    doc["versions"]["9.9.9"] = serde_json::json!({"name": "busy", "version": "9.9.9"});
    let bytes = Bytes::from(serde_json::to_vec_pretty(&doc).unwrap());
    other.write(&key, bytes, Some(&current.revision)).await.unwrap();

    publish("1.0.3").await.unwrap();
    assert_eq!(
        storage.reads.load(Ordering::SeqCst),
        reads + 1,
        "read again after the change"
    );
    let stored: Value = serde_json::from_slice(&other.read(&key).await.unwrap().unwrap().bytes).unwrap();
    let versions: Vec<&str> = stored["versions"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(versions, ["1.0.0", "1.0.1", "1.0.2", "9.9.9", "1.0.3"]);
    assert_eq!(stored["dist-tags"]["latest"], "1.0.3");
    // What a publish from the kept document wrote is what a whole-document write would be.
    assert_eq!(
        &other.read(&key).await.unwrap().unwrap().bytes[..],
        &serde_json::to_vec_pretty(&stored).unwrap()[..]
    );
}

#[tokio::test]
async fn a_publish_finishes_a_deletion_left_by_a_stopped_process_and_stores_its_own_tarball() {
    let store = MemoryStorage::default();
    let (_, registry) = registry_on(&store, false);
    let name = PackageName::parse("left").unwrap();
    let who = Identity::user("tester", vec![]);
    // An unpublish that died after its tombstone: the old tarball is still there.
    let claimed = crate::package::publish::timestamp(chrono::Utc::now() - chrono::Duration::hours(1));
    let tomb = serde_json::json!({"name": "left", "versions": {}, "_deleting": {"left-1.0.0.tgz": claimed}});
    let key = packument_key(&name).unwrap();
    store
        .write(&key, Bytes::from(serde_json::to_vec(&tomb).unwrap()), None)
        .await
        .unwrap();
    let tarball = tarball_key(&name, "left-1.0.0.tgz").unwrap();
    store
        .put_blob(&tarball, Bytes::from_static(b"old bytes"))
        .await
        .unwrap();
    assert!(
        registry.read_doc(&name).await.unwrap().is_none(),
        "a tombstone reads as no package"
    );

    let body = request_body("left", "1.0.0", b"new bytes");
    registry.publish(&name, &body, &who, None, "http://h/").await.unwrap();
    let stored = crate::storage::read_blob_bytes(&store, &tarball).await.unwrap();
    assert_eq!(stored.as_deref(), Some(&b"new bytes"[..]));
    let doc = registry.read_doc(&name).await.unwrap().unwrap().value;
    assert!(doc.get("_deleting").is_none(), "{doc}");
    assert!(doc["versions"].get("1.0.0").is_some());
}

#[tokio::test]
async fn an_unpublish_leaves_no_document_and_no_tarball() {
    let store = MemoryStorage::default();
    let (_, registry) = registry_on(&store, false);
    let name = PackageName::parse("gone").unwrap();
    let who = Identity::user("tester", vec![]);
    for v in ["1.0.0", "1.1.0"] {
        let body = request_body("gone", v, v.as_bytes());
        registry.publish(&name, &body, &who, None, "http://h/").await.unwrap();
    }
    let rev = registry.read_doc(&name).await.unwrap().unwrap().value["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let stale = registry.unpublish_package(&name, "1-stale", &who).await.unwrap_err();
    assert!(
        matches!(stale, RegistryError::Package(PackageError::StaleRevision { .. })),
        "{stale}"
    );
    registry.unpublish_package(&name, &rev, &who).await.unwrap();
    let folder = crate::storage::StorageKey::PackageDir { package: "gone" }
        .key()
        .unwrap();
    assert_eq!(store.list(&folder).await.unwrap(), Vec::<String>::new());
    assert_eq!(listed_soon(&store, &[]).await, Vec::<String>::new());
}

/// The package list once it is `want`, or as it is after two seconds: publishes add to it after
/// they are answered.
async fn listed_soon(store: &MemoryStorage, want: &[&str]) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let mut list = verdaccio_db::read(store).await.unwrap();
        list.sort();
        if list == want || tokio::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_new_package_is_listed_after_its_publish_is_answered() {
    let store = MemoryStorage::default();
    let (_, registry) = registry_on(&store, false);
    let who = Identity::user("tester", vec![]);
    for name in ["first", "second"] {
        let body = request_body(name, "1.0.0", name.as_bytes());
        let name = PackageName::parse(name).unwrap();
        registry.publish(&name, &body, &who, None, "http://h/").await.unwrap();
    }
    assert_eq!(listed_soon(&store, &["first", "second"]).await, ["first", "second"]);
}

#[tokio::test]
async fn a_publish_over_verdaccios_cached_copy_lists_the_package() {
    let store = MemoryStorage::default();
    let (_, registry) = registry_on(&store, false);
    // What Verdaccio leaves of a package it only proxied: `_uplinks` names where it came from.
    let cached = serde_json::json!({
        "name": "cached", "versions": {}, "dist-tags": {}, "time": {},
        "_uplinks": {"npmjs": {"etag": "\"x\"", "fetched": 1}}, "_distfiles": {}, "_attachments": {}, "_rev": "1-x"
    });
    let name = PackageName::parse("cached").unwrap();
    let key = packument_key(&name).unwrap();
    store.write(&key, Bytes::from(cached.to_string()), None).await.unwrap();
    let body = request_body("cached", "1.0.0", b"ours");
    let who = Identity::user("tester", vec![]);
    registry.publish(&name, &body, &who, None, "http://h/").await.unwrap();
    assert_eq!(listed_soon(&store, &["cached"]).await, ["cached"]);
}

#[tokio::test]
async fn the_package_list_is_newest_first_paginated_and_filtered_by_access() {
    let store = MemoryStorage::default();
    let config = Config::parse(
        "packages:\n  '@private/*': { access: $authenticated, publish: $authenticated }\n  '**': { access: $all, publish: $authenticated }\n",
        std::path::Path::new("."),
    )
    .unwrap()
    .config;
    let cache = PackumentCache::new(1 << 20, std::time::Duration::ZERO);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let registry = Registry::new(
        Arc::new(store.clone()),
        AccessRules::new(config.packages),
        cache,
        metrics,
    );
    let who = Identity::user("tester", vec![]);
    for name in ["first", "@private/second", "third"] {
        let p = PackageName::parse(name).unwrap();
        let mut body = request_body(name, "1.0.0", name.as_bytes());
        body["versions"]["1.0.0"]["license"] = serde_json::json!("ISC");
        registry.publish(&p, &body, &who, None, "http://h/").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let names = |page: &[crate::package::search::Entry]| page.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    let (page, total) = registry.packages(0, 2, &who).await.unwrap();
    assert_eq!(
        (names(&page), total),
        (vec!["third".into(), "@private/second".into()], 3)
    );
    assert_eq!(page[0].version.as_deref(), Some("1.0.0"));
    assert_eq!(page[0].license.as_deref(), Some("ISC"));
    assert_eq!(page[0].description.as_deref(), Some("test"));
    assert!(page[0].published.is_some());
    let (page, total) = registry.packages(0, 10, &Identity::anonymous()).await.unwrap();
    assert_eq!((names(&page), total), (vec!["third".into(), "first".into()], 2));
    let (hits, total) = registry.search("second", 0, 10, &Identity::anonymous()).await.unwrap();
    assert_eq!(
        (hits.len(), total),
        (0, 0),
        "a package the caller may not read is not found"
    );
    assert_eq!(registry.search("second", 0, 10, &who).await.unwrap().1, 1);

    // The index in storage, written shortly after, is what another replica reads.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let other = Registry::new(
        Arc::new(store.clone()),
        AccessRules::new(
            Config::parse(crate::config::EMBEDDED_DEFAULT, std::path::Path::new("."))
                .unwrap()
                .config
                .packages,
        ),
        PackumentCache::new(1 << 20, std::time::Duration::ZERO),
        Arc::new(crate::metrics::Metrics::default()),
    );
    assert_eq!(other.packages(0, 10, &who).await.unwrap().1, 3);
}

#[tokio::test]
async fn a_key_rotated_by_another_replica_re_signs_documents_already_in_memory() {
    use crate::config::{KeySource, Signing};
    use cache::{Encoding, Kind, Payload};
    let (storage, registry) = registry_on(&MemoryStorage::default(), false);
    let storage: Arc<dyn Storage> = storage;
    let signer = Signer::start(&Signing::default(), storage.clone())
        .await
        .unwrap()
        .unwrap();
    let registry = registry.with_signer(Some(signer.clone()));
    let name = PackageName::parse("signed").unwrap();
    let who = Identity::user("tester", vec![]);
    let body = request_body("signed", "1.0.0", b"signed@1.0.0");
    registry.publish(&name, &body, &who, None, "http://h/").await.unwrap();
    // The version endpoint and the abbreviated document, both from the document in memory.
    let served = async || {
        let one: Value =
            serde_json::from_slice(&registry.version(&name, "1.0.0", &who, "http://h/").await.unwrap()).unwrap();
        let p = registry
            .prepared_for(&name, &who, "http://h/", Kind::Abbreviated)
            .await
            .unwrap();
        let Payload::Whole(b) = p.body(Kind::Abbreviated, Encoding::Identity, false).await.0 else {
            panic!("a small document is rendered whole");
        };
        let corgi: Value = serde_json::from_slice(&b).unwrap();
        [one["dist"].clone(), corgi["versions"]["1.0.0"]["dist"].clone()]
    };
    let verified_by = |dist: &Value, key: &crate::package::signature::PublicKey| {
        let sig = &dist["signatures"][0];
        sig["keyid"] == key.keyid.as_str()
            && key.verifies(
                "signed",
                "1.0.0",
                dist["integrity"].as_str().unwrap(),
                sig["sig"].as_str().unwrap(),
            )
    };
    let old = signer.keyring().unwrap().current.public().clone();
    for dist in served().await {
        assert!(verified_by(&dist, &old), "{dist}");
    }

    // Another replica rotates the stored key; once this one notices, it signs with the new key
    // although the package did not change.
    let rotating = Signing {
        key: KeySource::Stored {
            rotate_before: Some(chrono::Utc::now()),
        },
        ..Signing::default()
    };
    let other = Signer::start(&rotating, storage.clone()).await.unwrap().unwrap();
    let new = other.keyring().unwrap().current.public().clone();
    assert_ne!(new.keyid, old.keyid);
    signer.refresh().await.unwrap();
    for dist in served().await {
        assert!(verified_by(&dist, &new), "{dist}");
    }
}
