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
    let mismatch = |field: &'static str, expected: &str, actual: String| PackageError::Integrity {
        file: file.to_owned(),
        field,
        expected: expected.to_owned(),
        actual,
    };
    if integrity.is_none() && shasum.is_none() {
        return Err(PackageError::BadRequest(format!(
            "{file}: dist.integrity or dist.shasum is required"
        )));
    }
    if let Some(expected) = shasum {
        let actual = hex::encode(Sha1::digest(bytes));
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(mismatch("dist.shasum", expected, actual));
        }
    }
    if let Some(sri) = integrity {
        let mut checked = false;
        for entry in sri.split_whitespace() {
            let Some((alg, b64)) = entry.split_once('-') else {
                continue;
            };
            // Options after `?` are allowed by the SRI spec.
            let b64 = b64.split('?').next().unwrap_or(b64);
            let actual = match alg {
                "sha512" => STANDARD.encode(Sha512::digest(bytes)),
                "sha384" => STANDARD.encode(Sha384::digest(bytes)),
                "sha256" => STANDARD.encode(Sha256::digest(bytes)),
                "sha1" => STANDARD.encode(Sha1::digest(bytes)),
                _ => continue,
            };
            if actual != b64 {
                return Err(mismatch("dist.integrity", entry, format!("{alg}-{actual}")));
            }
            checked = true;
        }
        if !checked {
            return Err(PackageError::BadRequest(format!(
                "{file}: dist.integrity {sri:?} names no supported hash"
            )));
        }
    }
    Ok(())
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
        assert!(verify("f", b"hello", Some("md5-xyz"), None).is_err());
    }
}
