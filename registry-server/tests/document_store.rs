//! Every kind of stored record written through the storage floor's document layer
//! (`storage::document`) by two processes at once, on one folder and on one S3 bucket (moto): no
//! update is lost, a create-once record has one value for both, a lease has one holder at a time.
//!
//! The two processes are this test binary run again with `worker` as the test to run and the
//! backend in the environment (`DOCUMENT_STORE_WORKER`); each prints its findings as `RESULT`
//! lines for the parent to compare.

mod common;

use common::moto::Moto;
use registry_server::auth::Identity;
use registry_server::auth::access::AccessRules;
use registry_server::auth::sessions::Sessions;
use registry_server::auth::store::{self, TokenRecord, UserRecord};
use registry_server::config::{Config, S3Store, Signing};
use registry_server::package::PackageName;
use registry_server::registry::{PackumentCache, Registry};
use registry_server::signing::Signer;
use registry_server::storage::document::{self, Lease, Step};
use registry_server::storage::fs::FsStorage;
use registry_server::storage::s3::S3Storage;
use registry_server::storage::{Key, Storage, StorageError};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const WORKER_ENV: &str = "DOCUMENT_STORE_WORKER";
/// Rounds of each contended change per process.
const ROUNDS: u32 = 12;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

fn s3_config(endpoint: &str, bucket: &str) -> S3Store {
    S3Store {
        bucket: bucket.to_owned(),
        key_prefix: String::new(),
        region: Some("us-east-1".to_owned()),
        endpoint: Some(endpoint.to_owned()),
        force_path_style: true,
        sse_kms_key_id: None,
        tarball_redirect: None,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        max_attempts: 2,
    }
}

/// `fs:<folder>` or `s3:<bucket>:<endpoint>`.
async fn open(backend: &str) -> Arc<dyn Storage> {
    if let Some(dir) = backend.strip_prefix("fs:") {
        return Arc::new(FsStorage::new(dir).unwrap());
    }
    let (bucket, endpoint) = backend.strip_prefix("s3:").unwrap().split_once(':').unwrap();
    let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test");
    Arc::new(S3Storage::connect_with(&s3_config(endpoint, bucket), Some(creds)).await)
}

fn registry(storage: Arc<dyn Storage>) -> Registry {
    let config = Config::parse(registry_server::config::EMBEDDED_DEFAULT, std::path::Path::new("."))
        .unwrap()
        .config;
    let cache = PackumentCache::new(1 << 20, Duration::ZERO);
    let metrics = Arc::new(registry_server::metrics::Metrics::default());
    Registry::new(storage, AccessRules::new(config.packages), cache, metrics)
}

/// One of the two processes: the same changes as the other, at the same time.
#[test]
fn worker() {
    // Run by `two_processes` only: without its environment there is nothing to do.
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let (id, backend) = spec.split_once('=').unwrap();
    let (id, backend) = (id.to_owned(), backend.to_owned());
    runtime().block_on(async move {
        let storage = open(&backend).await;
        let s = storage.as_ref();
        let counter = key("test/counter.json");
        let leased = key("test/leased.json");
        let lease_key = key("test/lease.json");
        let reg = registry(storage.clone());
        let who = Identity::user(format!("writer{id}"), Vec::new());
        let shared = PackageName::parse("shared").unwrap();

        // All kinds at once, each contended by the other process doing the same.
        let counting = async {
            for _ in 0..ROUNDS {
                document::update(s, &counter, "the counter", |n: Option<u64>| {
                    Ok::<_, StorageError>(Step::Write(n.unwrap_or(0) + 1, ()))
                })
                .await
                .unwrap();
            }
        };
        let leasing = async {
            // A plain read and overwrite, safe only because the lease has one holder at a time.
            for _ in 0..ROUNDS {
                let lease = loop {
                    let taken = Lease::take(
                        s,
                        lease_key.clone(),
                        &id,
                        Duration::from_secs(30),
                        |d: Option<Turns>| Some(d.unwrap_or(Turns { turns: 0 })),
                    )
                    .await
                    .unwrap();
                    match taken {
                        Some(l) => break l,
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                };
                let n = document::read::<u64>(s, &leased).await.unwrap().map_or(0, |d| d.value);
                tokio::time::sleep(Duration::from_millis(2)).await;
                let bytes = serde_json::to_vec(&(n + 1)).unwrap().into();
                document::overwrite(s, &leased, bytes).await.unwrap();
                let turns = lease.record.data.turns + 1;
                lease.release(Turns { turns }).await.unwrap();
            }
        };
        let users = async {
            let mut won = 0;
            for i in 0..ROUNDS {
                let user = UserRecord {
                    name: format!("user{i}"),
                    password: format!("hash-by-{id}"),
                    email: None,
                    created: "2026-01-01T00:00:00.000Z".into(),
                };
                if store::create_user(s, &user).await.is_ok() {
                    won += 1;
                }
            }
            won
        };
        let tokens = async {
            for i in 0..ROUNDS {
                let token = TokenRecord {
                    key: format!("{id}{i:063}"),
                    user: "tokens".into(),
                    prefix: "npm_".into(),
                    name: None,
                    readonly: false,
                    cidr_whitelist: Vec::new(),
                    created: "2026-01-01T00:00:00.000Z".into(),
                    expires: None,
                    grant: None,
                };
                store::create_token(s, &token).await.unwrap();
            }
        };
        let publishing = async {
            for i in 0..ROUNDS {
                let version = format!("1.{}.{i}", if id == "a" { 1 } else { 2 });
                let body = registry_server::package::publish::request_body("shared", &version, version.as_bytes());
                reg.publish(&shared, &body, &who, None, "http://localhost/")
                    .await
                    .unwrap();
                let own = format!("own-{id}-{i}");
                let body = registry_server::package::publish::request_body(&own, "1.0.0", own.as_bytes());
                let name = PackageName::parse(&own).unwrap();
                reg.publish(&name, &body, &who, None, "http://localhost/")
                    .await
                    .unwrap();
            }
        };
        let web_key = async { Sessions::new(storage.clone()).signing_key().await.unwrap() };
        let keyring = async {
            let signer = Signer::start(&Signing::default(), storage.clone())
                .await
                .unwrap()
                .unwrap();
            signer.keyring().unwrap().current.public().keyid.clone()
        };
        let ((), (), won, (), (), web_key, keyid) =
            tokio::join!(counting, leasing, users, tokens, publishing, web_key, keyring);
        // The search index follows publishes shortly after; let it finish before the process ends.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        println!("RESULT users_created={won}");
        println!("RESULT web_key={}", hex(&web_key));
        println!("RESULT keyid={keyid}");
    });
}

/// The leased counter's lease data: how many turns it has had.
#[derive(serde::Serialize, serde::Deserialize)]
struct Turns {
    turns: u32,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs the two workers on `backend` at once; their `RESULT` lines.
fn two_workers(backend: &str) -> [BTreeMap<String, String>; 2] {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|id| {
            Command::new(&exe)
                .args(["worker", "--exact", "--nocapture", "--test-threads=1"])
                .env(WORKER_ENV, format!("{id}={backend}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let results: Vec<BTreeMap<String, String>> = outputs
        .iter()
        .map(|o| {
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success(),
                "worker failed:\n{out}\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            out.lines()
                // The first may follow libtest's "test worker ... " on its line.
                .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect();
    [results[0].clone(), results[1].clone()]
}

/// What both workers must have left behind, read back from `backend`.
fn check(backend: &str, results: [BTreeMap<String, String>; 2]) {
    let [a, b] = results;
    assert_eq!(a["web_key"], b["web_key"], "one CSRF signing key for both");
    assert_eq!(a["keyid"], b["keyid"], "one signing keyring for both");
    let created: u32 = a["users_created"].parse::<u32>().unwrap() + b["users_created"].parse::<u32>().unwrap();
    assert_eq!(created, ROUNDS, "each user name created exactly once");
    runtime().block_on(async {
        let storage = open(backend).await;
        let s = storage.as_ref();
        let counter = document::read::<u64>(s, &key("test/counter.json"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.value, 2 * ROUNDS as u64, "no lost update");
        let leased = document::read::<u64>(s, &key("test/leased.json"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(leased.value, 2 * ROUNDS as u64, "the lease let one writer at a time");
        let lease = document::read::<serde_json::Value>(s, &key("test/lease.json"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            lease.value["turns"],
            2 * ROUNDS,
            "the lease's own data, stored beside its holder"
        );
        for i in 0..ROUNDS {
            assert!(store::get_user(s, &format!("user{i}")).await.unwrap().is_some());
        }
        assert_eq!(store::tokens_of(s, "tokens").await.unwrap().len(), 2 * ROUNDS as usize);

        let reg = registry(storage.clone());
        let anyone = Identity::anonymous();
        let shared = reg
            .packument(&PackageName::parse("shared").unwrap(), &anyone)
            .await
            .unwrap();
        assert_eq!(
            shared["versions"].as_object().unwrap().len(),
            2 * ROUNDS as usize,
            "every version of the shared package"
        );
        let list_key = s.package_list_key();
        let list: serde_json::Value = serde_json::from_slice(&s.read(&list_key).await.unwrap().unwrap().bytes).unwrap();
        let list: Vec<&str> = list["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for id in ["a", "b"] {
            for i in 0..ROUNDS {
                let own = format!("own-{id}-{i}");
                assert!(list.contains(&own.as_str()), "{own} in the package list {list:?}");
                reg.packument(&PackageName::parse(&own).unwrap(), &anyone)
                    .await
                    .unwrap();
            }
        }
        assert!(list.contains(&"shared"));
        let (hits, total) = reg.search("own", 0, 250, &anyone).await.unwrap();
        assert_eq!(
            total,
            2 * ROUNDS as usize,
            "every package in the search index: {hits:?}"
        );
    });
}

#[test]
fn two_processes_on_one_folder_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let backend = format!("fs:{}", dir.path().display());
    let results = two_workers(&backend);
    check(&backend, results);
}

#[test]
fn two_processes_on_one_bucket_lose_nothing() {
    let moto = Moto::start();
    moto.create_bucket("documents");
    let backend = format!("s3:documents:{}", moto.endpoint());
    let results = two_workers(&backend);
    check(&backend, results);
}
