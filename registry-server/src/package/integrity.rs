//! Checks a tarball against the `dist.integrity` (SRI) and `dist.shasum` a publish declares.

use super::PackageError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The `sha1` hex and `sha512` SRI of a tarball, as npm writes them.
pub fn digests(bytes: &[u8]) -> (String, String) {
    (
        hex::encode(Sha1::digest(bytes)),
        format!("sha512-{}", STANDARD.encode(Sha512::digest(bytes))),
    )
}

/// Verifies every hash the publish declared; at least one must be present.
pub fn verify(file: &str, bytes: &[u8], integrity: Option<&str>, shasum: Option<&str>) -> Result<(), PackageError> {
    let mut v = Verifier::new(file, integrity, shasum)?;
    v.update(bytes);
    v.finish()
}

enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn of(alg: &str) -> Option<Self> {
        Some(match alg {
            "sha512" => Hasher::Sha512(Sha512::new()),
            "sha384" => Hasher::Sha384(Sha384::new()),
            "sha256" => Hasher::Sha256(Sha256::new()),
            "sha1" => Hasher::Sha1(Sha1::new()),
            _ => return None,
        })
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// The same check over bytes that arrive in pieces (a download that is never held whole).
pub struct Verifier {
    file: String,
    shasum: Option<(String, Sha1)>,
    /// `alg-base64` entries of the SRI with a supported algorithm: entry, base64, hasher.
    sri: Vec<(String, String, Hasher)>,
}

impl Verifier {
    pub fn new(file: &str, integrity: Option<&str>, shasum: Option<&str>) -> Result<Self, PackageError> {
        if integrity.is_none() && shasum.is_none() {
            return Err(PackageError::BadRequest(format!(
                "{file}: dist.integrity or dist.shasum is required"
            )));
        }
        let mut sri = Vec::new();
        if let Some(text) = integrity {
            for entry in text.split_whitespace() {
                let Some((alg, b64)) = entry.split_once('-') else {
                    continue;
                };
                // Options after `?` are allowed by the SRI spec.
                let b64 = b64.split('?').next().unwrap_or(b64);
                if let Some(h) = Hasher::of(alg) {
                    sri.push((entry.to_owned(), b64.to_owned(), h));
                }
            }
            if sri.is_empty() {
                return Err(PackageError::BadRequest(format!(
                    "{file}: dist.integrity {text:?} names no supported hash"
                )));
            }
        }
        Ok(Verifier {
            file: file.to_owned(),
            shasum: shasum.map(|s| (s.trim().to_owned(), Sha1::new())),
            sri,
        })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if let Some((_, h)) = &mut self.shasum {
            h.update(bytes);
        }
        for (_, _, h) in &mut self.sri {
            h.update(bytes);
        }
    }

    pub fn finish(self) -> Result<(), PackageError> {
        let mismatch = |field: &'static str, expected: &str, actual: String| PackageError::Integrity {
            file: self.file.clone(),
            field,
            expected: expected.to_owned(),
            actual,
        };
        if let Some((expected, h)) = self.shasum {
            let actual = hex::encode(h.finalize());
            if !actual.eq_ignore_ascii_case(&expected) {
                return Err(mismatch("dist.shasum", &expected, actual));
            }
        }
        for (entry, b64, h) in self.sri {
            let alg = entry.split_once('-').map_or("", |(a, _)| a).to_owned();
            let actual = STANDARD.encode(h.finish());
            if actual != b64 {
                return Err(mismatch("dist.integrity", &entry, format!("{alg}-{actual}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_matching_and_refuses_tampered() {
        let (sha1, sri) = digests(b"hello");
        assert!(verify("f", b"hello", Some(&sri), Some(&sha1)).is_ok());
        assert!(verify("f", b"hello", None, Some(&sha1)).is_ok());
        assert!(matches!(
            verify("f", b"hellO", Some(&sri), None),
            Err(PackageError::Integrity { .. })
        ));
        assert!(matches!(
            verify("f", b"hellO", None, Some(&sha1)),
            Err(PackageError::Integrity { .. })
        ));
        assert!(verify("f", b"hello", None, None).is_err());
        let mut v = Verifier::new("f", Some(&sri), Some(&sha1)).unwrap();
        v.update(b"hel");
        v.update(b"lo");
        assert!(v.finish().is_ok(), "in pieces");
        assert!(verify("f", b"hello", Some("md5-xyz"), None).is_err());
    }
}
