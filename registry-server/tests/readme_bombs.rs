//! README bombs cannot pin the server (issue 22, item 1): documents built to make rendering
//! slow (1 MiB of nested block quotes, 32k nested `<div>`s, sixteen 56 KB fenced `js` blocks),
//! published here or served by an uplink, each answer `GET /-/ui/package/<name>` within 2 s (see
//! [`view_bound`] for the debug build) under
//! 4 concurrent views, are rendered once per content however many view them at once, keep the
//! server's peak RSS under its documented bound, and a SIGTERM during a rendering ends the
//! process promptly. Before the limits: 30 minutes for the quotes, 33 s and a 27.8 MB page for
//! the code blocks, RSS up to 1.4 GB, 18 minutes of rendering after SIGTERM.

mod common;

use common::upstream::FakeUpstream;
use common::*;
use registry_config::defaults::{MEMORY_OVERHEAD, PACKUMENT_CACHE_SIZE, TARBALL_CACHE_SIZE, WEB_CACHE_SIZE};
use serde_json::json;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// How long a view may take: the issue's 2 s for an optimized server (the release binary, through
/// `SERVER_BIN`); the debug build, its dependencies unoptimized, takes 1-3 s on a loaded 2-core
/// machine to serve any page of a 1 MiB document (reading and preparing the packument), bombs
/// or not. Either bound fails the unbounded renderings (33 s to 30 minutes).
fn view_bound() -> Duration {
    if std::env::var_os("SERVER_BIN").is_some() || !cfg!(debug_assertions) {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(8)
    }
}

fn quotes() -> String {
    ">".repeat(1 << 20)
}

fn divs() -> String {
    "<div>".repeat(32 * 1024) + "x"
}

fn code_blocks() -> String {
    let line = "const answer = { value: [1, 'two', `three`], when: new Date() }; // note\n";
    let block = format!("```js\n{}```\n\n", line.repeat(56 * 1024 / line.len()));
    format!("# Many blocks\n\n{}", block.repeat(16))
}

fn config(upstream: &str) -> String {
    format!(
        "uplinks:\n  up:\n    url: {upstream}\n\
         packages:\n  'proxied-*':\n    access: $all\n    proxy: up\n  '**':\n    access: $all\n    publish: $all\n\
         log: {{ type: stdout, format: pretty, level: info }}\n"
    )
}

fn publish(server: &Server, name: &str, readme: &str) {
    let mut body = publish_body(name, "1.0.0", b"tarball bytes");
    body["readme"] = json!(readme);
    let r = blocking_client()
        .request(reqwest::Method::PUT, &format!("{}{name}", server.url()))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
}

/// `views` concurrent GETs of a package's page: each one's status, time and page size.
fn view(server: &Server, name: &str, views: usize) -> Vec<(u16, Duration, usize)> {
    let url = format!("{}-/ui/package/{name}", server.url());
    let handles: Vec<_> = (0..views)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let r = blocking_client().get(&url).send().unwrap();
                (r.status, t.elapsed(), r.body.len())
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn renders(server: &Server, name: &str) -> usize {
    server
        .log()
        .lines()
        .filter(|l| l.contains("README rendered") && l.contains(&format!("package={name} ")))
        .count()
}

#[test]
fn readme_bombs_answer_within_two_seconds_and_within_the_memory_bound() {
    let fake = FakeUpstream::start();
    let mut proxied = json!({
        "name": "proxied-bomb",
        "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": "proxied-bomb", "version": "1.0.0",
            "dist": {"tarball": fake.tarball_url("proxied-bomb/-/proxied-bomb-1.0.0.tgz"), "shasum": "0"}}},
    });
    proxied["readme"] = json!(code_blocks());
    fake.add_packument(proxied);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(
        &config(&fake.url()),
        &dir.path().join("storage"),
        &[("RUST_LOG", "info,registry_server::web=debug")],
    );
    let bombs = [("quotes", quotes()), ("divs", divs()), ("code-blocks", code_blocks())];
    for (name, readme) in &bombs {
        publish(&server, &format!("bomb-{name}"), readme);
    }
    let mut names: Vec<String> = bombs.iter().map(|(n, _)| format!("bomb-{n}")).collect();
    names.push("proxied-bomb".to_owned());
    let mut report = Vec::new();
    // All four bombs at once, four views of each.
    let started = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| s.spawn(|| (n.clone(), view(&server, n, 4))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let burst = started.elapsed();
    for l in server.log().lines().filter(|l| l.contains("README rendered")) {
        eprintln!("{l}");
    }
    for (name, views) in &results {
        let slowest = views.iter().map(|v| v.1).max().unwrap();
        let page = views[0].2;
        report.push(format!(
            "{name}: slowest of 4 views {slowest:?}, page {} KiB",
            page / 1024
        ));
        for (status, took, _) in views {
            assert_eq!(*status, 200, "{name}");
            assert!(*took < view_bound(), "{name} took {took:?}");
        }
        assert!(page < 8 << 20, "{name}: a {page}-byte page");
        assert_eq!(renders(&server, name), 1, "{name}: 4 concurrent views render once");
    }
    let peak = server.memory_kib("VmHWM") * 1024;
    let bound = PACKUMENT_CACHE_SIZE + TARBALL_CACHE_SIZE + WEB_CACHE_SIZE + MEMORY_OVERHEAD;
    eprintln!(
        "README bombs, 16 concurrent views in {burst:?}: {}; peak RSS {} MiB (bound {} MiB)",
        report.join("; "),
        peak / MIB,
        bound / MIB
    );
    assert!(peak <= bound, "peak RSS {} MiB over {} MiB", peak / MIB, bound / MIB);
    // The page says why it shows plain text, and shows it escaped.
    let page = blocking_client()
        .get(&format!("{}-/ui/package/bomb-divs", server.url()))
        .send()
        .unwrap()
        .text();
    assert!(
        page.contains("This README is shown as plain text: it is nested too deeply"),
        "{}",
        &page[..2000.min(page.len())]
    );
    assert!(page.contains("&lt;div&gt;&lt;div&gt;"));
}

#[test]
fn sigterm_during_a_rendering_ends_the_process_promptly() {
    let dir = tempfile::tempdir().unwrap();
    // No drain (tests/rollout.rs covers it) and 2 s for requests in flight: the renderings
    // must not hold the process past that.
    let config = format!(
        "{}server:\n  shutdown: {{ drain: 0s, timeout: 2s }}\n",
        config("http://127.0.0.1:9/")
    );
    let mut server = Server::start(&config, &dir.path().join("storage"));
    for i in 0..4 {
        // Distinct contents: nothing is cached or shared.
        publish(&server, &format!("late-{i}"), &format!("{}\n\n{}", i, code_blocks()));
    }
    let url = server.url();
    let viewers: Vec<_> = (0..4)
        .map(|i| {
            let url = format!("{url}-/ui/package/late-{i}");
            std::thread::spawn(move || {
                let _ = blocking_client().get(&url).send();
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let t = Instant::now();
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(10));
    let took = t.elapsed();
    eprintln!("SIGTERM during 4 renderings: exited in {took:?}");
    assert!(status.is_some(), "still running 10 s after SIGTERM:\n{}", server.log());
    assert!(took < Duration::from_secs(4), "{took:?}");
    for v in viewers {
        v.join().unwrap();
    }
}
