//! Leftovers of crashes are repaired by the background task: a server killed (`kill -9`) in the
//! middle of publishes, plus leftovers planted by hand (orphan tarballs, a package folder without
//! a document, a deletion whose deleter died, package list entries missing or stale, temp
//! files), on a folder; and planted ones on S3 (moto).

mod common;

use common::moto::{Moto, S3_ENV, s3_config};
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// What is wrong in a storage folder.
#[derive(Debug, Default)]
struct Survey {
    orphan_tarballs: Vec<String>,
    temp_files: Vec<String>,
    unlisted: Vec<String>,
    listed_missing: Vec<String>,
    pending_deletions: Vec<String>,
    packages: Vec<String>,
}

impl Survey {
    fn clean(&self) -> bool {
        self.orphan_tarballs.is_empty()
            && self.temp_files.is_empty()
            && self.unlisted.is_empty()
            && self.listed_missing.is_empty()
            && self.pending_deletions.is_empty()
    }
}

fn package_dirs(root: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') || !e.path().is_dir() {
            continue;
        }
        if n.starts_with('@') {
            for p in std::fs::read_dir(e.path()).unwrap().flatten() {
                out.push((format!("{n}/{}", p.file_name().to_string_lossy()), p.path()));
            }
        } else {
            out.push((n, e.path()));
        }
    }
    out
}

fn survey(root: &Path) -> Survey {
    let mut s = Survey::default();
    let list: BTreeSet<String> = std::fs::read(root.join(".verdaccio-db.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["list"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut present = BTreeSet::new();
    for (name, dir) in package_dirs(root) {
        let doc: Option<Value> = std::fs::read(dir.join("package.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap());
        let unscoped = name.rsplit('/').next().unwrap().to_owned();
        let named: BTreeSet<String> = doc
            .as_ref()
            .and_then(|d| d["versions"].as_object())
            .map(|vs| vs.keys().map(|v| format!("{unscoped}-{v}.tgz")).collect())
            .unwrap_or_default();
        if let Some(d) = &doc {
            if d.get("_deleting").is_some() {
                s.pending_deletions.push(name.clone());
            }
            if !named.is_empty() {
                present.insert(name.clone());
                s.packages.push(name.clone());
            }
        }
        for f in std::fs::read_dir(&dir).unwrap().flatten() {
            let f = f.file_name().to_string_lossy().into_owned();
            if f.contains(".tmp-") {
                s.temp_files.push(format!("{name}/{f}"));
            } else if f.ends_with(".tgz") && !named.contains(&f) {
                s.orphan_tarballs.push(format!("{name}/{f}"));
            }
        }
    }
    s.unlisted = present.difference(&list).cloned().collect();
    s.listed_missing = list.difference(&present).cloned().collect();
    s
}

fn put(url: &str, name: &str, version: &str, tarball: &[u8]) -> u16 {
    http()
        .request(reqwest::Method::PUT, &format!("{url}{name}"))
        .json(&publish_body(name, version, tarball))
        .send()
        .map(|r| r.status)
        .unwrap_or(0)
}

const CRASH: &str = "
repair: { interval: 1h }
packages:
  '**': { access: $all, publish: $all, unpublish: $all }
";

const REPAIRING: &str = "
repair: { interval: 1s, grace: 2s }
packages:
  '**': { access: $all, publish: $all, unpublish: $all }
";

#[test]
fn crash_leftovers_on_a_folder_are_repaired() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("storage");

    // Publishes of new packages (document, then the package list) killed mid-way.
    let mut crashing = Server::start(CRASH, &root);
    let url = crashing.url();
    assert_eq!(put(&url, "planted", "1.0.0", b"planted"), 201);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ready = std::sync::Arc::new(std::sync::Barrier::new(9));
    let publishers: Vec<_> = (0..8)
        .map(|t| {
            let (url, stop, ready) = (url.clone(), stop.clone(), ready.clone());
            std::thread::spawn(move || {
                // Bodies made before the clock starts (hashing 1 MB is slow in a debug build).
                let bodies: Vec<Vec<u8>> = (0..12)
                    .map(|i| {
                        let name = format!("crash-{t}-{i}");
                        serde_json::to_vec(&publish_body(&name, "1.0.0", &noise((1 << 20) + i))).unwrap()
                    })
                    .collect();
                ready.wait();
                let http = http();
                let mut ok = 0;
                for (i, body) in bodies.into_iter().enumerate() {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let sent = http
                        .request(reqwest::Method::PUT, &format!("{url}crash-{t}-{i}"))
                        .header("content-type", "application/json")
                        .body(body)
                        .send();
                    if !sent.is_ok_and(|r| r.status == 201) {
                        break;
                    }
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    ready.wait();
    std::thread::sleep(Duration::from_millis(3000));
    let pid = crashing.pid();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(crashing.wait_exit(Duration::from_secs(10)).is_some());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged: usize = publishers.into_iter().map(|t| t.join().unwrap()).sum();
    let left = survey(&root);
    println!(
        "kill -9 after {acknowledged} acknowledged publishes left {} orphan tarballs, {} temp files, {} packages \
         missing from the list",
        left.orphan_tarballs.len(),
        left.temp_files.len(),
        left.unlisted.len()
    );

    // Planted leftovers of every kind.
    std::fs::write(root.join("planted/planted-9.9.9.tgz"), b"orphan").unwrap();
    std::fs::create_dir_all(root.join("ghost")).unwrap();
    std::fs::write(root.join("ghost/ghost-1.0.0.tgz"), b"ghost bytes").unwrap();
    std::fs::create_dir_all(root.join("@s/stale")).unwrap();
    let tomb =
        json!({"name": "@s/stale", "versions": {}, "_deleting": {"stale-1.0.0.tgz": "2000-01-01T00:00:00.000Z"}});
    std::fs::write(root.join("@s/stale/package.json"), tomb.to_string()).unwrap();
    std::fs::write(root.join("@s/stale/stale-1.0.0.tgz"), b"stale").unwrap();
    std::fs::write(root.join("planted/.tmp-0123456789abcdef"), b"half").unwrap();
    std::fs::write(root.join("planted/.package.json.tmp-1234abcd"), b"half").unwrap();
    let mut list: Value = serde_json::from_slice(&std::fs::read(root.join(".verdaccio-db.json")).unwrap()).unwrap();
    let names = list["list"].as_array_mut().unwrap();
    names.retain(|n| n != "planted");
    names.push(json!("vanished"));
    std::fs::write(root.join(".verdaccio-db.json"), list.to_string()).unwrap();
    let planted = survey(&root);
    assert!(!planted.clean());
    println!("with planted leftovers: {planted:?}");

    let server = Server::start(REPAIRING, &root);
    let url = server.url();
    // Before the grace period is over the orphan still blocks other bytes for its version...
    assert_eq!(put(&url, "ghost", "1.0.0", b"new ghost"), 409);
    let started = Instant::now();
    let mut now = survey(&root);
    while !now.clean() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(250));
        now = survey(&root);
    }
    println!("repaired after {:?}: {now:?}", started.elapsed());
    assert!(now.clean(), "{now:?}\n{}", server.log());
    assert!(!root.join("@s/stale/package.json").exists());
    assert!(!root.join("ghost").exists());
    // ...and after it, the version publishes with other bytes.
    assert_eq!(put(&url, "ghost", "1.0.0", b"new ghost"), 201);
    let http = http();
    assert_eq!(
        http.get(&format!("{url}ghost/-/ghost-1.0.0.tgz")).send().unwrap().body,
        b"new ghost"
    );
    // Everything that was acknowledged is whole.
    for name in survey(&root).packages {
        let doc = http.get(&format!("{url}{name}")).send().unwrap().json();
        for v in doc["versions"].as_object().unwrap().keys() {
            let unscoped = name.rsplit('/').next().unwrap();
            let r = http.get(&format!("{url}{name}/-/{unscoped}-{v}.tgz")).send().unwrap();
            assert_eq!(r.status, 200, "{name}@{v}");
        }
    }
    assert!(server.log().contains("repair pass"), "{}", server.log());
}

#[test]
fn planted_leftovers_on_s3_are_repaired() {
    let moto = Moto::start();
    moto.create_bucket("repair");
    let config = s3_config(&moto, "repair", "", "repair: { interval: 1s, grace: 1s }\n");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(&config, dir.path(), S3_ENV);
    let url = server.url();
    assert_eq!(put(&url, "kept", "1.0.0", b"kept"), 201);
    moto.put("repair", "kept/kept-0.0.1.tgz", b"orphan".to_vec());
    moto.put("repair", "@s/ghost/ghost-1.0.0.tgz", b"ghost".to_vec());
    moto.put("repair", "verdaccio-s3-db.json", br#"{"list": ["vanished"]}"#.to_vec());
    let started = Instant::now();
    let done = || {
        let keys = moto.keys("repair", "");
        let list = String::from_utf8(moto.get("repair", "verdaccio-s3-db.json").unwrap()).unwrap();
        !keys.iter().any(|k| k == "kept/kept-0.0.1.tgz" || k.starts_with("@s/"))
            && list.contains("\"kept\"")
            && !list.contains("vanished")
    };
    while !done() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(done(), "{:?}\n{}", moto.keys("repair", ""), server.log());
    println!("S3 leftovers repaired after {:?}", started.elapsed());
    assert!(
        moto.keys("repair", "")
            .contains(&".npm-registry/repair-lease.json".to_owned())
    );
    assert_eq!(
        http().get(&format!("{url}kept/-/kept-1.0.0.tgz")).send().unwrap().body,
        b"kept"
    );
}
