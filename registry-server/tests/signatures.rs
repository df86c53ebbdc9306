//! Registry signing keys and provenance against the real server binary, checked with the openssl
//! CLI (not our code): the key a server makes on first start (kept in storage, the same after a
//! restart), a key given as a PEM file with a retired one, signatures of our signature function,
//! and provenance bundles published, served back, refused when they are about another tarball.

mod common;

use common::sigstore::{self, openssl_keyid, openssl_verifies, publish_with_provenance, sha512_hex};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn keys(server: &Server) -> Res {
    http().get(&format!("{}-/npm/v1/keys", server.url())).send().unwrap()
}

fn publish(server: &Server, name: &str, body: &Value) -> Res {
    http()
        .request(Method::PUT, &format!("{}{}", server.url(), name.replace('/', "%2f")))
        .json(body)
        .send()
        .unwrap()
}

#[test]
fn a_generated_key_is_kept_in_storage_and_served_as_npm_reads_keys() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let server = Server::start(ANYONE_PUBLISHES, &storage);
    let r = keys(&server);
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let key = &listed[0];
    assert_eq!(key["keytype"], "ecdsa-sha2-nistp256");
    assert_eq!(key["scheme"], "ecdsa-sha2-nistp256");
    assert_eq!(key["expires"], Value::Null);
    let b64 = key["key"].as_str().unwrap();
    assert_eq!(
        key["keyid"].as_str().unwrap(),
        openssl_keyid(b64),
        "the key id openssl computes"
    );
    assert!(storage.join(".npm-registry/signing/keys.json").exists());

    // Signatures of our signature function verify with openssl against a key as served.
    let k = registry_server::package::signature::RegistryKey::from_random([9; 32]).unwrap();
    let payload = registry_server::package::signature::payload("@s/p", "1.0.0", "sha512-abc==");
    let sig = k.sign("@s/p", "1.0.0", "sha512-abc==");
    assert!(openssl_verifies(&k.public().key, &payload, &sig));
    assert!(!openssl_verifies(&k.public().key, "@s/p@1.0.1:sha512-abc==", &sig));
    assert!(!openssl_verifies(listed[0]["key"].as_str().unwrap(), &payload, &sig));

    drop(server);
    let again = Server::start(ANYONE_PUBLISHES, &storage);
    assert_eq!(
        keys(&again).json()["keys"],
        json!(listed),
        "the same key after a restart"
    );
}

#[test]
fn a_key_file_made_by_openssl_and_a_retired_key() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new(common::oidc_issuer::openssl())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "current.pem",
    ]);
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "old.pem"]);
    openssl(&["ec", "-in", "old.pem", "-pubout", "-out", "old.pub.pem"]);
    let config = format!(
        "{ANYONE_PUBLISHES}signing:\n  key_file: {}\n  retired_keys:\n    - {{key_file: {}, expires: '2026-01-01T00:00:00Z'}}\n",
        dir.join("current.pem").display(),
        dir.join("old.pub.pem").display()
    );
    let storage = dir.join("storage");
    let server = Server::start(&config, &storage);
    let listed = keys(&server).json()["keys"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["expires"], Value::Null);
    assert_eq!(listed[1]["expires"], "2026-01-01T00:00:00.000Z");
    for k in &listed {
        assert_eq!(k["keyid"].as_str().unwrap(), openssl_keyid(k["key"].as_str().unwrap()));
    }
    assert!(!storage.join(".npm-registry/signing").exists(), "no key stored");
    // The served key is the file's public half, as openssl computes it.
    let out = std::process::Command::new("openssl")
        .args(["ec", "-in", "current.pem", "-pubout", "-outform", "DER"])
        .current_dir(dir)
        .output()
        .unwrap();
    use base64::Engine;
    assert_eq!(
        listed[0]["key"],
        base64::engine::general_purpose::STANDARD.encode(&out.stdout)
    );
}

#[test]
fn bad_signing_settings_stop_the_server_naming_the_key() {
    let printed = Server::refused(&format!(
        "{ANYONE_PUBLISHES}signing: {{key_file: /nonexistent/key.pem}}\n"
    ));
    assert!(
        printed.contains("signing.key_file") && printed.contains("/nonexistent/key.pem"),
        "{printed}"
    );
    let dir = tempfile::tempdir().unwrap();
    let rsa = dir.path().join("rsa.pem");
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-out", rsa.to_str().unwrap(), "2048"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = Server::refused(&format!("{ANYONE_PUBLISHES}signing: {{key_file: {}}}\n", rsa.display()));
    assert!(
        printed.contains("signing.key_file") && printed.contains("P-256"),
        "{printed}"
    );
}

#[test]
fn signing_can_be_switched_off() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        &format!("{ANYONE_PUBLISHES}signing: {{enabled: false}}\n"),
        &work.path().join("storage"),
    );
    assert_eq!(keys(&server).status, 404, "npm then checks no signatures");
}

#[test]
fn a_publish_with_provenance_serves_its_bundle_back() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let server = Server::start(ANYONE_PUBLISHES, &storage);
    let signer = sigstore::Signer::new();
    let tarball = noise(2000);
    let bundle = signer.bundle("pkg:npm/%40acme/widgets@1.0.0", &sha512_hex(&tarball));
    let r = publish(
        &server,
        "@acme/widgets",
        &publish_with_provenance("@acme/widgets", "1.0.0", &tarball, &bundle),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    let doc = http()
        .get(&format!("{}@acme%2fwidgets", server.url()))
        .send()
        .unwrap()
        .json();
    let att = &doc["versions"]["1.0.0"]["dist"]["attestations"];
    assert_eq!(att["provenance"]["predicateType"], "https://slsa.dev/provenance/v1");
    let url = att["url"].as_str().unwrap();
    assert!(url.ends_with("/-/npm/v1/attestations/@acme%2fwidgets@1.0.0"), "{url}");
    // As pacote fetches it: the URL's path on the configured registry.
    let path = url::Url::parse(url).unwrap().path().to_owned();
    let r = http().get(&format!("{}{}", server.url(), &path[1..])).send().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": bundle}]})
    );
    let r = http()
        .get(&format!("{}-/npm/v1/attestations/@acme/widgets@2.0.0", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn a_bundle_about_another_tarball_is_refused_and_nothing_is_stored() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let server = Server::start(ANYONE_PUBLISHES, &storage);
    let before = package_files(&storage);
    let signer = sigstore::Signer::new();
    let tarball = noise(2000);
    let other = sha512_hex(b"some other tarball");
    let bundle = signer.bundle("pkg:npm/%40acme/widgets@1.0.0", &other);
    let r = publish(
        &server,
        "@acme/widgets",
        &publish_with_provenance("@acme/widgets", "1.0.0", &tarball, &bundle),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let message = r.json()["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("does not match the tarball's sha512") && message.contains(&other),
        "{message}"
    );
    let wrong_version = signer.bundle("pkg:npm/%40acme/widgets@9.9.9", &sha512_hex(&tarball));
    let r = publish(
        &server,
        "@acme/widgets",
        &publish_with_provenance("@acme/widgets", "1.0.0", &tarball, &wrong_version),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("pkg:npm/%40acme/widgets@9.9.9"), "{}", r.text());
    let mut tampered = signer.bundle("pkg:npm/%40acme/widgets@1.0.0", &sha512_hex(&tarball));
    tampered["dsseEnvelope"]["signatures"] =
        json!([{"sig": signer.bundle("pkg:npm/x@1.0.0", "00")["dsseEnvelope"]["signatures"][0]["sig"], "keyid": ""}]);
    let r = publish(
        &server,
        "@acme/widgets",
        &publish_with_provenance("@acme/widgets", "1.0.0", &tarball, &tampered),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("does not verify"), "{}", r.text());
    // A forged bundle that names a key instead of carrying a certificate, its signature garbage.
    let mut forged = signer.bundle("pkg:npm/%40acme/widgets@1.0.0", &sha512_hex(&tarball));
    forged["verificationMaterial"] = json!({"publicKey": {"hint": "a-key-nobody-knows"}, "tlogEntries": []});
    forged["dsseEnvelope"]["signatures"] = json!([{"sig": "Z2FyYmFnZQ==", "keyid": "a-key-nobody-knows"}]);
    let r = publish(
        &server,
        "@acme/widgets",
        &publish_with_provenance("@acme/widgets", "1.0.0", &tarball, &forged),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("names a publicKey"), "{}", r.text());
    let after = package_files(&storage);
    assert_eq!(before, after, "nothing was written");
    let ping = http().get(&format!("{}-/ping", server.url())).send().unwrap();
    assert!(ping.is_success(), "still serving");
}
