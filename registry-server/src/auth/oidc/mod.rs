//! npm's OIDC trusted publishing: a CI job's id-token (`POST
//! /-/npm/v1/oidc/token/exchange/package/<name>`) is exchanged for a short-lived token that may
//! publish that one package. The id-token is verified here: signed by a key of its issuer
//! ([`jwks`]), `iss` exactly a trusted publisher's issuer, `aud` = `npm:<this registry's host>`,
//! within `exp`/`nbf`/`iat` give or take [`LEEWAY`], and every claim the publisher names matched
//! ([`claims`]). The id-token itself is never a registry token.

mod claims;
mod jwks;

pub use claims::{TrustedPublisher, glob_matches};
pub use jwks::parse_jwks;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: u64 = 60;
/// The longest lifetime (`exp - iat`, in seconds) of an id-token accepted: CI issuers make them
/// for minutes; a longer one is a stolen-and-kept credential waiting to happen.
pub const MAX_LIFETIME: i64 = 3600;

/// Signature algorithms accepted (asymmetric only: an issuer's secret is never ours to know).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("send the CI job's OIDC id-token as `Authorization: Bearer <id-token>`")]
    NoToken,
    #[error("the id-token is not a signed JWT: {0}")]
    Malformed(String),
    #[error("package {0} has no trusted publishers: add trusted_publishers to its rule in the registry's config")]
    NoTrustedPublisher(String),
    #[error("id-tokens of issuer {issuer:?} are not trusted to publish {package}")]
    UnknownIssuer { issuer: String, package: String },
    #[error("the OIDC issuer {issuer} could not be asked for its keys: {reason}")]
    Issuer { issuer: String, reason: String },
    #[error("the id-token is signed with key {kid:?}, which issuer {issuer} does not publish")]
    UnknownKey { issuer: String, kid: String },
    #[error("the id-token was refused: {0}")]
    Invalid(String),
    #[error("the id-token was refused: it was exchanged already (an id-token is exchanged once)")]
    Replayed,
    #[error("the id-token does not match a trusted publisher of {package}: {reason}")]
    Claims { package: String, reason: String },
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// A verified id-token: the publisher it matched and all its claims.
#[derive(Debug, Clone)]
pub struct Verified {
    pub publisher: TrustedPublisher,
    pub claims: Map<String, Value>,
}

/// The claims of a JWT, unverified: only to choose the issuer whose keys will verify it.
fn unverified_claims(token: &str) -> Result<Map<String, Value>, OidcError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::Malformed("it has no payload".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| OidcError::Malformed("its payload is not base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| OidcError::Malformed("its payload is not a JSON object".into()))
}

fn audience_text(claims: &Map<String, Value>) -> String {
    match claims.get("aud") {
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
        None => "missing".into(),
    }
}

fn refused(kind: &ErrorKind, claims: &Map<String, Value>, audience: &str) -> OidcError {
    let reason = match kind {
        ErrorKind::InvalidSignature => "its signature does not verify with the issuer's key".to_owned(),
        ErrorKind::ExpiredSignature => format!(
            "it expired (exp {})",
            claims.get("exp").map(Value::to_string).unwrap_or_default()
        ),
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidAudience => format!(
            "its audience is {}, this registry's is {audience:?}",
            audience_text(claims)
        ),
        ErrorKind::InvalidIssuer => "its issuer is not the one whose key verified it".to_owned(),
        ErrorKind::MissingRequiredClaim(c) => format!("it has no {c} claim"),
        ErrorKind::InvalidAlgorithm => "its algorithm does not fit the issuer's key".to_owned(),
        other => format!("{other:?}"),
    };
    OidcError::Invalid(reason)
}

#[derive(Default)]
pub struct Oidc {
    keys: jwks::IssuerKeys,
}

impl Oidc {
    /// Verifies `token` for publishing `package`, whose rule trusts `publishers`; `audience` is
    /// `npm:<this registry's host>`.
    pub async fn verify(
        &self,
        token: &str,
        package: &str,
        publishers: &[TrustedPublisher],
        audience: &str,
    ) -> Result<Verified, OidcError> {
        if publishers.is_empty() {
            return Err(OidcError::NoTrustedPublisher(package.to_owned()));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| OidcError::Malformed(e.to_string()))?;
        let unverified = unverified_claims(token)?;
        let issuer = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Malformed("it has no iss claim".into()))?;
        let candidates: Vec<&TrustedPublisher> = publishers.iter().filter(|p| p.issuer == issuer).collect();
        if candidates.is_empty() {
            return Err(OidcError::UnknownIssuer {
                issuer: issuer.to_owned(),
                package: package.to_owned(),
            });
        }
        if !ALGORITHMS.contains(&header.alg) {
            return Err(OidcError::Invalid(format!(
                "its algorithm {:?} is not accepted (RS*, PS*, ES256, ES384 are)",
                header.alg
            )));
        }
        let jwk = self.keys.key(issuer, header.kid.as_deref()).await?;
        if let Some(alg) = jwk.common.key_algorithm
            && format!("{alg:?}") != format!("{:?}", header.alg)
        {
            return Err(OidcError::Invalid(format!(
                "it says algorithm {:?}, its key is for {alg:?}",
                header.alg
            )));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| OidcError::Invalid(format!("the issuer's key cannot be used: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| refused(e.kind(), &unverified, audience))?
            .claims;
        let now = chrono::Utc::now().timestamp();
        match claims.get("iat").and_then(Value::as_i64) {
            None => return Err(OidcError::Invalid("it has no iat claim".into())),
            Some(iat) if iat > now + LEEWAY as i64 => {
                return Err(OidcError::Invalid(format!("it was issued in the future (iat {iat})")));
            }
            Some(iat) => {
                let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(i64::MAX);
                if exp.saturating_sub(iat) > MAX_LIFETIME {
                    return Err(OidcError::Invalid(format!(
                        "it is valid for {} s (exp - iat); at most {MAX_LIFETIME} s are accepted",
                        exp.saturating_sub(iat)
                    )));
                }
            }
        }
        let mut reasons = Vec::new();
        for publisher in candidates {
            match publisher.mismatch(&claims) {
                None => {
                    return Ok(Verified {
                        publisher: publisher.clone(),
                        claims,
                    });
                }
                Some(why) => reasons.push(why),
            }
        }
        Err(OidcError::Claims {
            package: package.to_owned(),
            reason: reasons.join("; "),
        })
    }
}

#[cfg(test)]
mod tests;
