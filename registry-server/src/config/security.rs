//! Verdaccio's `security`: which kind of token its API issued (AES "legacy" tokens, or JWTs when
//! `api.jwt` is set, exactly as Verdaccio decides it), and the `verify` options its JWTs are
//! checked with (those of node's `jsonwebtoken` that apply to a check).

use super::{ConfigError, duration_value, invalid};
use registry_config::{JwtFile, SecurityFile};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    pub api: ApiTokens,
    /// How the web UI's JWTs are checked (`security.web.verify`).
    pub web: JwtCheck,
}

/// The tokens Verdaccio's API handed out, so the ones `.npmrc` files hold keep working here.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiTokens {
    /// `security.api.legacy: true` (the default) and no `api.jwt`: AES-encrypted `user:password`.
    Legacy,
    /// `security.api.jwt` set (or `legacy: false`): HS256 JWTs.
    Jwt(JwtCheck),
}

/// What a JWT must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JwtCheck {
    pub audience: Vec<String>,
    pub issuer: Vec<String>,
    pub subject: Option<String>,
    pub ignore_expiration: bool,
    pub ignore_not_before: bool,
    pub clock_tolerance: Duration,
    /// Refused once older than this (by `iat`).
    pub max_age: Option<Duration>,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            api: ApiTokens::Legacy,
            web: JwtCheck::default(),
        }
    }
}

pub fn resolve(raw: Option<SecurityFile>, warnings: &mut Vec<String>) -> Result<Security, ConfigError> {
    let raw = raw.unwrap_or_default();
    let api = raw.api.unwrap_or_default();
    // Verdaccio's `isAESLegacy`: legacy is on and no jwt block is given.
    let legacy = api.legacy.unwrap_or(true) && api.jwt.is_none();
    let api_tokens = if legacy {
        ApiTokens::Legacy
    } else {
        ApiTokens::Jwt(check("security.api.jwt", api.jwt.unwrap_or_default(), warnings)?)
    };
    let web = check("security.web", raw.web.unwrap_or_default(), warnings)?;
    Ok(Security { api: api_tokens, web })
}

fn strings(key: &str, v: Value) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::String(s) => Ok(vec![s]),
        Value::Sequence(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(invalid(key, "expected a string or a list of strings")),
            })
            .collect(),
        _ => Err(invalid(key, "expected a string or a list of strings")),
    }
}

fn flag(key: &str, v: Value) -> Result<bool, ConfigError> {
    match v {
        Value::Bool(b) => Ok(b),
        _ => Err(invalid(key, "expected true or false")),
    }
}

fn check(section: &str, raw: JwtFile, warnings: &mut Vec<String>) -> Result<JwtCheck, ConfigError> {
    // `sign` matters to whoever issues tokens; this server issues its own and only checks these.
    let mut verify: BTreeMap<String, Value> = raw.verify.unwrap_or_default();
    let key = |k: &str| format!("{section}.verify.{k}");
    let mut out = JwtCheck::default();
    if let Some(v) = verify.remove("algorithms") {
        let algorithms = strings(&key("algorithms"), v)?;
        if !algorithms.iter().any(|a| a.starts_with("HS")) {
            return Err(invalid(
                key("algorithms"),
                "Verdaccio signs with its secret (HS256); list HS256 or leave the key out",
            ));
        }
    }
    if let Some(v) = verify.remove("audience") {
        out.audience = strings(&key("audience"), v)?;
    }
    if let Some(v) = verify.remove("issuer") {
        out.issuer = strings(&key("issuer"), v)?;
    }
    if let Some(v) = verify.remove("subject") {
        out.subject = strings(&key("subject"), v)?.into_iter().next();
    }
    if let Some(v) = verify.remove("ignoreExpiration") {
        out.ignore_expiration = flag(&key("ignoreExpiration"), v)?;
    }
    if let Some(v) = verify.remove("ignoreNotBefore") {
        out.ignore_not_before = flag(&key("ignoreNotBefore"), v)?;
    }
    if let Some(v) = verify.remove("clockTolerance") {
        out.clock_tolerance = duration_value(&key("clockTolerance"), Some(v), Duration::ZERO)?;
    }
    if let Some(v) = verify.remove("maxAge") {
        out.max_age = Some(duration_value(&key("maxAge"), Some(v), Duration::ZERO)?);
    }
    for k in verify.keys() {
        warnings.push(format!("`{}` is not supported; ignored", key(k)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Security, ConfigError> {
        resolve(serde_yaml::from_str(yaml).unwrap(), &mut Vec::new())
    }

    #[test]
    fn decides_the_token_kind_as_verdaccio_does() {
        assert_eq!(parse("{}").unwrap().api, ApiTokens::Legacy);
        assert_eq!(parse("api: {legacy: true}").unwrap().api, ApiTokens::Legacy);
        let jwt =
            parse("api: {legacy: true, jwt: {sign: {expiresIn: 29d}, verify: {issuer: corp, clockTolerance: 5}}}")
                .unwrap()
                .api;
        let ApiTokens::Jwt(check) = jwt else { panic!("{jwt:?}") };
        assert_eq!(check.issuer, ["corp"]);
        assert_eq!(check.clock_tolerance, Duration::from_secs(5));
        assert!(matches!(parse("api: {legacy: false}").unwrap().api, ApiTokens::Jwt(_)));
        assert!(parse("web: {verify: {algorithms: [RS256]}}").is_err());
    }
}
