use super::*;
use crate::storage::read_blob_bytes;

fn store() -> (tempfile::TempDir, FsStorage) {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStorage::new(dir.path()).unwrap();
    (dir, s)
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

#[tokio::test]
async fn compare_and_swap() {
    let (dir, s) = store();
    let k = key("@s/pkg/package.json");
    assert!(s.read(&k).await.unwrap().is_none());
    let r1 = s.write(&k, Bytes::from_static(b"one"), None).await.unwrap();
    assert!(matches!(
        s.write(&k, Bytes::from_static(b"x"), None).await,
        Err(StorageError::Conflict(_))
    ));
    let r2 = s.write(&k, Bytes::from_static(b"two"), Some(&r1)).await.unwrap();
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
    assert_ne!(r1, r2);
    // Verdaccio's layout on disk, and no temp files left behind.
    assert_eq!(std::fs::read(dir.path().join("@s/pkg/package.json")).unwrap(), b"two");
    assert_eq!(s.list(&key("@s/pkg")).await.unwrap(), ["package.json"]);
    assert!(matches!(s.delete(&k, &r1).await, Err(StorageError::Conflict(_))));
    s.delete(&k, &r2).await.unwrap();
    assert!(s.read(&k).await.unwrap().is_none());
    assert!(!dir.path().join("@s").exists(), "empty folders are removed");
}

#[tokio::test]
async fn blobs_are_write_once() {
    let (_dir, s) = store();
    let k = key("pkg/pkg-1.0.0.tgz");
    s.put_blob(&k, Bytes::from_static(b"abc")).await.unwrap();
    assert!(matches!(
        s.put_blob(&k, Bytes::from_static(b"zzz")).await,
        Err(StorageError::AlreadyExists(_))
    ));
    assert_eq!(
        read_blob_bytes(&s, &k).await.unwrap().unwrap(),
        Bytes::from_static(b"abc")
    );
    assert_eq!(s.get_blob(&k).await.unwrap().unwrap().len, 3);
    s.delete_blob(&k).await.unwrap();
    s.delete_blob(&k).await.unwrap();
    assert!(s.get_blob(&k).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_read_modify_write_loses_nothing() {
    let (_dir, s) = store();
    let k = key("counter/package.json");
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        // Two independent handles on one folder, like two processes.
        let s = FsStorage::new(s.root.clone()).unwrap();
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
    let mut items: Vec<u32> = serde_json::from_slice(&s.read(&k).await.unwrap().unwrap().bytes).unwrap();
    items.sort();
    assert_eq!(items, (0..32).collect::<Vec<_>>());
}
