//! Test material for signatures and provenance, made with the openssl CLI so that what the server
//! signs or accepts is checked by code that is not ours: a P-256 key and self-signed certificate,
//! a Sigstore bundle whose DSSE envelope openssl signs, and `openssl dgst -verify` of a registry
//! signature with a key as `GET /-/npm/v1/keys` serves it.

use super::oidc_issuer::openssl;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};
use std::path::Path;
use std::process::Command;

fn run(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new(openssl()).args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A key from `/-/npm/v1/keys` as npm turns it into PEM.
pub fn public_pem(key_base64: &str) -> String {
    let wrapped: Vec<String> = key_base64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        wrapped.join("\n")
    )
}

/// `openssl dgst -sha256 -verify` of a registry signature (`sig`, base64 DER) of `payload`.
pub fn openssl_verifies(key_base64: &str, payload: &str, sig: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pub.pem"), public_pem(key_base64)).unwrap();
    std::fs::write(dir.path().join("payload"), payload).unwrap();
    std::fs::write(dir.path().join("sig.der"), STANDARD.decode(sig).unwrap()).unwrap();
    Command::new(openssl())
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "payload",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap()
        .status
        .success()
}

/// The key id npm expects of a served key, computed by openssl: `SHA256:` + unpadded base64 of
/// the SHA-256 of the SPKI DER (the DER read back from the PEM by `openssl pkey`).
pub fn openssl_keyid(key_base64: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pub.pem"), public_pem(key_base64)).unwrap();
    run(
        &["pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "pub.der"],
        dir.path(),
    );
    let digest = run(&["dgst", "-sha256", "-binary", "pub.der"], dir.path());
    format!("SHA256:{}", STANDARD_NO_PAD.encode(digest))
}

/// A P-256 signing key and self-signed certificate made by openssl, for provenance bundles.
pub struct Signer {
    dir: tempfile::TempDir,
    cert_der: Vec<u8>,
}

impl Signer {
    pub fn new() -> Signer {
        let dir = tempfile::tempdir().unwrap();
        run(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-subj",
                "/CN=provenance test",
                "-days",
                "2",
            ],
            dir.path(),
        );
        let cert_der = run(&["x509", "-in", "cert.pem", "-outform", "DER"], dir.path());
        Signer { dir, cert_der }
    }

    /// A Sigstore v0.3 bundle of an in-toto statement about `subject` with `sha512` (hex), its
    /// envelope signed by openssl.
    pub fn bundle(&self, subject: &str, sha512: &str) -> Value {
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": subject, "digest": {"sha512": sha512}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "https://example.test/build/v1"}, "runDetails": {}},
        });
        let payload = serde_json::to_vec(&statement).unwrap();
        let payload_type = "application/vnd.in-toto+json";
        let mut pae = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
        pae.extend_from_slice(&payload);
        std::fs::write(self.dir.path().join("pae"), &pae).unwrap();
        run(
            &["dgst", "-sha256", "-sign", "key.pem", "-out", "sig.der", "pae"],
            self.dir.path(),
        );
        let sig = std::fs::read(self.dir.path().join("sig.der")).unwrap();
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": STANDARD.encode(&self.cert_der)},
                "tlogEntries": [],
            },
            "dsseEnvelope": {
                "payload": STANDARD.encode(&payload),
                "payloadType": payload_type,
                "signatures": [{"sig": STANDARD.encode(sig), "keyid": ""}],
            },
        })
    }
}

/// The hex sha512 npm puts in a statement's subject.
pub fn sha512_hex(bytes: &[u8]) -> String {
    hex::encode(Sha512::digest(bytes))
}

/// An npm publish body of `name@version` with `bundle` as its provenance attachment.
pub fn publish_with_provenance(name: &str, version: &str, tarball: &[u8], bundle: &Value) -> Value {
    let mut body = super::publish_body(name, version, tarball);
    let text = bundle.to_string();
    body["_attachments"][format!("{name}-{version}.sigstore")] = json!({
        "content_type": bundle["mediaType"], "data": text, "length": text.len(),
    });
    body
}
