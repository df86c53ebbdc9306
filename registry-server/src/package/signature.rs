//! npm registry signatures: an ECDSA P-256 key, its key id as npm spells it, and the signature of
//! one version (`${name}@${version}:${integrity}`, SHA-256, DER, base64) that `npm audit
//! signatures` checks against `GET /-/npm/v1/keys`. Pure: keys come in as PEM text or random
//! bytes, nothing here touches storage.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

/// What `keytype` and `scheme` say of every key we serve.
pub const KEY_TYPE: &str = "ecdsa-sha2-nistp256";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM-encoded ECDSA P-256 key ({0})")]
    Invalid(String),
    #[error("a PEM {0:?} block is not an ECDSA P-256 key (use PRIVATE KEY, EC PRIVATE KEY or PUBLIC KEY)")]
    UnknownLabel(String),
}

/// The text every version's signature covers.
pub fn payload(name: &str, version: &str, integrity: &str) -> String {
    format!("{name}@{version}:{integrity}")
}

/// A public key as the keys endpoint describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `SHA256:` + unpadded base64 of the SHA-256 of the SPKI DER.
    pub keyid: String,
    /// The SPKI DER, base64 (what npm wraps in `BEGIN PUBLIC KEY`).
    pub key: String,
    verifying: VerifyingKey,
}

impl PublicKey {
    fn new(verifying: VerifyingKey) -> Self {
        let der = verifying.to_public_key_der().expect("a P-256 point encodes as SPKI");
        PublicKey {
            keyid: format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(der.as_bytes()))),
            key: STANDARD.encode(der.as_bytes()),
            verifying,
        }
    }

    /// Whether `sig` (base64 DER) is this key's signature of the version.
    pub fn verifies(&self, name: &str, version: &str, integrity: &str, sig: &str) -> bool {
        let Ok(der) = STANDARD.decode(sig) else {
            return false;
        };
        let Ok(sig) = Signature::from_der(&der) else {
            return false;
        };
        self.verifying
            .verify(payload(name, version, integrity).as_bytes(), &sig)
            .is_ok()
    }

    /// `-----BEGIN PUBLIC KEY-----` text.
    pub fn to_pem(&self) -> String {
        self.verifying
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 point encodes as PEM")
    }
}

/// A signing key and its public half.
#[derive(Clone)]
pub struct RegistryKey {
    signing: SigningKey,
    public: PublicKey,
}

impl std::fmt::Debug for RegistryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private half, even in a debug log.
        f.debug_struct("RegistryKey")
            .field("keyid", &self.public.keyid)
            .finish()
    }
}

fn label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = pem[start..].find("-----")?;
    Some(&pem[start..start + len])
}

impl RegistryKey {
    fn new(signing: SigningKey) -> Self {
        let public = PublicKey::new(*signing.verifying_key());
        RegistryKey { signing, public }
    }

    /// A key from 32 random bytes (`None` in the negligible case that they are no valid scalar).
    pub fn from_random(bytes: [u8; 32]) -> Option<Self> {
        SigningKey::from_bytes(&bytes.into()).ok().map(Self::new)
    }

    /// A `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1, what `openssl ecparam -genkey` writes) PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let invalid = |e: &dyn std::fmt::Display| KeyError::Invalid(e.to_string());
        match label(pem) {
            Some("PRIVATE KEY") => SigningKey::from_pkcs8_pem(pem).map(Self::new).map_err(|e| invalid(&e)),
            Some("EC PRIVATE KEY") => p256::SecretKey::from_sec1_pem(pem)
                .map(|k| Self::new(SigningKey::from(k)))
                .map_err(|e| invalid(&e)),
            Some(other) => Err(KeyError::UnknownLabel(other.to_owned())),
            None => Err(KeyError::Invalid("no PEM block".into())),
        }
    }

    /// PKCS#8 PEM, to keep the key.
    pub fn to_pem(&self) -> String {
        self.signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("a P-256 key encodes as PKCS#8")
            .to_string()
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The base64 DER signature of the version (deterministic: RFC 6979).
    pub fn sign(&self, name: &str, version: &str, integrity: &str) -> String {
        let sig: Signature = self.signing.sign(payload(name, version, integrity).as_bytes());
        STANDARD.encode(sig.to_der().as_bytes())
    }
}

/// The public half of a PEM key: a `PUBLIC KEY` block, or any private key [`RegistryKey::from_pem`]
/// reads (only its public half is kept).
pub fn public_from_pem(pem: &str) -> Result<PublicKey, KeyError> {
    match label(pem) {
        Some("PUBLIC KEY") => VerifyingKey::from_public_key_pem(pem)
            .map(PublicKey::new)
            .map_err(|e| KeyError::Invalid(e.to_string())),
        _ => RegistryKey::from_pem(pem).map(|k| k.public.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RegistryKey {
        RegistryKey::from_random([7; 32]).unwrap()
    }

    #[test]
    fn signs_the_version_payload_deterministically() {
        let k = key();
        let s = k.sign("@s/p", "1.0.0", "sha512-abc");
        assert_eq!(s, k.sign("@s/p", "1.0.0", "sha512-abc"), "RFC 6979");
        assert!(k.public().verifies("@s/p", "1.0.0", "sha512-abc", &s));
        assert!(!k.public().verifies("@s/p", "1.0.1", "sha512-abc", &s));
        assert!(!k.public().verifies("@s/p", "1.0.0", "sha512-abd", &s));
        assert!(!k.public().verifies("@s/p", "1.0.0", "sha512-abc", "bm90IGEgc2ln"));
        assert_eq!(payload("@s/p", "1.0.0", "sha512-x"), "@s/p@1.0.0:sha512-x");
    }

    #[test]
    fn key_id_is_the_unpadded_sha256_of_the_spki() {
        let k = key();
        let der = STANDARD.decode(&k.public().key).unwrap();
        let expected = format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&der)));
        assert_eq!(k.public().keyid, expected);
        assert!(!k.public().keyid.ends_with('='));
        assert_eq!(der.len(), 91, "a P-256 SPKI");
    }

    #[test]
    fn pem_round_trips_and_public_halves_agree() {
        let k = key();
        let pem = k.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = RegistryKey::from_pem(&pem).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(public_from_pem(&pem).unwrap(), *k.public());
        assert_eq!(public_from_pem(&k.public().to_pem()).unwrap(), *k.public());
        assert!(matches!(
            RegistryKey::from_pem("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"),
            Err(KeyError::UnknownLabel(l)) if l == "CERTIFICATE"
        ));
        assert!(RegistryKey::from_pem("garbage").is_err());
        assert!(format!("{k:?}").contains("keyid") && !format!("{k:?}").contains("PRIVATE"));
    }

    #[test]
    fn reads_what_openssl_writes() {
        // `openssl ecparam -name prime256v1 -genkey -noout` (SEC1) and its `openssl pkcs8 -topk8`.
        let sec1 = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICISlYB4WZPLksNVa85eVWx1YCg3viq2q2gQKI4dvVDUoAoGCCqGSM49
AwEHoUQDQgAEP6sDMtyBZsGdEOUL34aE1gf/p/odX0sh2+V0Zst+HT0E2yT4/adG
JV/wb2kmvkxDcb2RxCiUGiQAyc77EHuefA==
-----END EC PRIVATE KEY-----
";
        let a = RegistryKey::from_pem(sec1).unwrap();
        let b = RegistryKey::from_pem(crate::package::provenance::tests::TEST_KEY).unwrap();
        assert_eq!(a.public(), b.public());
    }
}
