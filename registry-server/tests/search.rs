//! Search from the shared index: 10,000 packages laid out as Verdaccio leaves them (no index yet)
//! are indexed by the first repair pass, each query then answers in milliseconds with memory
//! bounded, and publishes and unpublishes reach the index of this replica at once and of another
//! replica within the revalidation interval.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const PACKAGES: usize = 10_000;
const WORDS: &[&str] = &[
    "fast", "tiny", "parser", "http", "client", "stream", "color", "date", "logger", "cache", "queue", "test",
    "router", "schema", "crypto", "image", "yaml", "json", "cli", "config",
];

fn name_of(i: usize) -> String {
    if i.is_multiple_of(5) {
        format!("@team{}/lib-{i:05}", (i / 5) % 10)
    } else {
        format!("pkg-{i:05}")
    }
}

/// Writes `PACKAGES` packuments and the package list, as a Verdaccio storage folder holds them.
fn plant(root: &Path) {
    let mut list = Vec::new();
    for i in 0..PACKAGES {
        let name = name_of(i);
        let (w1, w2) = (WORDS[i % WORDS.len()], WORDS[(i / 7) % WORDS.len()]);
        let day = format!("2024-{:02}-{:02}T00:00:00.000Z", 1 + i % 12, 1 + i % 28);
        let unscoped = name.rsplit('/').next().unwrap();
        let doc = json!({
            "_id": name, "name": name, "_rev": "1-0000000000000001",
            "dist-tags": {"latest": "1.0.0"},
            "time": {"created": day, "modified": day, "1.0.0": day},
            "maintainers": [{"name": "owner"}],
            "versions": {"1.0.0": {
                "name": name, "version": "1.0.0", "description": format!("a {w1} {w2} library number {i}"),
                "keywords": [w1, w2], "license": "MIT",
                "dist": {"tarball": format!("http://old/{name}/-/{unscoped}-1.0.0.tgz"), "shasum": "00"}
            }},
        });
        let dir = root.join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("package.json"), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        list.push(name);
    }
    std::fs::write(
        root.join(".verdaccio-db.json"),
        json!({"list": list, "secret": "s"}).to_string(),
    )
    .unwrap();
}

fn search(http: &Blocking, url: &str, text: &str) -> Value {
    let r = http
        .get(&format!("{url}-/v1/search?text={}&size=20", urlencode(text)))
        .send()
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn urlencode(s: &str) -> String {
    s.replace('@', "%40")
        .replace('/', "%2F")
        .replace(' ', "+")
        .replace(':', "%3A")
}

fn names(result: &Value) -> Vec<String> {
    result["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["package"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
fn ten_thousand_packages_are_searched_from_the_index() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    plant(&root);
    let config = format!("repair: {{ interval: 1h }}\n{ANYONE_PUBLISHES}");
    let a = Server::start(&config, &root);
    let started = Instant::now();
    let rss_start = a.memory_kib("VmRSS");
    let http = http();
    // The first repair pass builds the index (there is none in a Verdaccio folder).
    let marker = root.join(".npm-registry/search/index.json");
    while !marker.exists() || search(&http, &a.url(), "lib-09995")["total"] != 1 {
        assert!(started.elapsed() < Duration::from_secs(120), "index not built");
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("index of {PACKAGES} packages built in {:?}", started.elapsed());

    let queries = [
        "pkg-04321",
        "lib-05000",
        "parser",
        "fast parser",
        "keywords:yaml",
        "keywords:http,cli",
        "scope:team3",
        "scope:team3 router",
        "number 777",
        "library",
        "nothing-matches-this",
        "pkg-0",
        "color date",
        "json schema",
    ];
    let r = search(&http, &a.url(), "pkg-04321");
    assert_eq!(names(&r)[0], "pkg-04321");
    assert_eq!(
        r["objects"][0]["package"]["description"],
        "a tiny json library number 4321"
    );
    assert_eq!(search(&http, &a.url(), "scope:team3")["total"], 200);
    assert_eq!(search(&http, &a.url(), "nothing-matches-this")["total"], 0);
    let mut times = Vec::new();
    for _ in 0..20 {
        for q in queries {
            let t = Instant::now();
            search(&http, &a.url(), q);
            times.push(t.elapsed());
        }
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    // 20 at once, as the web UI's visitors might.
    let t = Instant::now();
    let concurrent: Vec<_> = (0..20)
        .map(|i| {
            let url = a.url();
            std::thread::spawn(move || search(&blocking_client(), &url, queries[i % queries.len()]))
        })
        .collect();
    for c in concurrent {
        c.join().unwrap();
    }
    let burst = t.elapsed();
    let (rss, hwm) = (a.memory_kib("VmRSS"), a.memory_kib("VmHWM"));
    println!(
        "search over {PACKAGES} packages, {} queries over HTTP: p50 {p50:?}, p99 {p99:?}; 20 concurrent in {burst:?}; \
         RSS {rss_start} KiB at start, {rss} KiB after (peak {hwm} KiB)",
        times.len()
    );
    assert!(p99 < Duration::from_millis(250), "p99 {p99:?}");
    assert!(hwm < rss_start + 150 * 1024, "peak {hwm} KiB");

    // Writes reach this replica's index at once and another's within the revalidation interval.
    let b = Server::start(&config, &root);
    let publish = |url: &str, name: &str| {
        let mut body = publish_body(name, "1.0.0", b"x");
        body["versions"]["1.0.0"]["description"] = json!("a freshly published zebra");
        let r = http
            .request(reqwest::Method::PUT, &format!("{url}{name}"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
    };
    publish(&a.url(), "zebra-fresh");
    assert_eq!(names(&search(&http, &a.url(), "zebra")), ["zebra-fresh"]);
    let seen = |url: &str, want: usize| {
        let t = Instant::now();
        while search(&http, url, "zebra")["total"] != want {
            assert!(t.elapsed() < Duration::from_secs(10), "{url}: not {want} within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        t.elapsed()
    };
    println!(
        "a publish on one replica was found on the other after {:?}",
        seen(&b.url(), 1)
    );
    let rev = http
        .get(&format!("{}zebra-fresh?write=true", b.url()))
        .send()
        .unwrap()
        .json()["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .request(reqwest::Method::DELETE, &format!("{}zebra-fresh/-rev/{rev}", b.url()))
        .send()
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(search(&http, &b.url(), "zebra")["total"], 0);
    println!(
        "an unpublish on one replica left the other's search after {:?}",
        seen(&a.url(), 0)
    );
}
