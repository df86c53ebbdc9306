//! `npm audit signatures` with the real npm CLI over a tree that mixes packages hosted here (one
//! published before this registry signed anything) with one proxied from a second instance of
//! our server that has its own key; and every served signature checked with the openssl CLI
//! against the key `GET /-/npm/v1/keys` serves, in the full and abbreviated documents and the
//! version endpoint. (Offline, npm's first step, asking Sigstore's TUF repository whether it lists
//! this registry, is answered "no" by `common/tuf_offline.js`, as it would be online.)

mod common;

use common::sigstore::openssl_verifies;
use common::*;
use serde_json::Value;

const CORGI: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

/// Server A: `@b/*` proxied from B, everything else hosted.
fn hosting_config(uplink: &str, signing: &str) -> String {
    format!(
        "uplinks:\n  b:\n    url: {uplink}\n    maxage: 0s\n\
         packages:\n  '@b/*':\n    access: $all\n    publish: $authenticated\n    proxy: b\n\
         \x20 '**':\n    access: $all\n    publish: $authenticated\n{signing}"
    )
}

fn keys(server: &Server) -> Vec<Value> {
    let r = http().get(&format!("{}-/npm/v1/keys", server.url())).send().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["keys"].as_array().unwrap().clone()
}

/// The one signature of `dist`, after checking it names `keyid`.
fn signature(dist: &Value, keyid: &str, what: &str) -> String {
    let sigs = dist["signatures"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no dist.signatures in {dist}"));
    assert_eq!(sigs.len(), 1, "{what}: {sigs:?}");
    assert_eq!(sigs[0]["keyid"], keyid, "{what}");
    sigs[0]["sig"].as_str().unwrap().to_owned()
}

/// Every view of `name@version` served by `server` carries a signature by `keyid` that openssl
/// verifies with `key` (base64 SPKI as served) over `name@version:integrity`.
fn served_signatures_verify(server: &Server, name: &str, version: &str, keyid: &str, key: &str) {
    let url = format!("{}{}", server.url(), name.replace('/', "%2f"));
    let full = http().get(&url).send().unwrap().json();
    let corgi = http().get(&url).header("accept", CORGI).send().unwrap().json();
    let one = http().get(&format!("{url}/{version}")).send().unwrap().json();
    assert!(corgi.get("readme").is_none(), "the abbreviated form was asked for");
    let views = [
        ("full", &full["versions"][version]["dist"]),
        ("abbreviated", &corgi["versions"][version]["dist"]),
        ("version", &one["dist"]),
    ];
    for (what, dist) in views {
        let integrity = dist["integrity"].as_str().unwrap();
        let payload = format!("{name}@{version}:{integrity}");
        let sig = signature(dist, keyid, &format!("{name}@{version} {what}"));
        assert!(
            openssl_verifies(key, &payload, &sig),
            "{name}@{version} ({what}): openssl does not verify {sig} over {payload}"
        );
        // The check is real: the same signature over another version fails.
        assert!(!openssl_verifies(key, &format!("{name}@0.0.0:{integrity}"), &sig));
    }
}

#[test]
fn npm_audit_signatures_verifies_hosted_and_proxied_packages() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // B hosts @b/dep, signed with B's own key.
    let b = Server::start_default(&w.join("b"));
    let b_key = keys(&b);
    assert_eq!(b_key.len(), 1);
    Client::new(&b.url()).npm_ok(
        &write_package(w, "@b/dep", "1.0.0", &[], "module.exports = 'dep';\n"),
        &["publish"],
    );

    // A first signs nothing: legacy-lib is stored without any signature.
    let storage = w.join("a");
    let a = Server::start(&hosting_config(&b.url(), "signing: {enabled: false}\n"), &storage);
    let publisher = Client::new(&a.url());
    publisher.npm_ok(
        &write_package(w, "legacy-lib", "1.0.0", &[], "module.exports = 'old';\n"),
        &["publish"],
    );
    drop(a);
    let stored = std::fs::read_to_string(storage.join("legacy-lib/package.json")).unwrap();
    assert!(!stored.contains("signatures"), "{stored}");

    // Then A signs, and hosts hosted-lib, which needs the proxied @b/dep.
    let a = Server::start(&hosting_config(&b.url(), ""), &storage);
    let publisher = Client::with_token(&a.url(), &publisher.token.borrow());
    publisher.npm_ok(
        &write_package(
            w,
            "hosted-lib",
            "2.0.0",
            &[("@b/dep", "^1.0.0"), ("legacy-lib", "^1.0.0")],
            "module.exports = require('@b/dep') + require('legacy-lib');\n",
        ),
        &["publish"],
    );
    let a_keys = keys(&a);
    let (a_id, a_key) = (a_keys[0]["keyid"].as_str().unwrap(), a_keys[0]["key"].as_str().unwrap());
    let (b_id, b_key) = (b_key[0]["keyid"].as_str().unwrap(), b_key[0]["key"].as_str().unwrap());
    assert_ne!(a_id, b_id, "two instances, two keys");

    let user = Client::anonymous(&a.url());
    let p = project(w, "app");
    user.npm_ok(&p, &["install", "hosted-lib"]);
    assert_eq!(user.require(&p, "hosted-lib"), "depold");
    // A serves B's key beside its own once it proxies from B.
    let listed: Vec<_> = keys(&a)
        .iter()
        .map(|k| k["keyid"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        listed.contains(&a_id.to_owned()) && listed.contains(&b_id.to_owned()),
        "{listed:?}"
    );

    let out = user.npm_audit_signatures(&p);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("npm audit signatures:\n{stdout}\n{stderr}");
    assert!(out.status.success(), "npm audit signatures failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("3 packages have verified registry signatures"),
        "{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("missing") && !stdout.contains("invalid"), "{stdout}");

    // Independently of npm and of our code: openssl verifies what A serves with the keys A
    // serves; hosted versions by A's key, the proxied one by B's (kept as B signed it).
    served_signatures_verify(&a, "hosted-lib", "2.0.0", a_id, a_key);
    served_signatures_verify(&a, "legacy-lib", "1.0.0", a_id, a_key);
    served_signatures_verify(&a, "@b/dep", "1.0.0", b_id, b_key);
    served_signatures_verify(&b, "@b/dep", "1.0.0", b_id, b_key);
    let stored = std::fs::read_to_string(storage.join("legacy-lib/package.json")).unwrap();
    assert!(
        !stored.contains("signatures"),
        "reading signs nothing into storage: {stored}"
    );
}

/// Server B on a fixed port (so A's uplink URL stays valid across B's restarts), with `extra`
/// config (signing settings).
fn uplink_on(port: u16, dir: &std::path::Path, extra: &str) -> Server {
    let config = dir.join(format!("b-{port}-{}.yaml", extra.len()));
    std::fs::write(&config, format!("{OPEN_CONFIG}{extra}")).unwrap();
    let (config, listen, storage) = (
        config.display().to_string(),
        format!("127.0.0.1:{port}"),
        dir.join("b").display().to_string(),
    );
    let args = ["--config", &config, "--listen", &listen, "--storage", &storage];
    Server::start_on(port, &args, dir, &[])
}

/// The key ids `server` lists at `GET /-/npm/v1/keys`, with their keys.
fn listed(server: &Server) -> Vec<(String, String)> {
    keys(server)
        .iter()
        .map(|k| {
            (
                k["keyid"].as_str().unwrap().to_owned(),
                k["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_proxied_version_signed_by_a_rotated_upstream_key_verifies_at_once() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let port = free_port();
    let b = uplink_on(port, w, "");
    Client::new(&b.url()).npm_ok(
        &write_package(w, "@b/dep", "1.0.0", &[], "module.exports = 'dep';\n"),
        &["publish"],
    );
    let old = listed(&b);
    assert_eq!(old.len(), 1);

    // A proxies @b/* from B and has listed B's key since its first ask.
    let a = Server::start(&hosting_config(&b.url(), ""), &w.join("a"));
    let url = format!("{}@b%2fdep", a.url());
    assert!(listed(&a).contains(&old[0]));
    let before = http().get(&url).send().unwrap().json();
    signature(&before["versions"]["1.0.0"]["dist"], &old[0].0, "before the rotation");

    // B rotates its key (restarted with rotate_before: now): its versions are signed by the new one.
    drop(b);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let b = uplink_on(port, w, &format!("signing: {{rotate_before: '{now}'}}\n"));
    let new_id = listed(&b)
        .into_iter()
        .map(|(id, _)| id)
        .find(|id| *id != old[0].0)
        .expect("B has a new key");
    // A asks an uplink's keys again on an unknown key id at most every few seconds.
    std::thread::sleep(std::time::Duration::from_secs(5));

    // The first document A serves after it names the new key, and A lists that key right away.
    let after = http().get(&url).send().unwrap().json();
    signature(&after["versions"]["1.0.0"]["dist"], &new_id, "after the rotation");
    let a_lists = listed(&a);
    let (_, new_key) = a_lists
        .iter()
        .find(|(id, _)| *id == new_id)
        .unwrap_or_else(|| panic!("A does not list B's new key {new_id}: {a_lists:?}"));
    served_signatures_verify(&a, "@b/dep", "1.0.0", &new_id, new_key);
}
