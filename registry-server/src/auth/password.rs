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

/// Password checks waiting for a turn beyond which new ones are refused (503).
const MAX_WAITING: usize = 64;

/// Runs password hashing and checks (bcrypt: tens of milliseconds of CPU each) on the blocking
/// pool, at most half the cores at a time, so that a guessing burst leaves the other half to
/// everything else; at most [`MAX_WAITING`] wait.
pub struct Hasher {
    turns: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Hasher {
            turns: tokio::sync::Semaphore::new((cores / 2).max(1)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, super::AuthError> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.waiting.fetch_add(1, SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, SeqCst);
            return Err(super::AuthError::Busy);
        }
        let turn = self.turns.acquire().await;
        self.waiting.fetch_sub(1, SeqCst);
        let _turn = turn.expect("the semaphore is never closed");
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| super::AuthError::Storage(crate::storage::StorageError::Unavailable(e.to_string())))
    }
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
