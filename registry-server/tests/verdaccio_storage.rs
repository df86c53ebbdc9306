//! A storage folder and an htpasswd file written by the real Verdaccio are used as they are.

mod common;

use common::verdaccio::Verdaccio;
use common::*;

#[test]
fn verdaccio_storage_is_served() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let storage = w.join("storage");
    let config = format!(
        "storage: {storage}\nauth:\n  htpasswd:\n    file: {htpasswd}\n\
         packages:\n  '@*/*':\n    access: $all\n    publish: $authenticated\n  '**':\n    access: $all\n    publish: $authenticated\n\
         middlewares:\n  audit:\n    enabled: false\nlog: {{type: stdout, format: pretty, level: warn}}\n",
        storage = storage.display(),
        htpasswd = w.join("htpasswd").display()
    );
    let verdaccio = Verdaccio::start(w, &config);
    let vurl = verdaccio.url.clone();

    // Register with Verdaccio the way `npm adduser` does, then publish with the real npm.
    let token = verdaccio.login("tester", "secret-pass");
    let npm = Client::with_token(&vurl, &token);
    let plain = write_package(w, "from-verdaccio", "1.0.0", &[], "module.exports = 'v';\n");
    npm.npm_ok(&plain, &["publish"]);
    let plain2 = write_package(w, "from-verdaccio", "1.1.0", &[], "module.exports = 'v2';\n");
    npm.npm_ok(&plain2, &["publish"]);
    let scoped = write_package(
        w,
        "@old/thing",
        "3.0.0",
        &[("from-verdaccio", "^1.0.0")],
        "module.exports = require('from-verdaccio') + '!';\n",
    );
    npm.npm_ok(&scoped, &["publish"]);
    drop(verdaccio);
    assert!(storage.join("@old/thing/package.json").exists(), "Verdaccio's layout");

    // Our server on the same folder and Verdaccio's own htpasswd file: every package installs, and
    // the user Verdaccio registered logs in with the same password.
    let htpasswd = std::fs::read_to_string(w.join("htpasswd")).unwrap();
    assert!(htpasswd.starts_with("tester:"), "{htpasswd}");
    let config = format!(
        "auth:\n  htpasswd:\n    file: {}\npackages:\n  '**': {{access: $all, publish: $authenticated}}\n",
        w.join("htpasswd").display()
    );
    let server = Server::start(&config, &storage);
    let token = login(&server.url(), "tester", "secret-pass").unwrap_or_else(|r| panic!("{}", r.text()));
    assert_eq!(
        login(&server.url(), "tester", "not-the-password").unwrap_err().status,
        401
    );
    let ours = Client::with_token(&server.url(), &token);
    let p = project(w, "consumer");
    ours.npm_ok(&p, &["install", "@old/thing", "from-verdaccio@1.0.0"]);
    // The explicitly installed 1.0.0 also satisfies @old/thing's ^1.0.0, so npm dedupes to it.
    assert_eq!(ours.require(&p, "@old/thing"), "v!");
    // Verdaccio signed nothing; we sign what it stored, on the read path only.
    let audit = ours.npm_audit_signatures(&p);
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success() && said.contains("2 packages have verified registry signatures"),
        "{said}\n{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let stored = std::fs::read_to_string(storage.join("@old/thing/package.json")).unwrap();
    assert!(!stored.contains("\"signatures\""), "storage is not rewritten: {stored}");
    let view = ours.npm_ok(w, &["view", "from-verdaccio", "versions", "--json"]);
    assert!(view.contains("1.0.0") && view.contains("1.1.0"), "{view}");
    let found = ours.npm_ok(w, &["search", "from-verdaccio"]);
    assert!(
        found.contains("from-verdaccio"),
        "Verdaccio's package list is read: {found}"
    );

    // And a publish through us keeps Verdaccio's files readable by Verdaccio's own rules.
    let next = write_package(w, "from-verdaccio", "1.2.0", &[], "module.exports = 'v3';\n");
    ours.npm_ok(&next, &["publish"]);
    let db: serde_json::Value =
        serde_json::from_slice(&std::fs::read(storage.join(".verdaccio-db.json")).unwrap()).unwrap();
    assert!(db["secret"].is_string(), "Verdaccio's secret is preserved: {db}");
    assert_eq!(db["list"].as_array().unwrap().len(), 2, "{db}");
}

/// Serves `name@1.0.0` from the fake upstream.
fn serve(fake: &upstream::FakeUpstream, dir: &std::path::Path, name: &str) {
    use base64::Engine;
    use sha2::Digest;
    let bytes = npm_pack(dir, name, "1.0.0");
    let path = format!("/{name}/-/{name}-1.0.0.tgz");
    let sri = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&bytes))
    );
    let manifest = serde_json::json!({"name": name, "version": "1.0.0", "description": format!("upstream {name}"),
        "dist": {"tarball": fake.tarball_url(&path), "integrity": sri}});
    fake.add_tarball(&path, bytes);
    fake.add_packument(serde_json::json!({"name": name, "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": manifest}, "time": {"1.0.0": "2024-01-01T00:00:00.000Z"}}));
}

/// Verdaccio fills its storage through its uplink (npm installs three upstream packages) and one
/// package is published to it; on that folder our server lists, searches and counts only the
/// published one, and Verdaccio's package list stays as Verdaccio left it.
#[test]
fn verdaccios_proxy_cache_stays_cache() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let storage = w.join("storage");
    let fake = upstream::FakeUpstream::start();
    let upstream_names = ["cached-alpha", "cached-beta", "cached-gamma"];
    for name in upstream_names {
        serve(&fake, w, name);
    }
    let config = format!(
        "storage: {storage}\nauth:\n  htpasswd:\n    file: {htpasswd}\n\
         uplinks:\n  upstream:\n    url: {up}\n\
         packages:\n  'ours-*':\n    access: $all\n    publish: $authenticated\n  '**':\n    access: $all\n    publish: $authenticated\n    proxy: upstream\n\
         middlewares:\n  audit:\n    enabled: false\nlog: {{type: stdout, format: pretty, level: warn}}\n",
        storage = storage.display(),
        htpasswd = w.join("htpasswd").display(),
        up = fake.url(),
    );
    let verdaccio = Verdaccio::start(w, &config);
    let token = verdaccio.login("tester", "secret-pass");
    let npm = Client::with_token(&verdaccio.url, &token);
    let app = project(w, "app");
    let mut install = vec!["install"];
    install.extend(upstream_names);
    npm.npm_ok(&app, &install);
    let mine = write_package(w, "ours-local", "1.0.0", &[], "module.exports = 'ours';\n");
    npm.npm_ok(&mine, &["publish"]);
    drop(verdaccio);
    for name in upstream_names {
        let doc = std::fs::read_to_string(storage.join(name).join("package.json")).unwrap();
        assert!(doc.contains("\"_uplinks\""), "Verdaccio cached {name}: {doc}");
    }
    let db_before = std::fs::read(storage.join(".verdaccio-db.json")).unwrap();

    let server = Server::start("packages:\n  '**': {access: $all, publish: $authenticated}\n", &storage);
    let url = server.url();
    let http = http();
    let search = |text: &str| {
        http.get(&format!("{url}-/v1/search?text={text}&size=20"))
            .send()
            .unwrap()
            .json()
    };
    // The first repair pass (at once: Verdaccio's storage has no search index) indexes the
    // storage.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while search("ours-local")["total"] != 1 {
        assert!(std::time::Instant::now() < deadline, "not indexed:\n{}", server.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    for name in upstream_names {
        assert_eq!(search(name)["total"], 0, "{name} is a cache, not ours");
    }
    assert_eq!(search("upstream")["total"], 0, "nor found by its description");
    let home = web::Browser::new(&url).get("");
    assert!(home.body.contains("<span class=\"count\">1</span>"), "{}", home.body);
    assert!(home.body.contains("ours-local") && !home.body.contains("cached-alpha"));
    assert_eq!(
        std::fs::read(storage.join(".verdaccio-db.json")).unwrap(),
        db_before,
        "Verdaccio's package list is left as it was"
    );
    let db: serde_json::Value = serde_json::from_slice(&db_before).unwrap();
    assert_eq!(db["list"], serde_json::json!(["ours-local"]), "{db}");
}
