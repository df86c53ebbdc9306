//! Bad input gets a precise 4xx with an npm-style JSON error, writes nothing, and the server keeps
//! serving.

mod common;

use common::raw_http::{Blocking, Res};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const SMALL_LIMIT_CONFIG: &str = "
max_body_size: 64kb
packages:
  '**': { access: $all, publish: $all, unpublish: $all }
";

struct Case<'a> {
    what: &'a str,
    method: Method,
    path: String,
    body: Vec<u8>,
    status: u16,
    message: &'a str,
}

fn send(_http: &Blocking, server: &Server, method: Method, path: &str, body: Vec<u8>) -> Res {
    raw_request(server.port, method.as_str(), path, &body)
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[test]
fn bad_input_is_refused_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    // A legacy upper-case package, laid out as Verdaccio would have stored it.
    std::fs::create_dir_all(storage.join("JSONStream")).unwrap();
    let legacy = json!({"name": "JSONStream", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {"name": "JSONStream", "version": "1.0.0", "dist": {"tarball": "http://old/JSONStream/-/JSONStream-1.0.0.tgz", "shasum": "x"}}}});
    std::fs::write(storage.join("JSONStream/package.json"), legacy.to_string()).unwrap();

    let mut server = Server::start(SMALL_LIMIT_CONFIG, &storage);
    let http = http();
    // One good package so that updates have something to be stale against.
    let r = send(
        &http,
        &server,
        Method::PUT,
        "/good",
        json_bytes(&publish_body("good", "1.0.0", b"good tarball")),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let rev = send(&http, &server, Method::GET, "/good?write=true", vec![]).json()["_rev"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut tampered = publish_body("tampered", "1.0.0", b"original");
    tampered["_attachments"]["tampered-1.0.0.tgz"]["data"] = json!("ZXZpbA=="); // "evil"
    tampered["_attachments"]["tampered-1.0.0.tgz"]["length"] = json!(4);
    let mut no_attachment = publish_body("noatt", "1.0.0", b"x");
    no_attachment["_attachments"] = json!({});
    let mut other_version = publish_body("good", "1.0.1", b"x");
    other_version["versions"]["1.0.1"]["dist"]["shasum"] = json!("0000000000000000000000000000000000000000");
    let long = "a".repeat(215);
    let mut stale_update = send(&http, &server, Method::GET, "/good?write=true", vec![]).json();
    stale_update["_rev"] = json!("1-0000000000000000");
    stale_update["versions"]["1.0.0"]["deprecated"] = json!("nope");

    let cases = vec![
        Case {
            what: "publish over a published version, other bytes",
            method: Method::PUT,
            path: "/good".into(),
            body: json_bytes(&publish_body("good", "1.0.0", b"another tarball")),
            status: 403,
            message: "cannot publish over the previously published version 1.0.0",
        },
        Case {
            what: "publish over a published version, same bytes",
            method: Method::PUT,
            path: "/good".into(),
            body: json_bytes(&publish_body("good", "1.0.0", b"good tarball")),
            status: 403,
            message: "cannot publish over the previously published version 1.0.0",
        },
        Case {
            what: "dot-dot name",
            method: Method::PUT,
            path: "/%2e%2e".into(),
            body: json_bytes(&publish_body("..", "1.0.0", b"x")),
            status: 400,
            message: "invalid package name",
        },
        Case {
            what: "encoded traversal",
            method: Method::PUT,
            path: "/..%2f..%2fetc".into(),
            body: json_bytes(&publish_body("../../etc", "1.0.0", b"x")),
            status: 400,
            message: "",
        },
        Case {
            what: "slash trick",
            method: Method::PUT,
            path: "/a%2fb".into(),
            body: json_bytes(&publish_body("a/b", "1.0.0", b"x")),
            status: 400,
            message: "",
        },
        Case {
            what: "scope traversal",
            method: Method::PUT,
            path: "/@s%2f..".into(),
            body: json_bytes(&publish_body("@s/..", "1.0.0", b"x")),
            status: 400,
            message: "invalid package name",
        },
        Case {
            what: "tarball traversal",
            method: Method::GET,
            path: "/good/-/..%2f..%2fpackage.json".into(),
            body: vec![],
            status: 400,
            message: "",
        },
        Case {
            what: "upper case",
            method: Method::PUT,
            path: "/BadName".into(),
            body: json_bytes(&publish_body("BadName", "1.0.0", b"x")),
            status: 400,
            message: "capital letters",
        },
        Case {
            what: "too long",
            method: Method::PUT,
            path: format!("/{long}"),
            body: json_bytes(&publish_body(&long, "1.0.0", b"x")),
            status: 400,
            message: "214",
        },
        Case {
            what: "not JSON",
            method: Method::PUT,
            path: "/notjson".into(),
            body: b"{this is not json".to_vec(),
            status: 400,
            message: "not valid JSON",
        },
        Case {
            what: "no attachment",
            method: Method::PUT,
            path: "/noatt".into(),
            body: json_bytes(&no_attachment),
            status: 400,
            message: "",
        },
        Case {
            what: "integrity mismatch",
            method: Method::PUT,
            path: "/tampered".into(),
            body: json_bytes(&tampered),
            status: 400,
            message: "does not match",
        },
        Case {
            what: "shasum mismatch on existing package",
            method: Method::PUT,
            path: "/good".into(),
            body: json_bytes(&other_version),
            status: 400,
            message: "dist.shasum",
        },
        Case {
            what: "over the size limit",
            method: Method::PUT,
            path: "/huge".into(),
            body: json_bytes(&publish_body("huge", "1.0.0", &vec![7u8; 100 * 1024])),
            status: 413,
            message: "too large",
        },
        Case {
            what: "not semver",
            method: Method::PUT,
            path: "/badver".into(),
            body: json_bytes(&publish_body("badver", "1.0", b"x")),
            status: 400,
            message: "not a valid semver",
        },
        Case {
            what: "republish",
            method: Method::PUT,
            path: "/good".into(),
            body: json_bytes(&publish_body("good", "1.0.0", b"good tarball")),
            status: 403,
            message: "previously published",
        },
        Case {
            what: "name mismatch",
            method: Method::PUT,
            path: "/good".into(),
            body: json_bytes(&publish_body("other", "2.0.0", b"x")),
            status: 400,
            message: "does not match",
        },
        Case {
            what: "unknown dist-tag removal",
            method: Method::DELETE,
            path: "/-/package/good/dist-tags/nosuch".into(),
            body: vec![],
            status: 404,
            message: "does not exist",
        },
        Case {
            what: "tag to unknown version",
            method: Method::PUT,
            path: "/-/package/good/dist-tags/beta".into(),
            body: b"\"9.9.9\"".to_vec(),
            status: 404,
            message: "9.9.9",
        },
        Case {
            what: "range-like tag",
            method: Method::PUT,
            path: "/-/package/good/dist-tags/1.x".into(),
            body: b"\"1.0.0\"".to_vec(),
            status: 400,
            message: "version range",
        },
        Case {
            what: "stale delete",
            method: Method::DELETE,
            path: "/good/-rev/1-0000000000000000".into(),
            body: vec![],
            status: 409,
            message: "stale",
        },
        Case {
            what: "stale tarball delete",
            method: Method::DELETE,
            path: "/good/-/good-1.0.0.tgz/-rev/1-0000000000000000".into(),
            body: vec![],
            status: 409,
            message: "stale",
        },
        Case {
            what: "stale update",
            method: Method::PUT,
            path: format!("/good/-rev/{}", "1-0000000000000000"),
            body: json_bytes(&stale_update),
            status: 409,
            message: "stale",
        },
        Case {
            what: "delete tarball of a live version",
            method: Method::DELETE,
            path: format!("/good/-/good-1.0.0.tgz/-rev/{rev}"),
            body: vec![],
            status: 409,
            message: "unpublish the version first",
        },
        Case {
            what: "missing package",
            method: Method::GET,
            path: "/nosuch".into(),
            body: vec![],
            status: 404,
            message: "not found",
        },
        Case {
            what: "update of a missing package",
            method: Method::PUT,
            path: "/nosuch/-rev/1-a".into(),
            body: b"{}".to_vec(),
            status: 404,
            message: "not found",
        },
    ];

    let before = package_files(&storage);
    for c in cases {
        let r = send(&http, &server, c.method.clone(), &c.path, c.body);
        assert_eq!(r.status, c.status, "{}: {}", c.what, r.text());
        let body = r.json();
        let msg = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no npm-style error in {body}", c.what));
        assert!(msg.contains(c.message), "{}: {msg:?} lacks {:?}", c.what, c.message);
        assert_eq!(package_files(&storage), before, "{} changed storage", c.what);
        assert!(server.is_running(), "{} killed the server", c.what);
        assert_eq!(send(&http, &server, Method::GET, "/-/ping", vec![]).status, 200);
    }

    // The good package is untouched and the legacy name is still served.
    let doc = send(&http, &server, Method::GET, "/good", vec![]).json();
    assert_eq!(doc["versions"].as_object().unwrap().len(), 1);
    assert!(doc["versions"]["1.0.0"].get("deprecated").is_none());
    let r = send(&http, &server, Method::GET, "/JSONStream", vec![]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["versions"]["1.0.0"]["dist"]["tarball"],
        format!("{}JSONStream/-/JSONStream-1.0.0.tgz", server.url())
    );
}

#[test]
fn revalidation_and_abbreviated_form() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(SMALL_LIMIT_CONFIG, &work.path().join("storage"));
    let http = http();
    let r = send(
        &http,
        &server,
        Method::PUT,
        "/@s%2fpkg",
        json_bytes(&publish_body("@s/pkg", "1.0.0", b"bytes")),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    let full = http.get(&format!("{}@s%2fpkg", server.url())).send().unwrap();
    assert_eq!(full.status, 200);
    assert_eq!(full.headers["content-type"], "application/json");
    assert!(full.headers["vary"].to_str().unwrap().contains("Accept"));
    assert!(full.json()["time"].is_object());
    let etag = full.headers["etag"].to_str().unwrap().to_owned();
    let last_modified = full.headers["last-modified"].to_str().unwrap().to_owned();

    let corgi = http
        .get(&format!("{}@s/pkg", server.url()))
        .header(
            "accept",
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
        )
        .send()
        .unwrap();
    assert_eq!(corgi.headers["content-type"], "application/vnd.npm.install-v1+json");
    let c = corgi.json();
    // `time` too: pnpm's `minimumReleaseAge` and yarn's age gate need publish times.
    assert!(c["time"]["1.0.0"].is_string() && c["modified"].is_string());
    assert!(c.get("_rev").is_none() && c.get("readme").is_none());
    assert_eq!(
        c["versions"]["1.0.0"]["dist"]["tarball"],
        format!("{}@s/pkg/-/pkg-1.0.0.tgz", server.url())
    );
    assert_ne!(
        corgi.headers["etag"], full.headers["etag"],
        "each representation has its own ETag"
    );

    let r = http
        .get(&format!("{}@s%2fpkg", server.url()))
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status, 304);
    let r = http
        .get(&format!("{}@s%2fpkg", server.url()))
        .header("if-modified-since", &last_modified)
        .send()
        .unwrap();
    assert_eq!(r.status, 304);
    let r = http
        .get(&format!("{}@s%2fpkg", server.url()))
        .header("if-none-match", "W/\"stale\"")
        .send()
        .unwrap();
    assert_eq!(r.status, 200);

    // Every tarball spelling, and one version by number or tag.
    for p in [
        "@s/pkg/-/pkg-1.0.0.tgz",
        "@s%2fpkg/-/pkg-1.0.0.tgz",
        "@s/pkg/-/@s/pkg-1.0.0.tgz",
        "@s%2Fpkg/-/@s%2Fpkg-1.0.0.tgz",
    ] {
        let r = http.get(&format!("{}{p}", server.url())).send().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"bytes".as_slice()), "{p}");
    }
    for spec in ["1.0.0", "latest"] {
        let r = http.get(&format!("{}@s%2fpkg/{spec}", server.url())).send().unwrap();
        assert_eq!(r.json()["version"], "1.0.0");
    }
    assert_eq!(
        http.get(&format!("{}@s%2fpkg/2.0.0", server.url()))
            .send()
            .unwrap()
            .status,
        404
    );
}
