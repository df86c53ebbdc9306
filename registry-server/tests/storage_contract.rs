//! The storage contract, written once and run against every backend: the folder, S3 (on moto) and
//! memory. Compare-and-swap documents (create-only, conflicts, deletes at a revision), write-once
//! blobs read as streams, listing, the cheap revision check, readiness; then what each backend
//! adds (Verdaccio's layout on disk, SSE-KMS and key prefixes on S3).

mod common;

use bytes::Bytes;
use common::moto::Moto;
use registry_server::config::S3Store;
use registry_server::storage::fs::FsStorage;
use registry_server::storage::memory::MemoryStorage;
use registry_server::storage::s3::S3Storage;
use registry_server::storage::{Key, Storage, StorageError, read_blob_bytes};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

fn block<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// What every backend guarantees.
mod contract {
    use super::*;

    /// Documents are replaced only at the revision they were read at. Leaves nothing behind.
    pub async fn documents(s: &dyn Storage) {
        s.check().await.unwrap();
        let k = key("@s/pkg/package.json");
        assert!(s.read(&k).await.unwrap().is_none());
        assert!(s.revision(&k).await.unwrap().is_none());
        let r1 = s.write(&k, Bytes::from_static(b"one"), None).await.unwrap();
        assert!(
            matches!(
                s.write(&k, Bytes::from_static(b"x"), None).await,
                Err(StorageError::Conflict(_))
            ),
            "creating is only for absent documents"
        );
        let r2 = s.write(&k, Bytes::from_static(b"two"), Some(&r1)).await.unwrap();
        assert_ne!(r1, r2);
        assert!(matches!(
            s.write(&k, Bytes::from_static(b"x"), Some(&r1)).await,
            Err(StorageError::Conflict(_))
        ));
        let got = s.read(&k).await.unwrap().unwrap();
        assert_eq!(&got.bytes[..], b"two");
        assert_eq!(got.revision, r2);
        assert_eq!(
            s.revision(&k).await.unwrap(),
            Some(r2.clone()),
            "the cheap check agrees with a read"
        );
        assert_eq!(s.list(&key("@s/pkg")).await.unwrap(), ["package.json"]);
        assert_eq!(s.list(&key("@s")).await.unwrap(), ["pkg"]);
        assert!(matches!(s.delete(&k, &r1).await, Err(StorageError::Conflict(_))));
        assert!(s.read(&k).await.unwrap().is_some(), "a stale delete changes nothing");
        s.delete(&k, &r2).await.unwrap();
        assert!(s.read(&k).await.unwrap().is_none());
        s.delete(&k, &r2).await.unwrap();
        // Updating a document that was deleted since it was read is a conflict too.
        assert!(matches!(
            s.write(&k, Bytes::from_static(b"x"), Some(&r2)).await,
            Err(StorageError::Conflict(_))
        ));
        assert!(s.list(&key("@s")).await.unwrap().is_empty());
    }

    /// Blobs are write-once and read as streams, small and large. Leaves `pkg/package.json`.
    pub async fn blobs(s: &dyn Storage) {
        let small = key("small/small-1.0.0.tgz");
        s.put_blob(&small, Bytes::from_static(b"abc")).await.unwrap();
        assert!(matches!(
            s.put_blob(&small, Bytes::from_static(b"zzz")).await,
            Err(StorageError::AlreadyExists(_))
        ));
        assert_eq!(
            read_blob_bytes(s, &small).await.unwrap().unwrap(),
            Bytes::from_static(b"abc")
        );
        assert_eq!(s.get_blob(&small).await.unwrap().unwrap().len, 3);
        s.delete_blob(&small).await.unwrap();
        s.delete_blob(&small).await.unwrap();
        assert!(s.get_blob(&small).await.unwrap().is_none());

        // Larger than any backend reads in one piece.
        let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let k = key("pkg/pkg-1.0.0.tgz");
        s.put_blob(&k, Bytes::from(big.clone())).await.unwrap();
        assert!(matches!(
            s.put_blob(&k, Bytes::from_static(b"zzz")).await,
            Err(StorageError::AlreadyExists(_))
        ));
        let blob = s.get_blob(&k).await.unwrap().unwrap();
        assert_eq!(blob.len, big.len() as u64);
        assert_eq!(read_blob_bytes(s, &k).await.unwrap().unwrap(), big);
        s.write(&key("pkg/package.json"), Bytes::from_static(b"{}"), None)
            .await
            .unwrap();
        assert_eq!(s.list(&key("pkg")).await.unwrap(), ["package.json", "pkg-1.0.0.tgz"]);
        assert!(s.blob_redirect(&k).await.unwrap().is_none(), "not configured");
        s.delete_blob(&k).await.unwrap();
        s.delete_blob(&k).await.unwrap();
        assert!(s.get_blob(&k).await.unwrap().is_none());
    }

    /// What the repair task needs: the names at the root, and how old a blob is. Leaves nothing.
    pub async fn root_listing_and_ages(s: &dyn Storage) {
        let k = key("aged/aged-1.0.0.tgz");
        assert!(s.modified(&k).await.unwrap().is_none());
        s.put_blob(&k, Bytes::from_static(b"x")).await.unwrap();
        s.write(&key("@scope/p/package.json"), Bytes::from_static(b"{}"), None)
            .await
            .unwrap();
        let root = s.list_root().await.unwrap();
        assert!(
            root.contains(&"aged".to_owned()) && root.contains(&"@scope".to_owned()),
            "{root:?}"
        );
        let written = s.modified(&k).await.unwrap().expect("a blob's age");
        let age = std::time::SystemTime::now().duration_since(written).unwrap_or_default();
        assert!(age < Duration::from_secs(60), "{age:?}");
        s.delete_blob(&k).await.unwrap();
        let r = s.revision(&key("@scope/p/package.json")).await.unwrap().unwrap();
        s.delete(&key("@scope/p/package.json"), &r).await.unwrap();
        assert!(
            s.list_root()
                .await
                .unwrap()
                .iter()
                .all(|n| n != "aged" && n != "@scope")
        );
    }

    /// `writers` independent handles (processes, replicas) appending to one document with
    /// compare-and-swap: every append survives.
    pub async fn concurrent_read_modify_write_loses_nothing<F, Fut>(open: F, writers: u32)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Arc<dyn Storage>>,
    {
        let k = key("counter/package.json");
        let mut tasks = Vec::new();
        for i in 0..writers {
            let s = open().await;
            let k = k.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let cur = s.read(&k).await.unwrap();
                    let mut items: Vec<u32> = cur
                        .as_ref()
                        .map(|v| serde_json::from_slice(&v.bytes).unwrap())
                        .unwrap_or_default();
                    items.push(i);
                    let bytes = Bytes::from(serde_json::to_vec(&items).unwrap());
                    match s.write(&k, bytes, cur.as_ref().map(|v| &v.revision)).await {
                        Ok(_) => break,
                        Err(StorageError::Conflict(_)) => tokio::task::yield_now().await,
                        Err(e) => panic!("{e}"),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let s = open().await;
        let mut items: Vec<u32> = serde_json::from_slice(&s.read(&k).await.unwrap().unwrap().bytes).unwrap();
        items.sort();
        assert_eq!(items, (0..writers).collect::<Vec<_>>());
    }
}

mod fs {
    use super::*;

    fn open(dir: &std::path::Path) -> Arc<dyn Storage> {
        Arc::new(FsStorage::new(dir).unwrap())
    }

    #[test]
    fn documents() {
        let dir = tempfile::tempdir().unwrap();
        block(contract::documents(open(dir.path()).as_ref()));
        assert_eq!(open(dir.path()).package_list_key().as_str(), ".verdaccio-db.json");
    }

    #[test]
    fn blobs() {
        let dir = tempfile::tempdir().unwrap();
        block(contract::blobs(open(dir.path()).as_ref()));
    }

    #[test]
    fn concurrent_read_modify_write_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Independent handles on one folder, like processes.
        block(contract::concurrent_read_modify_write_loses_nothing(
            || async { open(dir.path()) },
            32,
        ));
    }

    #[test]
    fn root_listing_and_ages() {
        let dir = tempfile::tempdir().unwrap();
        block(contract::root_listing_and_ages(open(dir.path()).as_ref()));
    }

    #[test]
    fn temp_files_left_by_interrupted_writes_are_swept_once_old() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        std::fs::create_dir_all(dir.path().join("@s/p")).unwrap();
        for f in [
            "@s/p/.tmp-00ff00ff00ff00ff",
            "@s/p/.package.json.tmp-1234abcd",
            "@s/p/p-1.0.0.tgz",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        assert_eq!(block(s.sweep_temp(Duration::from_secs(3600))).unwrap(), 0, "too young");
        assert_eq!(block(s.sweep_temp(Duration::ZERO)).unwrap(), 2);
        assert_eq!(block(s.list(&key("@s/p"))).unwrap(), ["p-1.0.0.tgz"]);
        assert!(dir.path().join(".locks").is_dir(), "the lock folder stays");
    }

    #[test]
    fn documents_are_laid_out_as_verdaccio_lays_them_out() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        block(async {
            let k = key("@s/pkg/package.json");
            let r = s.write(&k, Bytes::from_static(b"two"), None).await.unwrap();
            // Verdaccio's layout on disk, and no temp files left behind.
            assert_eq!(std::fs::read(dir.path().join("@s/pkg/package.json")).unwrap(), b"two");
            assert_eq!(s.list(&key("@s/pkg")).await.unwrap(), ["package.json"]);
            s.delete(&k, &r).await.unwrap();
        });
        assert!(!dir.path().join("@s").exists(), "empty folders are removed");
    }
}

mod memory {
    use super::*;

    #[test]
    fn documents() {
        let s = MemoryStorage::default();
        block(contract::documents(&s));
        assert_eq!(s.package_list_key().as_str(), ".verdaccio-db.json");
    }

    #[test]
    fn blobs() {
        block(contract::blobs(&MemoryStorage::default()));
    }

    #[test]
    fn root_listing_and_ages() {
        block(contract::root_listing_and_ages(&MemoryStorage::default()));
    }

    #[test]
    fn concurrent_read_modify_write_loses_nothing() {
        // Clones share one store, like handles on one folder.
        let s = MemoryStorage::default();
        block(contract::concurrent_read_modify_write_loses_nothing(
            || async { Arc::new(s.clone()) as Arc<dyn Storage> },
            32,
        ));
    }
}

mod s3 {
    use super::*;

    fn config(moto: &Moto, bucket: &str, prefix: &str) -> S3Store {
        S3Store {
            bucket: bucket.to_owned(),
            key_prefix: prefix.to_owned(),
            region: Some("us-east-1".to_owned()),
            endpoint: Some(moto.endpoint()),
            force_path_style: true,
            sse_kms_key_id: None,
            tarball_redirect: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_attempts: 2,
        }
    }

    async fn open(cfg: &S3Store) -> Arc<dyn Storage> {
        let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test");
        Arc::new(S3Storage::connect_with(cfg, Some(creds)).await)
    }

    #[test]
    fn documents() {
        let moto = Moto::start();
        moto.create_bucket("contract");
        let cfg = config(&moto, "contract", "pre/");
        block(async {
            let s = open(&cfg).await;
            contract::documents(s.as_ref()).await;
            assert_eq!(s.package_list_key().as_str(), "verdaccio-s3-db.json");
        });
        assert!(moto.keys("contract", "").is_empty());
    }

    #[test]
    fn blobs_and_documents_are_encrypted_with_the_kms_key() {
        let moto = Moto::start();
        moto.create_bucket("blobs");
        let mut cfg = config(&moto, "blobs", "");
        let kms = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
        cfg.sse_kms_key_id = Some(kms.to_owned());
        block(async { contract::blobs(open(&cfg).await.as_ref()).await });
        let head = moto.head("blobs", "pkg/package.json").unwrap();
        assert_eq!(head["x-amz-server-side-encryption"], "aws:kms");
        assert_eq!(head["x-amz-server-side-encryption-aws-kms-key-id"], kms);
    }

    #[test]
    fn concurrent_read_modify_write_loses_nothing() {
        let moto = Moto::start();
        moto.create_bucket("race");
        let cfg = config(&moto, "race", "");
        // Independent clients on one bucket, like replicas.
        block(contract::concurrent_read_modify_write_loses_nothing(|| open(&cfg), 24));
    }

    #[test]
    fn root_listing_and_ages() {
        let moto = Moto::start();
        moto.create_bucket("ages");
        moto.put("ages", "elsewhere/x.json", b"{}".to_vec());
        let cfg = config(&moto, "ages", "pre/");
        block(async {
            let s = open(&cfg).await;
            contract::root_listing_and_ages(s.as_ref()).await;
            assert!(s.list_root().await.unwrap().is_empty(), "only under the key prefix");
        });
    }

    #[test]
    fn a_missing_bucket_is_unavailable_not_empty() {
        let moto = Moto::start();
        let cfg = config(&moto, "never-created", "");
        block(async {
            let s = open(&cfg).await;
            match s.read(&key("pkg/package.json")).await {
                Err(StorageError::Unavailable(m)) => assert!(m.contains("does not exist"), "{m}"),
                other => panic!("{other:?}"),
            }
            assert!(s.check().await.is_err());
        });
    }
}
