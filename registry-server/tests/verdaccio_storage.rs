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
