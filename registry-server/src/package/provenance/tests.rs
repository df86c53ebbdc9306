use super::*;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;

/// A self-signed P-256 certificate and its key, made once with the openssl CLI for these tests.
pub const TEST_CERT: &str = "MIIBmDCCAT+gAwIBAgIUXXka2LqKp9BF/obLT645GOY6uz0wCgYIKoZIzj0EAwIwITEfMB0GA1UEAwwWcHJvdmVuYW5jZSB0ZXN0IHNpZ25lcjAgFw0yNjEyMDIwMDU0NTRaGA8yMTI2MTEwODAwNTQ1NFowITEfMB0GA1UEAwwWcHJvdmVuYW5jZSB0ZXN0IHNpZ25lcjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABD+rAzLcgWbBnRDlC9+GhNYH/6f6HV9LIdvldGbLfh09BNsk+P2nRiVf8G9pJr5MQ3G9kcQolBokAMnO+xB7nnyjUzBRMB0GA1UdDgQWBBQMx7PCJy9pMG/0aEVfvG/rP1B6YzAfBgNVHSMEGDAWgBQMx7PCJy9pMG/0aEVfvG/rP1B6YzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIDBvEi6WYlENhH+ble27tr6v+Ew3MzH47kO49tnVMuE6AiBS1Y0F9idt+SPFAQiTUrFakxhz4c2UTdHkFrujyzZVSg==";
pub const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIhKVgHhZk8uSw1Vr
zl5VbHVgKDe+KraraBAojh29UNShRANCAAQ/qwMy3IFmwZ0Q5QvfhoTWB/+n+h1f
SyHb5XRmy34dPQTbJPj9p0YlX/BvaSa+TENxvZHEKJQaJADJzvsQe558
-----END PRIVATE KEY-----
";

const SLSA: &str = "https://slsa.dev/provenance/v1";

fn statement(subject: &str, sha512: &str) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject, "digest": {"sha512": sha512}}],
        "predicateType": SLSA,
        "predicate": {"buildDefinition": {"buildType": "test"}}
    })
}

/// A v0.3 bundle over `statement`, signed with the test key.
pub fn bundle(statement: &Value) -> Value {
    let payload = serde_json::to_vec(statement).unwrap();
    let key = SigningKey::from_pkcs8_pem(TEST_KEY).unwrap();
    let sig: p256::ecdsa::Signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload));
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": TEST_CERT}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": STANDARD.encode(&payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": STANDARD.encode(sig.to_der().as_bytes()), "keyid": ""}]
        }
    })
}

fn tarball_sha512(tarball: &[u8]) -> String {
    hex::encode(Sha512::digest(tarball))
}

#[test]
fn a_bundle_about_this_tarball_is_accepted_and_its_signature_checked() {
    let tarball = b"tarball bytes";
    let b = bundle(&statement("pkg:npm/%40s/p@1.0.0", &tarball_sha512(tarball)));
    let a = validate(&b.to_string(), "@s/p", "1.0.0", tarball).unwrap();
    assert_eq!(a.predicate_type, SLSA);
    assert_eq!(a.bundle, b);
    let b = bundle(&statement("pkg:npm/plain@2.0.0", &tarball_sha512(tarball)));
    assert!(validate(&b.to_string(), "plain", "2.0.0", tarball).is_ok());
}

#[test]
fn a_subject_that_is_not_this_publish_is_refused_naming_the_mismatch() {
    let tarball = b"tarball bytes";
    let other = tarball_sha512(b"other bytes");
    let b = bundle(&statement("pkg:npm/%40s/p@1.0.0", &other));
    let e = validate(&b.to_string(), "@s/p", "1.0.0", tarball)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not match the tarball's sha512") && e.contains(&other),
        "{e}"
    );
    let b = bundle(&statement("pkg:npm/%40s/p@1.0.1", &tarball_sha512(tarball)));
    let e = validate(&b.to_string(), "@s/p", "1.0.0", tarball)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pkg:npm/%40s/p@1.0.1") && e.contains("pkg:npm/%40s/p@1.0.0"),
        "{e}"
    );
    let b = bundle(&statement("pkg:npm/@s/p@1.0.0", &tarball_sha512(tarball)));
    assert!(
        validate(&b.to_string(), "@s/p", "1.0.0", tarball).is_err(),
        "npm escapes the @"
    );
}

#[test]
fn a_tampered_envelope_is_refused() {
    let tarball = b"t";
    let mut b = bundle(&statement("pkg:npm/p@1.0.0", &tarball_sha512(tarball)));
    let mut forged = statement("pkg:npm/p@1.0.0", &tarball_sha512(tarball));
    forged["predicate"] = json!({"evil": true});
    b["dsseEnvelope"]["payload"] = json!(STANDARD.encode(serde_json::to_vec(&forged).unwrap()));
    let e = validate(&b.to_string(), "p", "1.0.0", tarball).unwrap_err().to_string();
    assert!(e.contains("does not verify"), "{e}");
}

#[test]
fn shapes_that_are_no_provenance_bundle_are_refused() {
    let tarball = b"t";
    let good = bundle(&statement("pkg:npm/p@1.0.0", &tarball_sha512(tarball)));
    type Spoil = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Spoil, &str)> = vec![
        (Box::new(|b| b["mediaType"] = json!("application/json")), "mediaType"),
        (
            Box::new(|b| b["dsseEnvelope"]["payloadType"] = json!("text/plain")),
            "payloadType",
        ),
        (Box::new(|b| b["dsseEnvelope"]["signatures"] = json!([])), "signatures"),
        (Box::new(|b| b["dsseEnvelope"]["payload"] = json!("%%%")), "base64"),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("dsseEnvelope");
            }),
            "dsseEnvelope",
        ),
        (
            Box::new(|b| b["verificationMaterial"] = json!({})),
            "verificationMaterial",
        ),
        (
            Box::new(|b| b["verificationMaterial"]["certificate"]["rawBytes"] = json!(STANDARD.encode(b"junk"))),
            "X.509",
        ),
        (
            // A forged bundle naming a key instead of a certificate: nothing to verify it with.
            Box::new(|b| {
                b["verificationMaterial"] = json!({"publicKey": {"hint": "some-key"}, "tlogEntries": []});
                b["dsseEnvelope"]["signatures"][0]["sig"] = json!(STANDARD.encode(b"garbage"));
            }),
            "names a publicKey",
        ),
    ];
    for (spoil, expected) in cases {
        let mut b = good.clone();
        spoil(&mut b);
        let e = validate(&b.to_string(), "p", "1.0.0", tarball).unwrap_err().to_string();
        assert!(e.contains(expected), "{expected}: {e}");
    }
    assert!(validate("not json", "p", "1.0.0", tarball).is_err());
    let mut two = statement("pkg:npm/p@1.0.0", &tarball_sha512(tarball));
    two["subject"] = json!([two["subject"][0], two["subject"][0]]);
    let e = validate(&bundle(&two).to_string(), "p", "1.0.0", tarball)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exactly one subject"), "{e}");
}

#[test]
fn names_as_npm_spells_them() {
    assert_eq!(attachment_file("@s/p", "1.0.0"), "p-1.0.0.sigstore");
    assert_eq!(attachment_file("p", "1.0.0-rc.1"), "p-1.0.0-rc.1.sigstore");
    assert_eq!(purl("@s/p", "1.0.0"), "pkg:npm/%40s/p@1.0.0");
    assert_eq!(
        pae("application/vnd.in-toto+json", b"{}"),
        b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    );
}
