//! Provenance attached to a publish (`_attachments["<name>-<version>.sigstore"]`, its `data` the
//! bundle's JSON text): checked to be a Sigstore bundle whose DSSE envelope carries an in-toto
//! statement about exactly this tarball (`pkg:npm/<name>@<version>`, the tarball's sha512), and
//! whose envelope signature verifies with the key of the certificate the bundle carries (ECDSA
//! P-256, what Sigstore's clients make). A bundle is stored only when that signature verifies: a
//! bundle that names a `publicKey` instead of a certificate is refused, since this registry knows
//! no provenance keys to look such a hint up in, and so is a certificate of another key type.
//!
//! Not checked here, since it needs Sigstore's trust root (Fulcio's CA, Rekor's key), which a
//! registry without internet access cannot reach: that the certificate chains to Fulcio, the
//! transparency log entry, and the identity the certificate names. npm checks those itself
//! (`npm audit signatures`) against the bundle served back unchanged.

use super::PackageError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;
use sha2::{Digest, Sha512};
use x509_cert::der::{Decode, Encode};

pub const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const STATEMENT_TYPES: &[&str] = &["https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"];

/// A checked provenance bundle, as the attestations endpoint serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    pub predicate_type: String,
    pub bundle: Value,
}

/// The attachment name npm gives a version's bundle (`@s/p-1.0.0.sigstore` for `@s/p`): by basename,
/// as tarball attachments are matched.
pub fn attachment_file(name: &str, version: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    format!("{base}-{version}.sigstore")
}

/// The package URL npm puts in a statement's subject (`pkg:npm/%40s/p@1.0.0`).
pub fn purl(name: &str, version: &str) -> String {
    match name.strip_prefix('@') {
        Some(rest) => format!("pkg:npm/%40{rest}@{version}"),
        None => format!("pkg:npm/{name}@{version}"),
    }
}

fn bad(msg: impl Into<String>) -> PackageError {
    PackageError::Provenance(msg.into())
}

fn base64_field(v: Option<&Value>, what: &str) -> Result<Vec<u8>, PackageError> {
    let text = v
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{what} is missing")))?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| bad(format!("{what} is not base64")))?;
    if bytes.is_empty() {
        return Err(bad(format!("{what} is empty")));
    }
    Ok(bytes)
}

/// The certificate (DER) the bundle's signature is to be checked with: v0.3's `certificate`, or
/// the leaf of an older `x509CertificateChain`. A bundle signed with a key it only names
/// (`publicKey`, a hint) cannot be checked here: refused.
fn leaf_certificate(material: &Value) -> Result<Vec<u8>, PackageError> {
    if let Some(cert) = material.get("certificate") {
        return base64_field(cert.get("rawBytes"), "verificationMaterial.certificate.rawBytes");
    }
    if let Some(chain) = material.get("x509CertificateChain") {
        let leaf = chain.pointer("/certificates/0/rawBytes");
        return base64_field(
            leaf,
            "verificationMaterial.x509CertificateChain.certificates[0].rawBytes",
        );
    }
    if material.get("publicKey").is_some() {
        return Err(bad(
            "the bundle names a publicKey instead of carrying a certificate: this registry knows no \
             provenance keys, so its signature cannot be verified (npm publish --provenance makes \
             bundles with a Sigstore certificate)",
        ));
    }
    Err(bad(
        "verificationMaterial has no certificate, x509CertificateChain or publicKey",
    ))
}

/// DSSE's pre-authentication encoding: what an envelope signature covers.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks `sig` over the envelope with the certificate's key, which must be a P-256 key.
fn check_signature(cert_der: &[u8], payload_type: &str, payload: &[u8], sig: &[u8]) -> Result<(), PackageError> {
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| bad(format!("the bundle's certificate is not X.509 DER: {e}")))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| bad(format!("the bundle's certificate key cannot be read: {e}")))?;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).map_err(|_| {
        bad("the bundle's certificate key is not an ECDSA P-256 key, the only kind this registry verifies")
    })?;
    let sig = p256::ecdsa::Signature::from_der(sig)
        .map_err(|_| bad("the envelope signature is not a DER ECDSA signature"))?;
    key.verify(&pae(payload_type, payload), &sig)
        .map_err(|_| bad("the envelope signature does not verify with the bundle's certificate"))
}

/// Checks the bundle `text` attached to the publish of `name@version` whose tarball is `tarball`.
pub fn validate(text: &str, name: &str, version: &str, tarball: &[u8]) -> Result<Attestation, PackageError> {
    let bundle: Value = serde_json::from_str(text).map_err(|e| bad(format!("the bundle is not JSON: {e}")))?;
    let media_type = bundle.get("mediaType").and_then(Value::as_str).unwrap_or_default();
    if !media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
        return Err(bad(format!(
            "mediaType {media_type:?} is not a Sigstore bundle's ({BUNDLE_MEDIA_TYPE_PREFIX}...)"
        )));
    }
    let material = bundle
        .get("verificationMaterial")
        .filter(|m| m.is_object())
        .ok_or_else(|| bad("the bundle has no verificationMaterial"))?;
    let certificate = leaf_certificate(material)?;
    let envelope = bundle
        .get("dsseEnvelope")
        .filter(|e| e.is_object())
        .ok_or_else(|| bad("the bundle has no dsseEnvelope (a provenance statement is signed in one)"))?;
    let payload_type = envelope.get("payloadType").and_then(Value::as_str).unwrap_or_default();
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(bad(format!(
            "dsseEnvelope.payloadType is {payload_type:?}, not {IN_TOTO_PAYLOAD_TYPE}"
        )));
    }
    let payload = base64_field(envelope.get("payload"), "dsseEnvelope.payload")?;
    let signatures = envelope
        .get("signatures")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("dsseEnvelope.signatures is empty"))?;
    let sig = base64_field(signatures[0].get("sig"), "dsseEnvelope.signatures[0].sig")?;

    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|e| bad(format!("dsseEnvelope.payload is not an in-toto statement: {e}")))?;
    let statement_type = statement.get("_type").and_then(Value::as_str).unwrap_or_default();
    if !STATEMENT_TYPES.contains(&statement_type) {
        return Err(bad(format!(
            "the statement's _type {statement_type:?} is not an in-toto statement"
        )));
    }
    let predicate_type = statement
        .get("predicateType")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("the statement has no predicateType"))?
        .to_owned();
    let subjects = statement
        .get("subject")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [subject] = subjects else {
        return Err(bad(format!(
            "the statement must have exactly one subject, it has {}",
            subjects.len()
        )));
    };
    let expected_name = purl(name, version);
    let subject_name = subject.get("name").and_then(Value::as_str).unwrap_or_default();
    if subject_name != expected_name {
        return Err(bad(format!(
            "the statement's subject is {subject_name:?}, but this publish is {expected_name}"
        )));
    }
    let expected_digest = hex::encode(Sha512::digest(tarball));
    let digest = subject
        .pointer("/digest/sha512")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !digest.eq_ignore_ascii_case(&expected_digest) {
        return Err(bad(format!(
            "the statement's subject digest sha512 {digest:?} does not match the tarball's sha512 {expected_digest}"
        )));
    }
    check_signature(&certificate, payload_type, &payload, &sig)?;
    Ok(Attestation { predicate_type, bundle })
}

#[cfg(test)]
pub(crate) mod tests;
