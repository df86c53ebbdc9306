//! The hot path: cached packuments and tarballs stay correct across replicas, compressed
//! variants decode to the same document, the server reports metrics and request ids, and
//! it shuts down without cutting off downloads in flight.

mod common;

use common::*;
use std::io::Read;
use std::time::{Duration, Instant};

const CONFIG: &str = "
packument_cache:
  revalidate_after: 500ms
tarball_cache:
  revalidate_after: 500ms
packages:
  '**': { access: $all, publish: $all, unpublish: $all }
";

fn publish(server: &Server, name: &str, version: &str) {
    let r = http()
        .request(reqwest::Method::PUT, &format!("{}{name}", server.url()))
        .json(&publish_body(name, version, version.as_bytes()))
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
}

fn versions(server: &Server, name: &str) -> usize {
    let doc = http().get(&format!("{}{name}", server.url())).send().unwrap().json();
    doc["versions"].as_object().map_or(0, |v| v.len())
}

#[test]
fn replicas_converge_within_the_revalidation_interval() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let a = Server::start(CONFIG, &storage);
    let b = Server::start(CONFIG, &storage);
    publish(&a, "shared", "1.0.0");
    assert_eq!(versions(&b, "shared"), 1); // b caches it now
    publish(&a, "shared", "1.0.1");
    assert_eq!(versions(&a, "shared"), 2, "a replica sees its own writes at once");
    let start = Instant::now();
    while versions(&b, "shared") != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the other replica never saw the publish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "replica b saw a's publish after {:?} (bound: revalidate_after = 500ms)",
        start.elapsed()
    );
    // A tag change on b invalidates b's own cache at once.
    let r = http()
        .request(
            reqwest::Method::PUT,
            &format!("{}-/package/shared/dist-tags/old", b.url()),
        )
        .json(&serde_json::json!("1.0.0"))
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let doc = http().get(&format!("{}shared", b.url())).send().unwrap().json();
    assert_eq!(doc["dist-tags"]["old"], "1.0.0");
}

fn tarball_status(server: &Server, name: &str, version: &str) -> u16 {
    http()
        .get(&format!("{}{name}/-/{name}-{version}.tgz", server.url()))
        .send()
        .unwrap()
        .status
}

#[test]
fn an_unpublish_on_one_replica_ends_tarball_downloads_on_the_others_within_the_bound() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let a = Server::start(CONFIG, &storage);
    let b = Server::start(CONFIG, &storage);
    publish(&a, "gone", "1.0.0");
    for _ in 0..3 {
        assert_eq!(tarball_status(&b, "gone", "1.0.0"), 200);
    }
    let metrics = http().get(&format!("{}metrics", b.url())).send().unwrap().text();
    assert!(
        metrics.contains("npm_registry_tarball_cache_total{result=\"hit\"} 2"),
        "the second and third download come from memory:\n{metrics}"
    );

    let rev = http().get(&format!("{}gone", a.url())).send().unwrap().json()["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http()
        .request(reqwest::Method::DELETE, &format!("{}gone/-rev/{rev}", a.url()))
        .send()
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        tarball_status(&a, "gone", "1.0.0"),
        404,
        "the replica that unpublished, at once"
    );
    let start = Instant::now();
    while tarball_status(&b, "gone", "1.0.0") != 404 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the other replica kept serving the unpublished tarball"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "replica b stopped serving the tarball after {:?} (bound: tarball_cache.revalidate_after = 500ms)",
        start.elapsed()
    );
}

#[test]
fn compressed_variants_metrics_and_request_ids() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(CONFIG, &work.path().join("storage"));
    let mut body = publish_body("big", "1.0.0", b"x");
    body["readme"] = serde_json::json!("lorem ipsum ".repeat(2000));
    let r = http()
        .request(reqwest::Method::PUT, &format!("{}big", server.url()))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());

    let url = format!("{}big", server.url());
    let plain = http().get(&url).send().unwrap();
    assert!(plain.headers.get("content-encoding").is_none());
    for (accept, encoding) in [("gzip", "gzip"), ("gzip, deflate, br", "br")] {
        let r = raw_get(&server, "/big", accept);
        assert_eq!(r.headers["content-encoding"], encoding);
        assert!(r.body.len() < plain.body.len() / 5, "{encoding} is smaller");
        let mut decoded = Vec::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(&r.body[..])
                .read_to_end(&mut decoded)
                .unwrap(),
            _ => brotli::Decompressor::new(&r.body[..], 4096)
                .read_to_end(&mut decoded)
                .unwrap(),
        };
        assert!(decoded == plain.body, "{encoding} does not decode to the same document");
        assert_eq!(r.headers["etag"], plain.headers["etag"]);
    }

    let r = http().get(&url).header("x-request-id", "trace-me-123").send().unwrap();
    assert_eq!(r.headers["x-request-id"], "trace-me-123");
    let r = http().get(&url).send().unwrap();
    assert!(
        !r.headers["x-request-id"].is_empty(),
        "an id is made when the client sends none"
    );

    let m = http().get(&format!("{}metrics", server.url())).send().unwrap().text();
    for line in [
        "npm_registry_http_requests_total{route=\"packument\",method=\"GET\",status=\"200\"}",
        "npm_registry_http_requests_total{route=\"publish\",method=\"PUT\",status=\"201\"}",
        "npm_registry_packument_cache_total{result=\"hit\"}",
        "npm_registry_packument_cache_total{result=\"miss\"}",
        "npm_registry_http_request_duration_seconds_bucket{le=",
        "npm_registry_storage_operation_duration_seconds_count{op=\"write\"}",
    ] {
        assert!(m.contains(line), "metrics lack {line}:\n{m}");
    }
    assert!(server.log().contains("trace-me-123"), "the request id is in the log");
}

/// A GET with `Accept-Encoding`, over a raw socket so no client decompresses it for us.
fn raw_get(server: &Server, path: &str, accept_encoding: &str) -> Res {
    raw_request_with(server.port, "GET", path, &[("Accept-Encoding", accept_encoding)], b"")
}

#[test]
fn shutdown_stops_accepting_and_finishes_downloads_in_flight() {
    let work = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        &format!("max_body_size: 64mb\n{ANYONE_PUBLISHES}"),
        &work.path().join("storage"),
    );
    // Larger than the loopback socket buffers, so that the server is still writing it.
    let tarball = noise(24 << 20);
    let r = http()
        .request(reqwest::Method::PUT, &format!("{}big", server.url()))
        .json(&publish_body("big", "1.0.0", &tarball))
        .send()
        .unwrap();
    assert!(r.is_success(), "{}", r.text());

    let download = Download::start(server.port, "/big/-/big-1.0.0.tgz");
    server.terminate();
    // New connections are refused once the signal is handled, while the download is paused.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", server.port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(download.finish() == tarball, "the download in flight was cut short");
    let status = server.wait_exit(Duration::from_secs(20)).expect("the server exits");
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(server.log().contains("finishing in-flight requests"));
}
