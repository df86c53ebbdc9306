//! The web UI in headless Chromium (Debian's `chromium`, driven by playwright-core), acting as a
//! person would, against the real server with packages the real npm published; and the real
//! `npm login --auth-type=web`, approved in the browser. Screenshots of every page are kept in
//! `target/tmp/web-screenshots/`. Without Chromium these tests are skipped with the reason
//! printed, except in CI (`CI` set), where that is a failure.

mod common;

use common::web::{artifacts, chromium, playwright, publish_with_readme};
use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const CONFIG: &str = "
packages:
  '@team/*': { access: $authenticated, publish: $authenticated }
  '**': { access: $all, publish: $authenticated }
";

const README: &str = "# acme-widget

Widgets for Acme apps.

## Usage

| option | default | meaning |
|---|---|---|
| `size` | 3 | how large a widget is |

```js
const widget = require('acme-widget');
widget.render({ size: 3 }); // draws it
```
";

/// A README that tries every way to run code in the page.
const HOSTILE: &str = "# Hostile

This text is still shown.

<script>window.__xss = 'script'; console.log('xss script ran')</script>

<img src=\"x\" onerror=\"window.__xss = 'onerror'; console.log('xss onerror ran')\">

<a href=\"javascript:window.__xss='link'\">click me</a> and [click me too](javascript:window.__xss='md-link')

<svg onload=\"window.__xss='svg'\"><script>window.__xss='svg script'</script></svg>

<iframe srcdoc=\"<script>parent.__xss='iframe'</script>\"></iframe>

<div onclick=\"window.__xss='div'\" style=\"position:fixed;inset:0\">covering div</div>

<form action=\"javascript:window.__xss='form'\"><button>send</button></form>
";

fn check(out: std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn a_person_browses_searches_reads_and_logs_in() {
    let Some(chromium) = chromium() else { return };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let server = Server::start(CONFIG, &w.join("storage"));
    let url = server.url();
    let alice = Client::anonymous(&url);
    alice.set_token(&login(&url, "alice", "alice-password").unwrap());

    let widget = |version: &str| {
        json!({"name": "acme-widget", "version": version, "description": "Widgets for Acme apps",
               "license": "MIT", "keywords": ["acme", "ui"],
               "repository": {"type": "git", "url": "git+https://git.example.com/acme/widget.git"}})
    };
    publish_with_readme(&alice, w, &widget("1.0.0"), README, "latest");
    publish_with_readme(&alice, w, &widget("1.1.0"), README, "latest");
    publish_with_readme(&alice, w, &widget("2.0.0-beta.1"), README, "beta");
    alice.npm_ok(w, &["deprecate", "acme-widget@1.0.0", "please use 1.1.0"]);
    let private = json!({"name": "@team/tool", "version": "0.1.0", "description": "the team's own tool"});
    publish_with_readme(&alice, w, &private, "# @team/tool\n", "latest");
    let hostile = json!({"name": "hostile-readme", "version": "1.0.0", "description": "tries to run code"});
    publish_with_readme(&alice, w, &hostile, HOSTILE, "latest");
    let app = json!({"name": "acme-app", "version": "3.0.0", "description": "the app",
                     "dependencies": {"acme-widget": "^1.1.0"}});
    publish_with_readme(&alice, w, &app, "# acme-app\n", "latest");

    let dir = artifacts("browse");
    let out = playwright(
        "ui.cjs",
        &chromium,
        &json!({
            "url": url, "artifacts": dir, "user": "alice", "password": "alice-password",
            "public": ["acme-widget", "acme-app", "hostile-readme"], "newest": "acme-app",
            "private": "@team/tool", "package": "acme-widget", "query": "widg", "enterQuery": "acme", "enterFound": ["acme-widget", "acme-app"],
            "readmeHeading": "Usage", "tableCell": "how large a widget is",
            "codeSnippet": "widget.render({ size: 3 });",
            "versions": ["2.0.0-beta.1", "1.1.0", "1.0.0"], "deprecation": "Deprecated: please use 1.1.0",
            "tags": {"latest": "1.1.0", "beta": "2.0.0-beta.1"}, "dependent": "acme-app",
            "hostile": "hostile-readme", "hostileText": "This text is still shown.",
        }),
    );
    let stdout = check(out, "the browser test (tests/browser/ui.cjs)");
    for page in [
        "home",
        "search-as-you-type",
        "package",
        "search-results",
        "private-anonymous",
        "login-refused",
        "private-logged-in",
        "home-logged-in",
        "hostile-readme",
        "home-dark",
        "package-dark",
        "package-phone",
        "home-phone",
    ] {
        assert!(
            dir.join(format!("{page}.png")).exists(),
            "no screenshot of {page}:\n{stdout}"
        );
    }
}

/// Starts `npm login --auth-type=web` and returns it with the login URL it printed.
fn npm_web_login(client: &Client, cwd: &Path) -> (std::process::Child, String) {
    let mut npm = client
        .command("npm", cwd)
        .args(["login", "--auth-type=web"])
        .env("npm_config_browser", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(npm.stdout.take().unwrap());
    let mut seen = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.trim_start().starts_with("http") {
            return (npm, line.trim().to_owned());
        }
        seen.push(line);
    }
    let _ = npm.kill();
    let _ = npm.wait();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut npm.stderr.take().unwrap(), &mut err).unwrap();
    panic!("npm printed no login URL:\n{}\n--- stderr\n{err}", seen.join("\n"));
}

fn wait_success(mut npm: std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = npm.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut npm.stderr.take().unwrap(), &mut err).unwrap();
            assert!(status.success(), "npm login failed ({status}):\n{err}");
            return;
        }
        if Instant::now() > deadline {
            let _ = npm.kill();
            let _ = npm.wait();
            panic!("npm login did not finish within a minute of the approval");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn npm_login_on_the_web_approved_in_the_browser() {
    let Some(chromium) = chromium() else { return };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let htpasswd = w.join("htpasswd");
    std::fs::write(&htpasswd, format!("bea:{}\n", bcrypt::hash("bea-password", 4).unwrap())).unwrap();
    let config = format!("auth:\n  htpasswd:\n    file: {}\n{CONFIG}", htpasswd.display());
    let server = Server::start(&config, &w.join("storage"));
    let url = server.url();
    let dir = artifacts("npm-login");

    for logged_in_first in [false, true] {
        let npm = Client::anonymous(&url);
        let (child, login_url) = npm_web_login(&npm, w);
        assert!(login_url.starts_with(&format!("{url}-/ui/login?cli=")), "{login_url}");
        let out = playwright(
            "approve.cjs",
            &chromium,
            &json!({"loginUrl": login_url, "user": "bea", "password": "bea-password",
                    "artifacts": dir, "loggedInFirst": logged_in_first}),
        );
        check(out, "the approval in the browser (tests/browser/approve.cjs)");
        wait_success(child);
        assert_eq!(
            npm.npm_ok(w, &["whoami"]).trim(),
            "bea",
            "logged in first: {logged_in_first}"
        );
    }
}
