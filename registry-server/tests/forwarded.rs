//! `X-Forwarded-Host`/`-Proto` shape tarball URLs only when they come from a proxy listed in
//! `server.trustProxy`, and responses that hold those URLs vary on them.

mod common;

use common::*;

fn tarball_url(server: &Server) -> (String, String) {
    let r = raw_request_with(
        server.port,
        "GET",
        "/fwd",
        &[("X-Forwarded-Host", "npm.example.com"), ("X-Forwarded-Proto", "https")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let vary = r.headers["vary"].to_str().unwrap().to_owned();
    let url = r.json()["versions"]["1.0.0"]["dist"]["tarball"]
        .as_str()
        .unwrap()
        .to_owned();
    (url, vary)
}

#[test]
fn forwarded_host_only_from_trusted_proxies() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let untrusting = Server::start(ANYONE_PUBLISHES, &storage);
    let r = http()
        .request(reqwest::Method::PUT, &format!("{}fwd", untrusting.url()))
        .json(&publish_body("fwd", "1.0.0", b"x"))
        .send()
        .unwrap();
    assert_eq!(r.status, 201);
    let (url, vary) = tarball_url(&untrusting);
    assert_eq!(url, format!("http://127.0.0.1:{}/fwd/-/fwd-1.0.0.tgz", untrusting.port));
    assert!(vary.contains("X-Forwarded-Host"), "{vary}");

    let trusting = Server::start(
        &format!("server:\n  trustProxy: loopback\n{ANYONE_PUBLISHES}"),
        &storage,
    );
    let (url, _) = tarball_url(&trusting);
    assert_eq!(url, "https://npm.example.com/fwd/-/fwd-1.0.0.tgz");

    let fixed = Server::start(
        &format!("public_url: https://fixed.example/\nserver:\n  trustProxy: loopback\n{ANYONE_PUBLISHES}"),
        &storage,
    );
    let (url, vary) = tarball_url(&fixed);
    assert_eq!(url, "https://fixed.example/fwd/-/fwd-1.0.0.tgz");
    assert!(!vary.contains("X-Forwarded-Host"), "{vary}");
}
