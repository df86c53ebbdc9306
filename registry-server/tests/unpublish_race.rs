//! A whole-package unpublish racing a publish to the same package never leaves an acknowledged
//! version without its tarball: on a folder and on S3 (moto), with one process and with two
//! sharing the storage. Each trial publishes 1.0.0, then starts `DELETE /:pkg/-rev/:rev` and a
//! publish together (of a new version, or of 1.0.0 again with the same or other bytes), and then
//! checks that every version the package shows downloads, with the acknowledged bytes.

mod common;

use common::moto::{Moto, S3_ENV, s3_config};
use common::*;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const TRIALS: usize = 200;
const THREADS: usize = 4;

#[derive(Default, Debug)]
struct Counts {
    published: usize,
    unpublished: usize,
    /// Versions a client got 201 for that the package shows but whose tarball is gone or other.
    acknowledged_without_tarball: usize,
    /// Versions the package shows (acknowledged or not) whose tarball does not download.
    shown_without_tarball: usize,
    /// Requests that failed otherwise than the race allows.
    unexpected: Vec<String>,
}

/// One trial on package `name`: the unpublish goes to `a`, the publish to `b`.
fn trial(a: &str, b: &str, name: &str, variant: usize, http: &Blocking, counts: &mut Counts) {
    let first = format!("{name} 1.0.0");
    let r = http
        .request(reqwest::Method::PUT, &format!("{a}{name}"))
        .json(&publish_body(name, "1.0.0", first.as_bytes()))
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "setup publish: {}", r.text());
    let rev = http.get(&format!("{a}{name}?write=true")).send().unwrap().json()["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let (version, bytes) = match variant {
        0 => ("1.0.1", format!("{name} 1.0.1")),
        1 => ("1.0.0", first.clone()),
        _ => ("1.0.0", format!("{name} 1.0.0 again")),
    };
    let start = Arc::new(Barrier::new(2));
    let unpublish = {
        let (url, start) = (format!("{a}{name}/-rev/{rev}"), start.clone());
        std::thread::spawn(move || {
            let http = blocking_client();
            start.wait();
            http.request(reqwest::Method::DELETE, &url).send().unwrap()
        })
    };
    let body = publish_body(name, version, bytes.as_bytes());
    start.wait();
    // Stagger a little, so that the publish lands at every point of the unpublish.
    std::thread::sleep(Duration::from_micros(rand::random_range(0..3000)));
    let published = http
        .request(reqwest::Method::PUT, &format!("{b}{name}"))
        .json(&body)
        .send()
        .unwrap();
    let unpublished = unpublish.join().unwrap();

    match unpublished.status {
        200 => counts.unpublished += 1,
        409 => {} // the publish changed the revision first
        s => counts
            .unexpected
            .push(format!("{name}: unpublish {s} {}", unpublished.text())),
    }
    match published.status {
        201 => counts.published += 1,
        403 | 409 => {} // 1.0.0 still there, or its other bytes still stored
        s => counts
            .unexpected
            .push(format!("{name}: publish {s} {}", published.text())),
    }

    // Ask both processes: each must agree with storage.
    for base in [a, b] {
        let doc = http.get(&format!("{base}{name}")).send().unwrap();
        if doc.status == 404 {
            continue;
        }
        assert_eq!(doc.status, 200, "{}", doc.text());
        let doc = doc.json();
        for v in doc["versions"].as_object().unwrap().keys() {
            let tarball = http.get(&format!("{base}{name}/-/{name}-{v}.tgz")).send().unwrap();
            let acknowledged = published.status == 201 && v == version;
            if acknowledged && (tarball.status != 200 || tarball.body != bytes.as_bytes()) {
                counts.acknowledged_without_tarball += 1;
                eprintln!("{name}@{v}: acknowledged, tarball {}", tarball.status);
            }
            if tarball.status != 200 {
                counts.shown_without_tarball += 1;
                eprintln!("{name}@{v}: shown, tarball {}", tarball.status);
            }
        }
    }
}

/// Runs the trials over `urls` (one or two processes) and returns the counts.
fn race(label: &str, urls: [String; 2]) -> Counts {
    let per_thread = TRIALS / THREADS;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let urls = urls.clone();
            std::thread::spawn(move || {
                let http = blocking_client();
                let mut counts = Counts::default();
                for i in 0..per_thread {
                    let n = t * per_thread + i;
                    trial(&urls[0], &urls[1], &format!("race-{n}"), n % 3, &http, &mut counts);
                }
                counts
            })
        })
        .collect();
    let mut total = Counts::default();
    for t in threads {
        let c = t.join().unwrap();
        total.published += c.published;
        total.unpublished += c.unpublished;
        total.acknowledged_without_tarball += c.acknowledged_without_tarball;
        total.shown_without_tarball += c.shown_without_tarball;
        total.unexpected.extend(c.unexpected);
    }
    println!(
        "unpublish/publish race [{label}]: {TRIALS} trials, {} publishes acknowledged, {} unpublishes done, \
         {} acknowledged versions without their tarball, {} shown versions without a tarball",
        total.published, total.unpublished, total.acknowledged_without_tarball, total.shown_without_tarball
    );
    total
}

fn check(label: &str, counts: &Counts) {
    assert!(counts.unexpected.is_empty(), "[{label}] {:#?}", counts.unexpected);
    assert_eq!(counts.acknowledged_without_tarball, 0, "[{label}] {counts:?}");
    assert_eq!(counts.shown_without_tarball, 0, "[{label}] {counts:?}");
    // The race ran both ways: some unpublishes won, some publishes landed.
    assert!(counts.published > 0 && counts.unpublished > 0, "[{label}] {counts:?}");
}

/// After the race, a package whose unpublish won can be published again at the same version.
fn republish_after_unpublish(url: &str) {
    let http = blocking_client();
    let name = "race-again";
    let r = http
        .request(reqwest::Method::PUT, &format!("{url}{name}"))
        .json(&publish_body(name, "1.0.0", b"one"))
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let rev = http.get(&format!("{url}{name}?write=true")).send().unwrap().json()["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .request(reqwest::Method::DELETE, &format!("{url}{name}/-rev/{rev}"))
        .send()
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(http.get(&format!("{url}{name}")).send().unwrap().status, 404);
    let r = http
        .request(reqwest::Method::PUT, &format!("{url}{name}"))
        .json(&publish_body(name, "1.0.0", b"two"))
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        http.get(&format!("{url}{name}/-/{name}-1.0.0.tgz"))
            .send()
            .unwrap()
            .body,
        b"two"
    );
}

#[test]
fn unpublish_racing_publish_on_a_folder() {
    let work = tempfile::tempdir().unwrap();
    let a = Server::start(ANYONE_PUBLISHES, &work.path().join("one"));
    let one = race("folder, one process", [a.url(), a.url()]);
    republish_after_unpublish(&a.url());
    let shared = work.path().join("two");
    let b = Server::start(ANYONE_PUBLISHES, &shared);
    let c = Server::start(ANYONE_PUBLISHES, &shared);
    let two = race("folder, two processes", [b.url(), c.url()]);
    republish_after_unpublish(&c.url());
    check("folder, one process", &one);
    check("folder, two processes", &two);
}

#[test]
fn unpublish_racing_publish_on_s3() {
    let moto = Moto::start();
    for (bucket, label, processes) in [("race-one", "S3, one process", 1), ("race-two", "S3, two processes", 2)] {
        moto.create_bucket(bucket);
        let config = s3_config(&moto, bucket, "", "");
        let dir = tempfile::tempdir().unwrap();
        let a = Server::start_env(&config, dir.path(), S3_ENV);
        let b = (processes == 2).then(|| Server::start_env(&config, dir.path(), S3_ENV));
        let second = b.as_ref().map(Server::url).unwrap_or_else(|| a.url());
        let counts = race(label, [a.url(), second.clone()]);
        republish_after_unpublish(&second);
        check(label, &counts);
    }
}
