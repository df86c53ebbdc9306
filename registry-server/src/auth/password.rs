//! Password hashes as Verdaccio's htpasswd plugin reads them: bcrypt (`$2a$`/`$2b$`/`$2y$`),
//! `{SHA}` (base64 SHA-1), `{PLAIN}`, Apache MD5 (`$apr1$`) and DES crypt. New hashes are bcrypt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// bcrypt cost for new users (Verdaccio's default `rounds`).
pub const BCRYPT_COST: u32 = 10;

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Whether `password` matches `hash`. Slow for bcrypt: call it off the async runtime.
pub fn verify(password: &str, hash: &str) -> bool {
    if hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$") {
        bcrypt::verify(password, hash).unwrap_or(false)
    } else if let Some(sha) = hash.strip_prefix("{SHA}") {
        eq(
            STANDARD.encode(Sha1::digest(password.as_bytes())).as_bytes(),
            sha.as_bytes(),
        )
    } else if let Some(plain) = hash.strip_prefix("{PLAIN}") {
        eq(password.as_bytes(), plain.as_bytes())
    } else if hash.starts_with("$apr1$") {
        crypt3_rs::crypt::apr1::verify(password, hash)
    } else if hash.len() == 13 {
        crypt3_rs::crypt::unix::verify(password, hash)
    } else {
        false
    }
}

pub fn hash(password: &str) -> String {
    bcrypt::hash(password, BCRYPT_COST).expect("bcrypt hashing of a string cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)] // the legacy algorithms are exactly what this test must produce
    fn verifies_every_verdaccio_format() {
        // Hashes of "secret" in each format (bcrypt $2y$ as written by htpasswd -B, DES crypt
        // as written by htpasswd -d, Apache MD5 by htpasswd -m).
        let b = hash("secret");
        assert!(verify("secret", &b) && !verify("Secret", &b));
        let y = b.replacen("$2b$", "$2y$", 1);
        assert!(verify("secret", &y));
        assert!(verify("secret", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="));
        assert!(!verify("secreT", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="));
        assert!(verify("secret", "{PLAIN}secret"));
        let apr1 = crypt3_rs::crypt::apr1::hash_with("$apr1$abcdefgh$", "secret").unwrap();
        assert!(verify("secret", &apr1) && !verify("other", &apr1));
        let des = crypt3_rs::crypt::unix::hash_with("ab", "secret").unwrap();
        assert_eq!(des.len(), 13);
        assert!(verify("secret", &des) && !verify("other", &des));
        assert!(!verify("secret", "garbage"));
    }
}
