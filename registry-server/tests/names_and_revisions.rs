//! Edge cases of names, versions and revisions: the longest valid names are stored and installed
//! with the real npm CLI, a tarball name too long for a file is a clear 400, versions that differ
//! only in build metadata are one version, and a whole-document PUT must name its `_rev`.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

/// A package folder with a short path (`write_package` names folders after the package).
fn package_folder(w: &std::path::Path, folder: &str, name: &str, version: &str) -> std::path::PathBuf {
    let dir = w.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = json!({"name": name, "version": version, "main": "index.js", "license": "MIT"});
    std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join("index.js"), "module.exports = 'long';").unwrap();
    dir
}

#[test]
fn the_longest_names_publish_and_install_with_npm() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let server = Server::start_default(&w.join("storage"));
    let client = Client::new(&server.url());
    let plain = "l".repeat(214);
    let scoped = format!("@scope/{}", "s".repeat(214 - "@scope/".len()));
    // A 249-byte tarball file name: room for no temp name built on it.
    let version = format!("1.0.0-{}", "r".repeat(24));
    for (i, name) in [&plain, &scoped].into_iter().enumerate() {
        let src = package_folder(w, &format!("p{i}"), name, &version);
        client.npm_ok(&src, &["publish", "--tag", "next"]);
    }
    let app = project(w, "app");
    client.npm_ok(&app, &["install", &format!("{plain}@next"), &format!("{scoped}@next")]);
    assert_eq!(client.require(&app, &plain), "long");
    assert_eq!(client.require(&app, &scoped), "long");

    // A version that would make the tarball's file name longer than 255 bytes: a 400 npm prints.
    let long_version = format!("1.0.0-{}", "x".repeat(40));
    let src = package_folder(w, "too-long", &plain, &long_version);
    let out = client.npm(&src, &["publish", "--tag", "long"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("400") && stderr.contains("limit is 255"), "{stderr}");
    // Nothing was half-written: the package still answers, with its one version.
    let doc = http().get(&format!("{}{plain}", server.url())).send().unwrap().json();
    assert_eq!(doc["versions"].as_object().unwrap().len(), 1);
}

#[test]
fn build_metadata_does_not_make_a_new_version_and_updates_need_their_revision() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(ANYONE_PUBLISHES, &work.path().join("storage"));
    let http = http();
    let url = format!("{}meta", server.url());
    let put = |body: &serde_json::Value| http.request(Method::PUT, &url).json(body).send().unwrap();
    assert_eq!(put(&publish_body("meta", "1.0.0+build.1", b"one")).status, 201);
    let again = put(&publish_body("meta", "1.0.0+build.2", b"two"));
    assert_eq!(again.status, 403, "{}", again.text());
    assert!(again.text().contains("1.0.0+build.1"), "{}", again.text());
    assert_eq!(put(&publish_body("meta", "1.0.1", b"three")).status, 201);

    // A whole-document update (deprecate) without `_rev`: refused, naming it; with it: applied.
    let mut doc = http.get(&format!("{url}?write=true")).send().unwrap().json();
    doc["versions"]["1.0.1"]["deprecated"] = json!("use 2");
    let rev = doc.as_object_mut().unwrap().remove("_rev").unwrap();
    let r = put(&doc);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("_rev"), "{}", r.text());
    doc["_rev"] = rev;
    assert_eq!(put(&doc).status, 201);
    let stored = http.get(&url).send().unwrap().json();
    assert_eq!(stored["versions"]["1.0.1"]["deprecated"], "use 2");
    assert_eq!(stored["versions"].as_object().unwrap().len(), 2);
}
