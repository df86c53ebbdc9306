use super::*;
use crate::storage::memory::MemoryStorage;
use chrono::Duration as Days;

fn stored(rotate_before: Option<DateTime<Utc>>) -> Signing {
    Signing {
        enabled: true,
        key: KeySource::Stored { rotate_before },
        retired: Vec::new(),
    }
}

#[tokio::test]
async fn replicas_starting_together_end_up_with_the_first_writers_key() {
    let storage = MemoryStorage::default();
    let config = stored(None);
    let loads = (0..8).map(|_| {
        let storage = storage.clone();
        let config = config.clone();
        tokio::spawn(async move { Keyring::load(&config, &storage).await.unwrap() })
    });
    let rings = futures_util::future::join_all(loads).await;
    let ids: Vec<String> = rings
        .into_iter()
        .map(|r| r.unwrap().current.public().keyid.clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let again = Keyring::load(&config, &storage).await.unwrap();
    assert_eq!(again.current.public().keyid, ids[0], "kept across restarts");
    assert!(again.retired.is_empty());
}

#[tokio::test]
async fn rotation_retires_the_old_key_once_with_when_it_stopped() {
    let storage = MemoryStorage::default();
    let first = Keyring::load(&stored(None), &storage).await.unwrap();
    let t = Utc::now() + Days::seconds(5);
    // Not yet due: nothing changes.
    let before = Keyring::load(&stored(Some(t)), &storage).await.unwrap();
    assert_eq!(before.current.public(), first.current.public());
    assert!(!before.stale(&stored(Some(t)), &storage).await.unwrap());

    std::thread::sleep(std::time::Duration::from_millis(5));
    let due = Utc::now(); // after the first key was made, and passed
    assert!(
        first.stale(&stored(Some(due)), &storage).await.unwrap(),
        "a due rotation is a change"
    );
    let rotated = Keyring::load(&stored(Some(due)), &storage).await.unwrap();
    assert_ne!(rotated.current.public(), first.current.public());
    let (old, expires) = &rotated.retired[0];
    assert_eq!(old, first.current.public());
    assert!(
        *expires <= Utc::now() && *expires >= due - Days::milliseconds(1),
        "{expires} {due}"
    );
    let keys: Vec<_> = rotated.public_keys().map(|(k, e)| (k.keyid.clone(), e)).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].1, None, "the signing key has no expires");

    // Every later start with the same setting keeps the new key.
    let later = Keyring::load(&stored(Some(due)), &storage).await.unwrap();
    assert_eq!(later.current.public(), rotated.current.public());
    assert_eq!(later.retired.len(), 1);
    assert!(!later.stale(&stored(Some(due)), &storage).await.unwrap());
    assert!(
        first.stale(&stored(None), &storage).await.unwrap(),
        "another replica rotated"
    );
}

#[tokio::test]
async fn a_key_file_and_retired_keys() {
    let dir = tempfile::tempdir().unwrap();
    let current = generate();
    let old = generate();
    std::fs::write(dir.path().join("key.pem"), current.to_pem()).unwrap();
    std::fs::write(dir.path().join("old.pub.pem"), old.public().to_pem()).unwrap();
    let expires = Utc::now() - Days::days(1);
    let config = Signing {
        enabled: true,
        key: KeySource::File(dir.path().join("key.pem")),
        retired: vec![RetiredKey {
            file: dir.path().join("old.pub.pem"),
            expires,
        }],
    };
    let storage = MemoryStorage::default();
    let ring = Keyring::load(&config, &storage).await.unwrap();
    assert_eq!(ring.current.public(), current.public());
    assert_eq!(ring.retired, vec![(old.public().clone(), expires)]);
    assert!(storage.read(&key_path()).await.unwrap().is_none(), "nothing stored");
    assert!(!ring.stale(&config, &storage).await.unwrap());
    std::fs::write(dir.path().join("key.pem"), generate().to_pem()).unwrap();
    assert!(ring.stale(&config, &storage).await.unwrap(), "the Secret was updated");

    let missing = Signing {
        key: KeySource::File(dir.path().join("nope.pem")),
        ..config.clone()
    };
    let e = Keyring::load(&missing, &storage).await.unwrap_err().to_string();
    assert!(e.contains("signing.key_file") && e.contains("nope.pem"), "{e}");
    std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
    let bad = Signing {
        key: KeySource::File(dir.path().join("bad.pem")),
        ..config
    };
    let e = Keyring::load(&bad, &storage).await.unwrap_err().to_string();
    assert!(e.contains("signing.key_file") && e.contains("PEM"), "{e}");
}
