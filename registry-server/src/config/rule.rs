//! One `packages` rule: the pattern, who may read, publish and unpublish, the uplinks it proxies,
//! and the upstream versions it hides.

use super::{ConfigError, Uplink, duration_value, invalid, list};
use crate::package::merge::VersionFilter;
use crate::package::range::NameRange;
use globset::{GlobBuilder, GlobMatcher};
use registry_config::{RuleFile, TrustedPublisherFile};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PackageRule {
    pub pattern: String,
    pub matcher: GlobMatcher,
    pub access: Vec<String>,
    pub publish: Vec<String>,
    pub unpublish: Vec<String>,
    pub proxy: Vec<String>,
    /// Upstream versions this rule hides (release-age quarantine, block list).
    pub filter: VersionFilter,
    /// CI workflows whose OIDC id-tokens may be exchanged for a token that publishes the package.
    pub trusted_publishers: Vec<TrustedPublisher>,
}

/// One entry of a package rule's `trusted_publishers` (matched against a token in `auth::oidc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedPublisher {
    /// Compared with the token's `iss` exactly.
    pub issuer: String,
    /// Claim name → the value or pattern it must match; never empty.
    pub claims: BTreeMap<String, String>,
}

pub(super) fn resolve(
    pattern: &str,
    rule: RuleFile,
    uplinks: &BTreeMap<String, Uplink>,
    warnings: &mut Vec<String>,
) -> Result<PackageRule, ConfigError> {
    let key = |field: &str| format!("packages.'{pattern}'.{field}");
    let matcher = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| invalid(format!("packages.'{pattern}'"), format!("not a valid pattern: {e}")))?
        .compile_matcher();
    if rule.storage.is_some() {
        warnings.push(format!(
            "`{}` (per-rule storage folder) is not supported; ignored",
            key("storage")
        ));
    }
    let access = list(rule.access.or(rule.allow_access)).unwrap_or_default();
    let publish = list(rule.publish.or(rule.allow_publish)).unwrap_or_default();
    // Verdaccio: unpublish falls back to publish when not given.
    let unpublish = list(rule.unpublish).unwrap_or_else(|| publish.clone());
    let proxy = list(rule.proxy.or(rule.proxy_access)).unwrap_or_default();
    for name in &proxy {
        if !uplinks.contains_key(name) {
            return Err(invalid(
                key("proxy"),
                format!("names uplink `{name}`, which is not defined under `uplinks`"),
            ));
        }
    }
    let min_age = match rule.quarantine {
        None => None,
        Some(v) => Some(duration_value(&key("quarantine"), Some(v), Duration::ZERO)?),
    };
    let block = rule
        .block
        .unwrap_or_default()
        .iter()
        .map(|entry| NameRange::parse(entry).map_err(|e| invalid(key("block"), format!("{entry:?}: {e}"))))
        .collect::<Result<_, _>>()?;
    let trusted_publishers = rule
        .trusted_publishers
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, p)| trusted_publisher(&key(&format!("trusted_publishers[{i}]")), p))
        .collect::<Result<_, _>>()?;
    Ok(PackageRule {
        pattern: pattern.to_owned(),
        matcher,
        access,
        publish,
        unpublish,
        proxy,
        filter: VersionFilter { min_age, block },
        trusted_publishers,
    })
}

/// An OIDC issuer: an https URL, or http on a loopback host (a test issuer).
fn issuer_url(key: &str, issuer: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(issuer).map_err(|e| invalid(key, format!("{issuer:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(invalid(
                key,
                format!("{issuer:?} must be an https URL (http is accepted only for a loopback host)"),
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(key, format!("{issuer:?} must not have a query or fragment")));
    }
    // Kept as written: a token's `iss` is compared with it exactly.
    Ok(issuer.to_owned())
}

fn trusted_publisher(key: &str, raw: TrustedPublisherFile) -> Result<TrustedPublisher, ConfigError> {
    let issuer = raw.issuer.ok_or_else(|| {
        invalid(
            format!("{key}.issuer"),
            "is required: the OIDC issuer URL whose tokens are accepted",
        )
    })?;
    let issuer = issuer_url(&format!("{key}.issuer"), &issuer)?;
    let mut claims = std::collections::BTreeMap::new();
    for (name, value) in raw.claims.unwrap_or_default() {
        let text = match value {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(invalid(
                    format!("{key}.claims.{name}"),
                    "must be a value or a pattern with * (a string)",
                ));
            }
        };
        if text.is_empty() {
            return Err(invalid(format!("{key}.claims.{name}"), "is empty"));
        }
        claims.insert(name, text);
    }
    if claims.is_empty() {
        return Err(invalid(
            format!("{key}.claims"),
            "must name at least one claim (e.g. repository: acme/widgets): without one, any workflow the issuer \
             signs for could publish",
        ));
    }
    Ok(TrustedPublisher { issuer, claims })
}
