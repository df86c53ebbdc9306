//! The npm CLI round trip that every storage backend must pass: publish, install, dist-tags,
//! deprecate, search, view, unpublish of a version and of a package.

use super::moto::Moto;
use super::*;

/// What a backend stored, by registry key (`<name>/package.json`, `<name>/<file>.tgz`).
pub trait Stored {
    /// Whether `key` is a stored object, or a folder with anything in it.
    fn exists(&self, key: &str) -> bool;
    fn read(&self, key: &str) -> Option<Vec<u8>>;
    /// The key of Verdaccio's package list in this layout.
    fn package_list(&self) -> &'static str;
}

/// A storage folder.
pub struct Folder<'a>(pub &'a Path);

impl Stored for Folder<'_> {
    fn exists(&self, key: &str) -> bool {
        self.0.join(key).exists()
    }
    fn read(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.0.join(key)).ok()
    }
    fn package_list(&self) -> &'static str {
        ".verdaccio-db.json"
    }
}

/// A bucket and key prefix (ending in `/` or empty) on moto.
pub struct Bucket<'a> {
    pub moto: &'a Moto,
    pub bucket: &'a str,
    pub prefix: &'a str,
}

impl Stored for Bucket<'_> {
    fn exists(&self, key: &str) -> bool {
        let full = format!("{}{key}", self.prefix);
        self.moto.head(self.bucket, &full).is_some() || !self.moto.keys(self.bucket, &format!("{full}/")).is_empty()
    }
    fn read(&self, key: &str) -> Option<Vec<u8>> {
        self.moto.get(self.bucket, &format!("{}{key}", self.prefix))
    }
    fn package_list(&self) -> &'static str {
        "verdaccio-s3-db.json"
    }
}

/// Runs the round trip against the registry at `registry` (ending in `/`), working in `w`.
pub fn npm_round_trip(registry: &str, w: &Path, stored: &dyn Stored) {
    let npm = Client::new(registry);

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
    assert!(!stored.exists("greet-lib/greet-lib-1.0.0.tgz"));
    assert!(stored.exists("greet-lib/greet-lib-1.1.0.tgz"));
    let http = http();
    let r = http
        .get(&format!("{registry}greet-lib/-/greet-lib-1.0.0.tgz"))
        .send()
        .unwrap();
    assert_eq!(r.status, 404);

    // Unpublish a whole (scoped) package.
    npm.npm_ok(w, &["unpublish", "@acme/util", "--force"]);
    let out = npm.npm(w, &["view", "@acme/util"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert!(!stored.exists("@acme/util"));
    let list = String::from_utf8(stored.read(stored.package_list()).unwrap()).unwrap();
    assert!(!list.contains("@acme/util") && list.contains("greet-lib"), "{list}");
}
