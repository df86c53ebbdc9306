//! Tokens that Verdaccio 5/6 issued, read here so that every `.npmrc` and CI secret keeps working
//! after the switch. The kind is decided by the config as Verdaccio decides it (`security.api`):
//! legacy AES tokens (`user:password` encrypted with the secret; aes-256-ctr for a 32-character
//! secret, node's deprecated `createCipher('aes192')` for the longer secrets of old installs), or
//! HS256 JWTs signed with the secret. The secret is Verdaccio's, read from where Verdaccio keeps
//! it (the `secret` of the package list document in storage); `VERDACCIO_LEGACY_ENCRYPTION_KEY`
//! overrides it for aes-256-ctr, as in Verdaccio. It is never logged.
//!
//! Decoding is pure; whether the user still exists, and for legacy tokens whether the password
//! inside still verifies, is checked by the caller (`Auth`).

use crate::config::{ApiTokens, JwtCheck};
use crate::storage::Storage;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, KeyIvInit, StreamCipher};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde::Deserialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Verdaccio's current secret length; longer ones come from old installs.
const SECRET_LENGTH: usize = 32;
/// How long the secret read from storage is used before it is read again (Verdaccio may still be
/// running beside us during a move, and rotates a long secret on its first start).
const SECRET_TTL: Duration = Duration::from_secs(60);
/// The environment variable that overrides the aes-256-ctr key, as in Verdaccio.
pub const KEY_ENV: &str = "VERDACCIO_LEGACY_ENCRYPTION_KEY";

/// What a Verdaccio token claims about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A legacy token: the user and the password it was issued with.
    Password { user: String, password: String },
    /// A JWT whose signature and claims hold: the user it names.
    User(String),
}

/// The `user:password` (or, for tokens made by `npm token create`, JSON) inside a legacy token.
fn parse_payload(text: &str) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Json {
        user: String,
        password: String,
    }
    if text.starts_with('{')
        && let Ok(j) = serde_json::from_str::<Json>(text)
    {
        return Some((j.user, j.password));
    }
    let (user, password) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_owned(), password.to_owned()))
}

/// aes-256-ctr: `base64(hex(iv) ":" hex(ciphertext))`, the key being the secret's 32 bytes.
fn decrypt_ctr(token: &str, key: &[u8]) -> Option<String> {
    let text = String::from_utf8(STANDARD.decode(token).ok()?).ok()?;
    let (iv, data) = text.split_once(':')?;
    let iv = hex::decode(iv).ok()?;
    let mut data = hex::decode(data).ok()?;
    let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(key, &iv).ok()?;
    cipher.apply_keystream(&mut data);
    String::from_utf8(data).ok()
}

/// OpenSSL's `EVP_BytesToKey` with MD5, one round and no salt: what node's `createCipher` makes
/// of a password (here 24 key bytes and a 16-byte IV for aes192).
fn bytes_to_key(password: &[u8]) -> ([u8; 24], [u8; 16]) {
    let mut material = Vec::with_capacity(48);
    let mut previous: Vec<u8> = Vec::new();
    while material.len() < 40 {
        let mut h = Md5::new();
        h.update(&previous);
        h.update(password);
        previous = h.finalize().to_vec();
        material.extend_from_slice(&previous);
    }
    let mut key = [0u8; 24];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&material[..24]);
    iv.copy_from_slice(&material[24..40]);
    (key, iv)
}

/// node's deprecated `createCipher('aes192', secret)` (aes-192-cbc, PKCS#7), base64.
fn decrypt_aes192(token: &str, secret: &[u8]) -> Option<String> {
    let data = STANDARD.decode(token).ok()?;
    let (key, iv) = bytes_to_key(secret);
    let plain = cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
        .ok()?
        .decrypt_padded_vec::<Pkcs7>(&data)
        .ok()?;
    String::from_utf8(plain).ok()
}

/// A legacy token's claim, with `secret` the storage's secret and `key_override` the
/// environment's key (used with a 32-character secret only, as Verdaccio does).
pub fn decode_legacy(token: &str, secret: Option<&str>, key_override: Option<&str>) -> Option<Claim> {
    let text = match secret {
        Some(s) if s.len() > SECRET_LENGTH => decrypt_aes192(token, s.as_bytes())?,
        _ => decrypt_ctr(token, key_override.or(secret)?.as_bytes())?,
    };
    let (user, password) = parse_payload(&text)?;
    Some(Claim::Password { user, password })
}

#[derive(Deserialize)]
struct JwtClaims {
    name: Option<String>,
    iat: Option<u64>,
}

/// A JWT's claim when its HS256/384/512 signature by `secret` and its claims hold (`now` in
/// seconds since the epoch, for `maxAge`).
pub fn decode_jwt(token: &str, secret: &str, check: &JwtCheck, now: u64) -> Option<Claim> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let mut v = Validation::new(Algorithm::HS256);
    v.algorithms = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
    // node's jsonwebtoken requires no claim, and Verdaccio's API tokens may lack `exp`.
    v.required_spec_claims.clear();
    v.leeway = check.clock_tolerance.as_secs();
    v.validate_exp = !check.ignore_expiration;
    v.validate_nbf = !check.ignore_not_before;
    v.validate_aud = !check.audience.is_empty();
    // As in node's jsonwebtoken, a claim the config checks must be present.
    if !check.audience.is_empty() {
        v.set_audience(&check.audience);
        v.required_spec_claims.insert("aud".to_owned());
    }
    if !check.issuer.is_empty() {
        v.set_issuer(&check.issuer);
        v.required_spec_claims.insert("iss".to_owned());
    }
    if check.subject.is_some() {
        v.sub = check.subject.clone();
        v.required_spec_claims.insert("sub".to_owned());
    }
    let data = jsonwebtoken::decode::<JwtClaims>(token, &DecodingKey::from_secret(secret.as_bytes()), &v).ok()?;
    if let Some(max_age) = check.max_age {
        let issued = data.claims.iat?;
        if now.saturating_sub(issued) > max_age.as_secs() + check.clock_tolerance.as_secs() {
            return None;
        }
    }
    data.claims.name.filter(|n| !n.is_empty()).map(Claim::User)
}

/// Reads Verdaccio's secret from storage (cached briefly) and decodes its tokens.
pub struct VerdaccioTokens {
    kind: ApiTokens,
    key_override: Option<String>,
    secret: Mutex<Option<(Instant, Option<String>)>>,
}

impl VerdaccioTokens {
    pub fn new(kind: ApiTokens) -> Self {
        let key_override = std::env::var(KEY_ENV).ok().filter(|k| !k.is_empty());
        if let Ok(alg) = std::env::var("VERDACCIO_LEGACY_ALGORITHM")
            && alg != "aes-256-ctr"
        {
            tracing::warn!(
                "VERDACCIO_LEGACY_ALGORITHM={alg}: only aes-256-ctr legacy tokens are read; tokens made with {alg} count as unknown"
            );
        }
        VerdaccioTokens {
            kind,
            key_override,
            secret: Mutex::new(None),
        }
    }

    async fn secret(&self, storage: &dyn Storage) -> Option<String> {
        if let Some((read_at, secret)) = self.secret.lock().expect("lock poisoned").as_ref()
            && read_at.elapsed() < SECRET_TTL
        {
            return secret.clone();
        }
        let secret = match storage.read(&storage.package_list_key()).await {
            Ok(v) => v
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(&v.bytes).ok())
                .and_then(|doc| doc.get("secret").and_then(|s| s.as_str()).map(str::to_owned))
                .filter(|s| !s.is_empty()),
            Err(e) => {
                // Not cached: the next token asks again.
                tracing::warn!(error = %e, "cannot read Verdaccio's secret; its tokens cannot be checked now");
                return None;
            }
        };
        *self.secret.lock().expect("lock poisoned") = Some((Instant::now(), secret.clone()));
        secret
    }

    /// The claim of a token Verdaccio issued, `None` when it is not one (or not valid).
    pub async fn decode(&self, token: &str, storage: &dyn Storage) -> Option<Claim> {
        let secret = self.secret(storage).await;
        match &self.kind {
            ApiTokens::Legacy => decode_legacy(token, secret.as_deref(), self.key_override.as_deref()),
            ApiTokens::Jwt(check) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                decode_jwt(token, &secret?, check, now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with node 20's crypto and jsonwebtoken exactly as Verdaccio 6 calls them.
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const CTR: &str = "MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY6N2FiZDhhMjY2YmNmMjcwMzkyNTk1ZQ==";
    const CTR_JSON: &str = "MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY6NjBmMzk2MzY2Yjg3NzU1ODhhNDg0MmQxYTlhZDg3NDM0MDNlZjcxMjlhNzRkM2E5YTA1NzM4OTc2YmViNDIzOGNjMDg0ZGUzNWJmZjU2ZmQ1MGRjN2FhY2FlYTQ=";
    const AES192: &str = "qU1hLJVlsP4RStd5G82UZg==";
    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyZWFsX2dyb3VwcyI6W10sIm5hbWUiOiJkYXZlIiwiZ3JvdXBzIjpbIiRhbGwiXSwiaWF0IjoxNzk2MTcwMjU1LCJuYmYiOjE3OTYxNzAyNTUsImV4cCI6NDk1MTkzMDI1NX0.R-UlszfoVBODWIRoPIZdZwYAHuumi62GslPX-aaBwVA";
    const JWT_EXPIRED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1lIjoiZGF2ZSIsImlhdCI6MTAwMDAwMCwiZXhwIjoxMDAwMDYwfQ.TtTAEfY4mOcKPT31GUBRirbZBpBh0NsRMYDfn3yvYss";

    fn pw(user: &str, password: &str) -> Option<Claim> {
        Some(Claim::Password {
            user: user.into(),
            password: password.into(),
        })
    }

    #[test]
    fn legacy_tokens_of_both_secret_lengths() {
        assert_eq!(decode_legacy(CTR, Some(SECRET), None), pw("alice", "pa:ss"));
        assert_eq!(decode_legacy(CTR_JSON, Some(SECRET), None), pw("bob", "pw"));
        let long = format!("{}{}", "a".repeat(32), "b".repeat(32));
        assert_eq!(decode_legacy(AES192, Some(&long), None), pw("carol", "secret-3"));
        // The environment's key replaces a 32-character secret, as in Verdaccio.
        assert_eq!(
            decode_legacy(CTR, Some("x".repeat(32).as_str()), Some(SECRET)),
            pw("alice", "pa:ss")
        );
        assert_eq!(decode_legacy(CTR, None, Some(SECRET)), pw("alice", "pa:ss"));
        // Another secret, or garbage, decodes to nothing usable.
        assert_eq!(decode_legacy(CTR, Some(&"y".repeat(32)), None), None);
        assert_eq!(decode_legacy(AES192, Some(&"c".repeat(64)), None), None);
        assert_eq!(decode_legacy("fake", Some(SECRET), None), None);
        assert_eq!(decode_legacy(CTR, None, None), None);
    }

    #[test]
    fn jwts_are_checked_for_signature_and_claims() {
        let now = 1_796_170_300;
        let check = JwtCheck::default();
        assert_eq!(decode_jwt(JWT, SECRET, &check, now), Some(Claim::User("dave".into())));
        assert_eq!(decode_jwt(JWT, &"z".repeat(32), &check, now), None, "another secret");
        assert_eq!(decode_jwt(JWT_EXPIRED, SECRET, &check, now), None, "expired");
        let ignore = JwtCheck {
            ignore_expiration: true,
            ..JwtCheck::default()
        };
        assert!(decode_jwt(JWT_EXPIRED, SECRET, &ignore, now).is_some());
        let young = JwtCheck {
            max_age: Some(Duration::from_secs(10)),
            ..JwtCheck::default()
        };
        assert_eq!(decode_jwt(JWT, SECRET, &young, now), None, "older than maxAge");
        let issuer = JwtCheck {
            issuer: vec!["corp".into()],
            ..JwtCheck::default()
        };
        assert_eq!(decode_jwt(JWT, SECRET, &issuer, now), None, "no such issuer claim");
        let mut forged = JWT.to_owned();
        forged.replace_range(40..41, "A");
        assert_eq!(decode_jwt(&forged, SECRET, &check, now), None);
    }

    #[test]
    fn bytes_to_key_matches_openssl() {
        // `openssl enc -aes-192-cbc -k password -nosalt -P -md md5`
        let (key, iv) = bytes_to_key(b"password");
        assert_eq!(hex::encode(key), "5f4dcc3b5aa765d61d8327deb882cf992b95990a9151374a");
        assert_eq!(hex::encode(iv), "bd8ff8c5a7a0fe08b7b4372cdfbcb3d1");
    }
}
