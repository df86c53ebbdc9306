//! Pull-through caching: uplinks, cache survival when upstream is gone, request coalescing,
//! release-age quarantine and block lists, integrity checks, audit passthrough, and a real install
//! through the public upstream.

mod common;

use base64::Engine;
use chrono::{Duration as Days, Utc};
use common::upstream::FakeUpstream;
use common::*;
use serde_json::{Value, json};
use sha1::Digest;
use std::time::{Duration, Instant};

/// `maxage: 0s` revalidates on every request (to see upstream failures at once).
fn proxy_config(upstream: &str, maxage: &str, extra_rule: &str) -> String {
    format!(
        "uplinks:\n  up:\n    url: {upstream}\n    maxage: {maxage}\n    timeout: 5s\n    max_fails: 2\n    fail_timeout: 1m\n\
         packages:\n  '**':\n    access: $all\n    publish: $authenticated\n    proxy: up\n{extra_rule}"
    )
}

/// An upstream packument for `name` with `versions` (version, tarball bytes, age in days).
fn serve(fake: &FakeUpstream, name: &str, versions: &[(&str, Vec<u8>, i64)], latest: &str) {
    let mut vs = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    for (v, bytes, age) in versions {
        let path = format!("/{name}/-/{}-{v}.tgz", name.rsplit('/').next().unwrap());
        let sri = format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
        );
        let sha = hex::encode(sha1::Sha1::digest(bytes));
        vs.insert(
            v.to_string(),
            json!({"name": name, "version": v, "dist": {"tarball": fake.tarball_url(&path), "integrity": sri, "shasum": sha}}),
        );
        time.insert(v.to_string(), json!((Utc::now() - Days::days(*age)).to_rfc3339()));
        fake.add_tarball(&path, bytes.clone());
    }
    fake.add_packument(json!({"name": name, "dist-tags": {"latest": latest}, "versions": vs, "time": time}));
}

#[test]
fn cached_packages_install_after_the_upstream_is_gone() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let upstream = Server::start_default(&w.join("upstream"));
    let publisher = Client::new(&upstream.url());
    publisher.npm_ok(
        &write_package(w, "@up/dep", "1.0.0", &[], "module.exports = 'dep';\n"),
        &["publish"],
    );
    let lib = write_package(
        w,
        "cached-lib",
        "2.0.0",
        &[("@up/dep", "^1.0.0")],
        "module.exports = require('@up/dep') + '!';\n",
    );
    publisher.npm_ok(&lib, &["publish"]);

    let cache = Server::start(&proxy_config(&upstream.url(), "0s", ""), &w.join("cache"));
    let first = Client::new(&cache.url());
    let p = project(w, "first");
    first.npm_ok(&p, &["install", "cached-lib"]);
    let lock = std::fs::read_to_string(p.join("package-lock.json")).unwrap();
    assert!(lock.contains("node_modules/@up/dep"), "{lock}");
    drop(upstream);

    // Upstream gone, a fresh npm cache: everything comes from our storage.
    let second = Client::new(&cache.url());
    let p = project(w, "second");
    second.npm_ok(&p, &["install", "cached-lib"]);
    assert_eq!(second.require(&p, "cached-lib"), "dep!");
    // A package never seen before answers 502 naming the uplink, at once.
    let started = Instant::now();
    let r = http().get(&format!("{}never-seen", cache.url())).send().unwrap();
    assert!(r.status == 502 || r.status == 504, "{} {}", r.status, r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("uplink up"),
        "{}",
        r.text()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Upstream data is kept apart from local packages.
    assert!(w.join("cache/.npm-registry/uplinks/cached-lib/package.json").exists());
    assert!(!w.join("cache/cached-lib").exists());
}

#[test]
fn fifty_concurrent_installs_make_one_upstream_request_each() {
    let work = tempfile::tempdir().unwrap();
    let fake = FakeUpstream::start();
    serve(
        &fake,
        "popular",
        &[("1.0.0", b"popular tarball bytes".to_vec(), 30)],
        "1.0.0",
    );
    // Slow answers make the 50 requests really overlap.
    fake.set_delay(Duration::from_millis(300));
    let cache = Server::start(&proxy_config(&fake.url(), "2m", ""), &work.path().join("cache"));
    let url = cache.url();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let http = http();
                let doc = http
                    .get(&format!("{url}popular"))
                    .header("accept", "application/vnd.npm.install-v1+json")
                    .send()
                    .unwrap();
                assert_eq!(doc.status, 200, "{}", doc.text());
                let tarball = doc.json()["versions"]["1.0.0"]["dist"]["tarball"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert!(tarball.starts_with(&url), "tarball URLs point at us: {tarball}");
                let t = http.get(&tarball).send().unwrap();
                assert_eq!(t.body, b"popular tarball bytes");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(fake.hits("popular"), 1, "one packument request upstream");
    assert_eq!(
        fake.hits("/popular/-/popular-1.0.0.tgz"),
        1,
        "one tarball request upstream"
    );
}

#[test]
fn quarantine_block_list_and_integrity() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let fake = FakeUpstream::start();
    serve(
        &fake,
        "young",
        &[
            ("1.0.0", npm_pack(w, "young", "1.0.0"), 30),
            ("1.1.0", npm_pack(w, "young", "1.1.0"), 1),
        ],
        "1.1.0",
    );
    serve(
        &fake,
        "@acme/blocked",
        &[
            ("1.0.0", npm_pack(w, "@acme/blocked", "1.0.0"), 30),
            ("2.0.0", npm_pack(w, "@acme/blocked", "2.0.0"), 30),
        ],
        "2.0.0",
    );
    serve(&fake, "tampered", &[("1.0.0", b"the real bytes".to_vec(), 30)], "1.0.0");
    fake.add_tarball("/tampered/-/tampered-1.0.0.tgz", b"evil bytes".to_vec());
    let rule = "    quarantine: 7d\n    block: ['@acme/blocked@>=2.0.0']\n";
    let cache = Server::start(&proxy_config(&fake.url(), "2m", rule), &w.join("cache"));
    let url = cache.url();

    // Published yesterday: absent, and latest falls back to the previous version.
    let doc = http().get(&format!("{url}young")).send().unwrap().json();
    let versions: Vec<_> = doc["versions"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(versions, ["1.0.0"]);
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert_eq!(
        http()
            .get(&format!("{url}young/-/young-1.1.0.tgz"))
            .send()
            .unwrap()
            .status,
        404
    );
    let npm = Client::new(&url);
    let p = project(w, "q");
    npm.npm_ok(&p, &["install", "young"]);
    let installed = std::fs::read_to_string(p.join("node_modules/young/package.json")).unwrap();
    assert!(installed.contains("\"version\": \"1.0.0\""), "{installed}");
    assert!(!npm.npm(&p, &["install", "young@1.1.0"]).status.success());

    // A blocked version cannot be installed; the others can.
    assert!(!npm.npm(&p, &["install", "@acme/blocked@2.0.0"]).status.success());
    npm.npm_ok(&p, &["install", "@acme/blocked"]);
    let installed = std::fs::read_to_string(p.join("node_modules/@acme/blocked/package.json")).unwrap();
    assert!(installed.contains("\"version\": \"1.0.0\""), "{installed}");

    // A tarball that does not match its integrity is refused and not stored.
    let r = http()
        .get(&format!("{url}tampered/-/tampered-1.0.0.tgz"))
        .send()
        .unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    let msg = r.json()["error"].as_str().unwrap().to_owned();
    assert!(msg.contains("does not match") && msg.contains("uplink up"), "{msg}");
    assert!(
        !w.join("cache/.npm-registry/uplinks/tampered/tampered-1.0.0.tgz")
            .exists()
    );
}

#[test]
fn large_tarballs_stream_while_they_download_and_are_stored_only_when_verified() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let fake = FakeUpstream::start();
    let big = noise(3 << 20);
    serve(&fake, "big", &[("1.0.0", big.clone(), 30)], "1.0.0");
    serve(&fake, "forged", &[("1.0.0", big.clone(), 30)], "1.0.0");
    let mut evil = big.clone();
    evil[2 << 20] ^= 1;
    fake.add_tarball("/forged/-/forged-1.0.0.tgz", evil);
    // Upstream sends the first MiB, then waits for the test.
    fake.pause_tarballs_after(1 << 20);
    let cache = Server::start(&proxy_config(&fake.url(), "2m", ""), &w.join("cache"));
    let stored = w.join("cache/.npm-registry/uplinks/big/big-1.0.0.tgz");

    // Bytes reach the client while upstream is still sending; nothing is committed yet.
    let first = Download::start(cache.port, "/big/-/big-1.0.0.tgz");
    assert_eq!((first.status, first.content_length), (200, big.len()));
    assert!(!first.body.is_empty());
    assert!(!stored.exists(), "stored before it was whole and verified");
    // A second request, during the download or after it, makes no second upstream request.
    let url = cache.url();
    let second = std::thread::spawn(move || http().get(&format!("{url}big/-/big-1.0.0.tgz")).send().unwrap());
    fake.release();
    assert!(first.finish() == big, "the streamed body is the upstream file");
    let second = second.join().unwrap();
    assert!(second.status == 200 && second.body == big);
    assert_eq!(fake.hits("/big/-/big-1.0.0.tgz"), 1, "one upstream download");
    // Stored from the spool file once verified, beside the clients' downloads.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stored.exists() {
        assert!(Instant::now() < deadline, "never stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::fs::read(&stored).unwrap() == big, "stored once verified");

    // A large file that does not match its integrity is broken off before its end, and not kept.
    let forged = Download::start(cache.port, "/forged/-/forged-1.0.0.tgz");
    fake.release();
    let received = forged.finish();
    assert!(received.len() < big.len(), "a forged file was delivered whole");
    assert!(
        cache.log().contains("does not match") && cache.log().contains("uplink up"),
        "{}",
        cache.log()
    );
    assert!(!w.join("cache/.npm-registry/uplinks/forged/forged-1.0.0.tgz").exists());
    // The server goes on serving.
    assert_eq!(http().get(&format!("{}big", cache.url())).send().unwrap().status, 200);
}

#[test]
fn audit_requests_go_to_the_uplink() {
    let work = tempfile::tempdir().unwrap();
    let upstream = Server::start_default(&work.path().join("up"));
    let cache = Server::start(&proxy_config(&upstream.url(), "0s", ""), &work.path().join("cache"));
    // Our own server as the uplink does not answer audits (404): the answer is passed through.
    let r = http()
        .request(
            reqwest::Method::POST,
            &format!("{}-/npm/v1/security/advisories/bulk", cache.url()),
        )
        .json(&json!({"left-pad": ["1.0.0"]}))
        .send()
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        upstream.log().contains("/-/npm/v1/security/advisories/bulk"),
        "the uplink was asked"
    );
}

#[test]
fn real_project_installs_through_the_public_upstream() {
    let upstream = std::process::Command::new("npm")
        .args(["config", "get", "registry"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let reachable = !upstream.is_empty()
        && http()
            .get(&format!("{}{}", upstream.trim_end_matches('/'), "/-/ping"))
            .send()
            .is_ok_and(|r| r.status < 500);
    if !reachable {
        println!("skipped: the upstream registry from `npm config get registry` ({upstream:?}) cannot be reached");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let config = format!(
        "uplinks:\n  public:\n    url: {upstream}\n    timeout: 60s\npackages:\n  '**':\n    access: $all\n    publish: $authenticated\n    proxy: public\n"
    );
    let server = Server::start(&config, &work.path().join("storage"));
    let npm = Client::new(&server.url());
    let p = project(work.path(), "big-project");
    let started = Instant::now();
    let out = npm
        .command("npm", &p)
        .args(["install", "express", "react", "webpack", "typescript", "eslint", "jest"])
        .env("npm_config_omit_lockfile_registry_resolved", "false")
        .output()
        .unwrap();
    ok(out, "npm install through the public upstream");
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(p.join("package-lock.json")).unwrap()).unwrap();
    let packages = lock["packages"].as_object().unwrap();
    let installed: Vec<_> = packages.iter().filter(|(k, _)| !k.is_empty()).collect();
    println!(
        "{} packages installed through the cache in {:?}",
        installed.len(),
        started.elapsed()
    );
    assert!(installed.len() >= 300, "only {} packages", installed.len());
    for (path, entry) in installed {
        if let Some(resolved) = entry["resolved"].as_str() {
            assert!(resolved.starts_with(&server.url()), "{path} resolved from {resolved}");
        }
    }
}

/// With no config file, as with Verdaccio's default config, public packages install through the
/// server: it proxies the registry the local npm is configured with (`--uplink` names another,
/// `--no-uplink` none), and says which in its start line.
#[test]
fn without_a_config_file_the_local_npms_registry_is_the_uplink() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let fake = FakeUpstream::start();
    let bytes = npm_pack(w, "public-lib", "1.0.0");
    serve(&fake, "public-lib", &[("1.0.0", bytes, 30)], "1.0.0");
    let folder = |label: &str| {
        let d = w.join(label);
        std::fs::create_dir_all(&d).unwrap();
        d
    };

    // `npm config get registry` answers what npm is configured with (here by its environment).
    let from_npm = folder("from-npm");
    let server = Server::start_args(&[], &from_npm, &[("npm_config_registry", &fake.url())]);
    assert!(
        server.log().contains(&format!("uplink={}", fake.url())),
        "{}",
        server.log()
    );
    let npm = Client::anonymous(&server.url());
    let p = project(w, "through-npm-registry");
    npm.npm_ok(&p, &["install", "public-lib"]);
    assert_eq!(npm.require(&p, "public-lib"), "public-lib@1.0.0");
    assert!(
        from_npm
            .join("storage/.npm-registry/uplinks/public-lib/package.json")
            .exists()
    );
    drop(server);

    // --uplink names another registry than npm's.
    let named = folder("named");
    let server = Server::start_args(
        &["--uplink", &fake.url()],
        &named,
        &[("npm_config_registry", "http://127.0.0.1:9/")],
    );
    let r = http().get(&format!("{}public-lib", server.url())).send().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    drop(server);

    // --no-uplink, or no npm to ask: only what is published here, and the log says so.
    for (label, args, env) in [
        ("none", vec!["--no-uplink"], vec![("npm_config_registry", fake.url())]),
        ("no-npm", vec![], vec![("PATH", "/nonexistent".to_owned())]),
    ] {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let server = Server::start_args(&args, &folder(label), &env);
        let log = server.log();
        assert!(
            log.contains("no uplink") && log.contains("uplink=none"),
            "{label}: {log}"
        );
        let r = http().get(&format!("{}public-lib", server.url())).send().unwrap();
        assert_eq!(r.status, 404, "{label}: {}", r.text());
    }
}
