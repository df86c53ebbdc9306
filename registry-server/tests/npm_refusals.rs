//! Every refusal of a publish, unpublish, tag or login reaches the person at the real npm CLI:
//! npm prints our reason (an oversized publish too, whose body we read and drop rather than
//! closing the socket under npm), and a dummy token is anonymous wherever anonymous may act.

mod common;

use common::*;
use std::process::Output;

fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// npm failed with `code` and printed every one of `words`.
fn refused_with(out: &Output, code: &str, words: &[&str]) {
    let text = printed(out);
    assert!(!out.status.success(), "npm succeeded:\n{text}");
    assert!(text.contains(code), "no {code}:\n{text}");
    for w in words {
        assert!(text.contains(w), "npm did not print {w:?}:\n{text}");
    }
}

#[test]
fn npm_prints_the_reason_of_every_refusal() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let config = "max_body_size: 64kb\npackages:\n  'owned-*': {access: $all, publish: owner}\n  \
                  '**': {access: $all, publish: $authenticated, unpublish: $authenticated}\n";
    let server = Server::start(config, &w.join("storage"));
    let url = server.url();
    let owner = Client::anonymous(&url);
    ok(owner.npm_login("owner", "owner-password"), "npm login owner");
    let lib = write_package(w, "lib", "1.0.0", &[], "module.exports = 1;\n");
    owner.npm_ok(&lib, &["publish"]);
    let owned = write_package(w, "owned-lib", "1.0.0", &[], "module.exports = 1;\n");
    owner.npm_ok(&owned, &["publish"]);

    // Too large: npm shows E413 and why, not only "a complete log of this run ...".
    let big = write_package(w, "big-lib", "1.0.0", &[], "module.exports = 1;\n");
    // Far more than socket buffers hold, so npm is still sending when the answer comes.
    std::fs::write(big.join("noise.bin"), noise(8 << 20)).unwrap();
    let out = owner.npm(&big, &["publish"]);
    refused_with(&out, "E413", &["too large", "64 KiB", "max_body_size"]);

    // A version that exists (npm 11 finds it out itself before it sends anything; older npm
    // prints our 403).
    refused_with(
        &owner.npm(&lib, &["publish"]),
        "npm error",
        &["publish over the previously published version"],
    );

    // Anonymous (a dummy token) where a user is needed: publish, unpublish, tag; npm prints why
    // and does not wait and retry on a broken pipe.
    let dummy = Client::with_token(&url, "fake");
    let started = std::time::Instant::now();
    let next = write_package(w, "lib", "1.0.1", &[], "module.exports = 2;\n");
    refused_with(
        &dummy.npm(&next, &["publish"]),
        "E401",
        &["invalid, expired or revoked", "npm login"],
    );
    // Refused from its headers, a large body too: read and dropped so npm sees the 401.
    refused_with(&dummy.npm(&big, &["publish"]), "E401", &["invalid, expired or revoked"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "npm retried: {:?}",
        started.elapsed()
    );
    refused_with(
        &dummy.npm(w, &["dist-tag", "add", "lib@1.0.0", "stable"]),
        "E401",
        &["invalid, expired or revoked"],
    );
    refused_with(
        &dummy.npm(w, &["unpublish", "lib@1.0.0", "--force"]),
        "E401",
        &["invalid, expired or revoked"],
    );

    // Another user: forbidden, saying who and what.
    let other = Client::anonymous(&url);
    ok(other.npm_login("other", "other-password"), "npm login other");
    let owned_next = write_package(w, "owned-lib", "1.0.1", &[], "module.exports = 2;\n");
    refused_with(
        &other.npm(&owned_next, &["publish"]),
        "E403",
        &["user other is not allowed to publish owned-lib"],
    );
    refused_with(
        &other.npm(w, &["dist-tag", "add", "owned-lib@1.0.0", "stable"]),
        "E403",
        &["user other is not allowed to publish owned-lib"],
    );

    // A wrong password at login.
    let wrong = Client::anonymous(&url);
    let out = wrong.npm_login("owner", "not-the-password");
    refused_with(&out, "E401", &["incorrect username or password"]);

    // Nothing was changed by any of it.
    let view = owner.npm_ok(w, &["view", "lib", "--json"]);
    let view: serde_json::Value = serde_json::from_str(&view).unwrap();
    assert_eq!(view["versions"], serde_json::json!(["1.0.0"]), "{view}");
    assert_eq!(view["dist-tags"], serde_json::json!({"latest": "1.0.0"}));
}

#[test]
fn a_dummy_token_reads_and_publishes_where_anyone_may() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let server = Server::start(
        "packages:\n  '**': {access: $all, publish: $all, unpublish: $all}\n",
        &w.join("storage"),
    );
    // CI setups for open registries: npm refuses to publish without some token configured.
    let ci = Client::with_token(&server.url(), "fake");
    let lib = write_package(w, "ci-lib", "1.0.0", &[], "module.exports = 'ci';\n");
    ci.npm_ok(&lib, &["publish"]);
    let p = project(w, "ci-consumer");
    ci.npm_ok(&p, &["install", "ci-lib"]);
    assert_eq!(ci.require(&p, "ci-lib"), "ci");
    ci.npm_ok(w, &["dist-tag", "add", "ci-lib@1.0.0", "stable"]);
    // whoami needs a user: refused, saying the token is not valid.
    refused_with(&ci.npm(w, &["whoami"]), "E401", &["invalid, expired or revoked"]);
}

/// Sends the head of a PUT with `Expect: 100-continue` and returns what the server answers before
/// any of the body is sent.
fn first_answer(port: u16, auth: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let auth = auth.map(|a| format!("authorization: {a}\r\n")).unwrap_or_default();
    write!(
        s,
        "PUT /expect-lib HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: 1000000\r\nexpect: 100-continue\r\n{auth}\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn only_an_allowed_request_is_told_to_send_its_body() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start_default(&work.path().join("storage"));
    let refused = first_answer(server.port, None);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        !refused.contains("100 Continue") && refused.contains("npm login"),
        "{refused}"
    );
    let stale = first_answer(server.port, Some("Bearer fake"));
    assert!(
        stale.starts_with("HTTP/1.1 401") && stale.contains("invalid, expired or revoked"),
        "{stale}"
    );
    let token = login(&server.url(), "expecter", "expecter-password").unwrap();
    let allowed = first_answer(server.port, Some(&format!("Bearer {token}")));
    assert!(allowed.starts_with("HTTP/1.1 100 Continue"), "{allowed}");
}
