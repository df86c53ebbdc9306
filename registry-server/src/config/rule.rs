//! One `packages` rule: the pattern, who may read, publish and unpublish, the uplinks it proxies,
//! and the upstream versions it hides.

use super::{ConfigError, Uplink, duration_value, invalid, list};
use crate::package::merge::VersionFilter;
use crate::package::range::NameRange;
use globset::{GlobBuilder, GlobMatcher};
use registry_config::RuleFile;
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
    Ok(PackageRule {
        pattern: pattern.to_owned(),
        matcher,
        access,
        publish,
        unpublish,
        proxy,
        filter: VersionFilter { min_age, block },
    })
}
