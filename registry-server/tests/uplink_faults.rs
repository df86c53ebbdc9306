//! Uplink faults: whatever goes wrong upstream (an answer that is not the packument asked for,
//! invalid JSON, 5xx, a reset, a hang, an endless body), stored data keeps being served, nothing
//! bad is stored over it, a hung upstream costs one timeout, and large tarballs reach slow
//! clients whole, downloaded to storage at upstream speed.

mod common;

use base64::Engine;
use chrono::{Duration as Days, Utc};
use common::upstream::{FakeUpstream, Fault};
use common::*;
use serde_json::json;
use sha1::Digest;
use std::time::{Duration, Instant};

fn config(upstream: &str, maxage: &str, timeout: &str, extra: &str) -> String {
    format!(
        "uplinks:\n  up:\n    url: {upstream}\n    maxage: {maxage}\n    timeout: {timeout}\n    max_fails: 100\n    fail_timeout: 1s\n{extra}\
         packages:\n  '**':\n    access: $all\n    publish: $authenticated\n    proxy: up\n"
    )
}

/// `name` upstream with one version per `versions` entry (tarball bytes), latest the last.
fn serve(fake: &FakeUpstream, name: &str, versions: &[(&str, Vec<u8>)]) {
    let mut vs = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    for (v, bytes) in versions {
        let path = format!("/{name}/-/{name}-{v}.tgz");
        let sri = format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
        );
        let sha = hex::encode(sha1::Sha1::digest(bytes));
        vs.insert(
            v.to_string(),
            json!({"name": name, "version": v, "dist": {"tarball": fake.tarball_url(&path), "integrity": sri, "shasum": sha}}),
        );
        time.insert(v.to_string(), json!((Utc::now() - Days::days(30)).to_rfc3339()));
        fake.add_tarball(&path, bytes.clone());
    }
    let latest = versions.last().unwrap().0;
    fake.add_packument(json!({"name": name, "dist-tags": {"latest": latest}, "versions": vs, "time": time}));
}

fn versions(server: &Server, name: &str) -> Vec<String> {
    let r = http().get(&format!("{}{name}", server.url())).send().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["versions"].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn a_faulty_answer_is_neither_served_nor_stored_and_the_stored_copy_serves() {
    let work = tempfile::tempdir().unwrap();
    let fake = FakeUpstream::start();
    serve(&fake, "pkg", &[("1.0.0", b"one".to_vec())]);
    let server = Server::start(
        &config(&fake.url(), "0s", "5s", "    max_packument_size: 1mb\n"),
        &work.path().join("cache"),
    );
    assert_eq!(versions(&server, "pkg"), ["1.0.0"]);
    let tarball = format!("{}pkg/-/pkg-1.0.0.tgz", server.url());
    assert_eq!(http().get(&tarball).send().unwrap().body, b"one");
    let stored = work.path().join("cache/.npm-registry/uplinks/pkg/package.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stored.exists() {
        assert!(Instant::now() < deadline, "the upstream copy is never stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    let good = std::fs::read(&stored).unwrap();

    let faults = [
        ("a string", Fault::Body(b"\"just a string\"".to_vec())),
        (
            "invalid JSON",
            Fault::Body(b"{\"name\": \"pkg\", \"versions\": {".to_vec()),
        ),
        (
            "another package",
            Fault::Body(br#"{"name": "other", "versions": {}}"#.to_vec()),
        ),
        ("no versions", Fault::Body(br#"{"name": "pkg"}"#.to_vec())),
        ("a 500", Fault::Status(500)),
        ("a 503", Fault::Status(503)),
        ("a reset", Fault::Reset(20)),
        ("an endless body", Fault::Endless),
    ];
    for (what, fault) in faults {
        fake.set_fault("pkg", Some(fault));
        // maxage 0s: every request asks upstream, and meets the fault.
        assert_eq!(versions(&server, "pkg"), ["1.0.0"], "{what}: the stored copy serves");
        let r = http().get(&tarball).send().unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, b"one".as_slice()),
            "{what}: tarballs too"
        );
        let v = http().get(&format!("{}pkg/1.0.0", server.url())).send().unwrap();
        assert_eq!(v.json()["version"], "1.0.0", "{what}");
        assert_eq!(
            std::fs::read(&stored).unwrap(),
            good,
            "{what}: nothing stored over the good copy"
        );
    }
    assert!(server.log().contains("not its packument"), "{}", server.log());
    assert!(server.log().contains("max_packument_size"), "{}", server.log());

    // Upstream well again: its new version shows.
    fake.set_fault("pkg", None);
    serve(&fake, "pkg", &[("1.0.0", b"one".to_vec()), ("1.1.0", b"two".to_vec())]);
    assert_eq!(versions(&server, "pkg"), ["1.0.0", "1.1.0"]);

    // A package never seen before has nothing to fall back on: 502 naming the uplink.
    fake.set_fault("fresh", Some(Fault::Body(b"\"just a string\"".to_vec())));
    let r = http().get(&format!("{}fresh", server.url())).send().unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("uplink up"),
        "{}",
        r.text()
    );
    assert!(!work.path().join("cache/.npm-registry/uplinks/fresh").exists());
    // And the server goes on serving.
    assert_eq!(versions(&server, "pkg"), ["1.0.0", "1.1.0"]);
}

#[test]
fn a_hung_upstream_costs_one_timeout() {
    let work = tempfile::tempdir().unwrap();
    let fake = FakeUpstream::start();
    serve(&fake, "pkg", &[("1.0.0", b"one".to_vec()), ("2.0.0", b"two".to_vec())]);
    let timeout = Duration::from_secs(3);
    let server = Server::start(&config(&fake.url(), "0s", "3s", ""), &work.path().join("cache"));
    assert_eq!(versions(&server, "pkg"), ["1.0.0", "2.0.0"]);
    assert_eq!(
        http()
            .get(&format!("{}pkg/-/pkg-1.0.0.tgz", server.url()))
            .send()
            .unwrap()
            .body,
        b"one"
    );
    for what in ["pkg", "pkg/-/pkg-2.0.0.tgz", "never-seen"] {
        fake.set_fault(what, Some(Fault::Hang));
    }
    // A bound of one timeout and a half: two would be 6 s.
    let bound = timeout.mul_f32(1.6);
    let started = Instant::now();
    assert_eq!(versions(&server, "pkg"), ["1.0.0", "2.0.0"], "the stored copy serves");
    assert!(started.elapsed() < bound, "stale copy after {:?}", started.elapsed());
    // A stored tarball needs no upstream at all; one not stored yet waits one timeout.
    let started = Instant::now();
    let r = http()
        .get(&format!("{}pkg/-/pkg-1.0.0.tgz", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.body, b"one");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    let started = Instant::now();
    let r = http()
        .get(&format!("{}pkg/-/pkg-2.0.0.tgz", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(started.elapsed() < bound, "tarball after {:?}", started.elapsed());
    let started = Instant::now();
    let r = http().get(&format!("{}never-seen", server.url())).send().unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("uplink up"),
        "{}",
        r.text()
    );
    assert!(
        started.elapsed() < bound,
        "unknown package after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_large_tarball_reaches_a_slow_client_whole_and_is_stored_at_upstream_speed() {
    let work = tempfile::tempdir().unwrap();
    let fake = FakeUpstream::start();
    let big = noise(48 << 20);
    serve(&fake, "big", &[("1.0.0", big.clone())]);
    // The whole download takes longer than the timeout: the timeout bounds each read only.
    let server = Server::start(&config(&fake.url(), "2m", "2s", ""), &work.path().join("cache"));
    let stored = work.path().join("cache/.npm-registry/uplinks/big/big-1.0.0.tgz");
    let mut slow = Download::start(server.port, "/big/-/big-1.0.0.tgz");
    assert_eq!((slow.status, slow.content_length), (200, big.len()));
    let started = Instant::now();
    while !stored.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not stored while the client reads slowly"
        );
        slow.read_some(32 * 1024);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        slow.body.len() < big.len() / 2,
        "stored only after the client read {} of {} bytes",
        slow.body.len(),
        big.len()
    );
    // Slower still, past the timeout, before reading the rest.
    while started.elapsed() < Duration::from_secs(3) {
        slow.read_some(32 * 1024);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(slow.finish() == big, "the slow client got the whole file");
    assert!(std::fs::read(&stored).unwrap() == big);
    assert_eq!(fake.hits("/big/-/big-1.0.0.tgz"), 1);
    // Later clients read it from storage.
    let again = http()
        .get(&format!("{}big/-/big-1.0.0.tgz", server.url()))
        .send()
        .unwrap();
    assert!(again.status == 200 && again.body == big);
    assert_eq!(fake.hits("/big/-/big-1.0.0.tgz"), 1);
}

#[test]
fn endless_and_oversized_bodies_stop_at_the_limits() {
    let work = tempfile::tempdir().unwrap();
    let fake = FakeUpstream::start();
    serve(&fake, "pkg", &[("1.0.0", noise(3 << 20)), ("2.0.0", noise(1000))]);
    fake.set_fault("/pkg/-/pkg-2.0.0.tgz", Some(Fault::Endless));
    fake.set_fault("endless", Some(Fault::Endless));
    let limits = "    max_packument_size: 2mb\n    max_tarball_size: 2mb\n";
    let server = Server::start(&config(&fake.url(), "2m", "30s", limits), &work.path().join("cache"));
    let r = http().get(&format!("{}endless", server.url())).send().unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("max_packument_size"), "{}", r.text());
    // A tarball that says it is too large is refused before its body; one that does not say is
    // cut at the limit. Neither is stored.
    let r = http()
        .get(&format!("{}pkg/-/pkg-1.0.0.tgz", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("max_tarball_size"), "{}", r.text());
    let cut = Download::start(server.port, "/pkg/-/pkg-2.0.0.tgz");
    let received = cut.finish();
    assert!(
        received.len() < 3 << 20,
        "{} bytes of an endless tarball",
        received.len()
    );
    for file in ["pkg-1.0.0.tgz", "pkg-2.0.0.tgz"] {
        assert!(
            !work
                .path()
                .join(format!("cache/.npm-registry/uplinks/pkg/{file}"))
                .exists()
        );
    }
    assert!(server.log().contains("max_tarball_size"), "{}", server.log());
    assert!(
        server.memory_kib("VmHWM") < 200 * 1024,
        "peak RSS {} KiB",
        server.memory_kib("VmHWM")
    );
    assert_eq!(versions(&server, "pkg"), ["1.0.0", "2.0.0"], "still serving");
}

/// Issue 22, item 12: an unreachable uplink's cause reaches the npm user, first as the failure
/// itself, then in the "marked down" answer that follows repeated failures; nothing beyond the
/// uplink's URL (no package URL, no internal error chain).
#[test]
fn npm_prints_the_cause_of_an_uplink_failure() {
    let closed = free_port();
    let url = format!("http://127.0.0.1:{closed}/");
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        &format!(
            "uplinks:\n  npmjs:\n    url: {url}\n    max_fails: 2\n    fail_timeout: 5m\n\
             packages:\n  '**':\n    access: $all\n    publish: $authenticated\n    proxy: npmjs\n"
        ),
        &work.path().join("storage"),
    );
    let client = Client::anonymous(&server.url());
    let dir = project(work.path(), "app");
    let expected = format!("uplink npmjs ({url}): connection refused");
    let mut outputs = Vec::new();
    for _ in 0..3 {
        let out = client.npm(&dir, &["install", "missing-everywhere", "--fetch-retries=0"]);
        assert!(!out.status.success());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    println!("npm's output for a dead uplink:\n{}\n---\n{}", outputs[0], outputs[2]);
    assert!(outputs[0].contains(&expected), "{}", outputs[0]);
    let down = format!("uplink npmjs ({url}) is marked down after repeated failures (last: connection refused)");
    assert!(outputs[2].contains(&down), "{}", outputs[2]);
    for o in &outputs {
        assert!(
            !o.contains("error sending request") && !o.contains("tcp connect"),
            "{o}"
        );
    }
}
