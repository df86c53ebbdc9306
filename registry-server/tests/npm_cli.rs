//! The npm CLI against the real server: publish, install, dist-tags, deprecate, search, view,
//! unpublish of a version and of a package.

mod common;

use common::*;

#[test]
fn npm_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let server = Server::start_default(&storage);
    let npm = Client::new(&server.url());
    let w = work.path();

    let greet = write_package(w, "greet-lib", "1.0.0", &[], "module.exports = (n) => `hello ${n}`;\n");
    npm.npm_ok(&greet, &["publish"]);
    let util = write_package(w, "@acme/util", "1.0.0", &[], "exports.twice = (x) => x * 2;\n");
    npm.npm_ok(&util, &["publish"]);
    let app = write_package(
        w,
        "app-main",
        "1.0.0",
        &[("greet-lib", "^1.0.0"), ("@acme/util", "^1.0.0")],
        "const g = require('greet-lib'); const u = require('@acme/util');\nmodule.exports = g('npm') + ' ' + u.twice(21);\n",
    );
    npm.npm_ok(&app, &["publish"]);

    // Install into a fresh project: lock file written, the code runs.
    let consumer = project(w, "consumer");
    npm.npm_ok(&consumer, &["install", "app-main"]);
    assert!(consumer.join("package-lock.json").exists());
    let lock = std::fs::read_to_string(consumer.join("package-lock.json")).unwrap();
    assert!(lock.contains("node_modules/@acme/util"), "{lock}");
    let out = ok(
        npm.command("node", &consumer)
            .args(["-e", "console.log(require('app-main'))"])
            .output()
            .unwrap(),
        "node",
    );
    assert_eq!(out.trim(), "hello npm 42");

    // npm view shows versions and tags.
    let greet2 = write_package(w, "greet-lib", "1.1.0", &[], "module.exports = (n) => `hi ${n}`;\n");
    npm.npm_ok(&greet2, &["publish"]);
    let view: serde_json::Value = serde_json::from_str(&npm.npm_ok(w, &["view", "greet-lib", "--json"])).unwrap();
    assert_eq!(view["versions"], serde_json::json!(["1.0.0", "1.1.0"]));
    assert_eq!(view["dist-tags"]["latest"], "1.1.0");

    // Dist-tags: add, install by tag, list, remove.
    npm.npm_ok(w, &["dist-tag", "add", "greet-lib@1.0.0", "stable"]);
    let tags = npm.npm_ok(w, &["dist-tag", "ls", "greet-lib"]);
    assert!(
        tags.contains("stable: 1.0.0") && tags.contains("latest: 1.1.0"),
        "{tags}"
    );
    let by_tag = project(w, "by-tag");
    npm.npm_ok(&by_tag, &["install", "greet-lib@stable"]);
    let installed = std::fs::read_to_string(by_tag.join("node_modules/greet-lib/package.json")).unwrap();
    assert!(installed.contains("\"version\": \"1.0.0\""), "{installed}");
    npm.npm_ok(w, &["dist-tag", "rm", "greet-lib", "stable"]);
    let tags = npm.npm_ok(w, &["dist-tag", "ls", "greet-lib"]);
    assert!(!tags.contains("stable"), "{tags}");
    let gone = npm.npm(&by_tag, &["install", "greet-lib@stable"]);
    assert!(!gone.status.success(), "installing a removed tag must fail");

    // Deprecate: npm warns on install; undeprecate removes the warning.
    npm.npm_ok(w, &["deprecate", "greet-lib@1.0.0", "please use 1.1.0"]);
    let dep = project(w, "deprecated");
    let out = npm.npm(&dep, &["install", "greet-lib@1.0.0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("deprecated") && stderr.contains("please use 1.1.0"),
        "{stderr}"
    );
    let view: serde_json::Value =
        serde_json::from_str(&npm.npm_ok(w, &["view", "greet-lib@1.0.0", "deprecated", "--json"])).unwrap();
    assert_eq!(view, "please use 1.1.0");

    // Search finds a published package and shows its description.
    let found = npm.npm_ok(w, &["search", "greet"]);
    assert!(found.contains("greet-lib"), "{found}");
    let none = npm.npm_ok(w, &["search", "no-such-thing-anywhere"]);
    assert!(!none.contains("greet-lib"), "{none}");

    // Unpublish one version: gone from metadata and its tarball is gone.
    npm.npm_ok(w, &["unpublish", "greet-lib@1.0.0"]);
    let view: serde_json::Value = serde_json::from_str(&npm.npm_ok(w, &["view", "greet-lib", "--json"])).unwrap();
    assert_eq!(view["versions"], serde_json::json!(["1.1.0"]), "{view}");
    assert!(!storage.join("greet-lib/greet-lib-1.0.0.tgz").exists());
    assert!(storage.join("greet-lib/greet-lib-1.1.0.tgz").exists());
    let http = http();
    let r = http
        .get(&format!("{}greet-lib/-/greet-lib-1.0.0.tgz", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.status, 404);

    // Unpublish a whole (scoped) package.
    npm.npm_ok(w, &["unpublish", "@acme/util", "--force"]);
    let out = npm.npm(w, &["view", "@acme/util"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert!(!storage.join("@acme/util").exists());
    let list = std::fs::read_to_string(storage.join(".verdaccio-db.json")).unwrap();
    assert!(!list.contains("@acme/util") && list.contains("greet-lib"), "{list}");
}
