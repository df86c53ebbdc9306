//! One upstream registry (`uplinks.<name>`): its URL, timeouts, cache policy and credentials.

use super::{ConfigError, duration_value, http_url, invalid, size_value};
use registry_config::{UplinkFile, defaults};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Uplink {
    pub url: String,
    pub timeout: Duration,
    pub maxage: Duration,
    pub fail_timeout: Duration,
    pub max_fails: u32,
    pub cache: bool,
    pub headers: BTreeMap<String, String>,
    pub auth: Option<UplinkAuth>,
    pub strict_ssl: bool,
    /// The largest packument and tarball accepted from this uplink.
    pub max_packument_size: u64,
    pub max_tarball_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkAuthKind {
    Bearer,
    Basic,
}

/// An uplink credential. The token itself is read from the environment, never kept in the file.
#[derive(Debug, Clone)]
pub struct UplinkAuth {
    pub kind: UplinkAuthKind,
    pub token_env: String,
}

pub(super) fn resolve(name: &str, raw: UplinkFile, warnings: &mut Vec<String>) -> Result<Uplink, ConfigError> {
    let key = |field: &str| format!("uplinks.{name}.{field}");
    let url = raw.url.ok_or_else(|| invalid(key("url"), "is required"))?;
    let url = http_url(&key("url"), &url)?;
    for (field, set) in [
        ("ca", raw.ca.is_some()),
        ("agent_options", raw.agent_options.is_some()),
        ("http_proxy", raw.http_proxy.is_some()),
        ("https_proxy", raw.https_proxy.is_some()),
        ("no_proxy", raw.no_proxy.is_some()),
    ] {
        if set {
            warnings.push(format!("`{}` is not supported; ignored", key(field)));
        }
    }
    let auth = match raw.auth {
        None => None,
        Some(a) => {
            let kind = match a.kind.as_deref().unwrap_or("bearer").to_ascii_lowercase().as_str() {
                "bearer" => UplinkAuthKind::Bearer,
                "basic" => UplinkAuthKind::Basic,
                other => {
                    return Err(invalid(
                        key("auth.type"),
                        format!("must be bearer or basic, got {other:?}"),
                    ));
                }
            };
            if a.token.is_some() {
                return Err(invalid(
                    key("auth.token"),
                    "tokens are not accepted in the config file; put it in an environment variable and name it with token_env",
                ));
            }
            let token_env = match a.token_env {
                Some(Value::Bool(true)) => "NPM_TOKEN".to_owned(),
                Some(Value::String(s)) if !s.is_empty() => s,
                _ => {
                    return Err(invalid(
                        key("auth.token_env"),
                        "must be true (NPM_TOKEN) or the name of an environment variable",
                    ));
                }
            };
            Some(UplinkAuth { kind, token_env })
        }
    };
    Ok(Uplink {
        url,
        timeout: duration_value(&key("timeout"), raw.timeout, defaults::UPLINK_TIMEOUT)?,
        maxage: duration_value(&key("maxage"), raw.maxage, defaults::UPLINK_MAXAGE)?,
        fail_timeout: duration_value(&key("fail_timeout"), raw.fail_timeout, defaults::UPLINK_FAIL_TIMEOUT)?,
        max_fails: raw.max_fails.unwrap_or(defaults::UPLINK_MAX_FAILS),
        cache: raw.cache.unwrap_or(true),
        headers: raw.headers.unwrap_or_default(),
        auth,
        strict_ssl: raw.strict_ssl.unwrap_or(true),
        max_packument_size: size_value(
            &key("max_packument_size"),
            raw.max_packument_size,
            defaults::UPLINK_MAX_PACKUMENT_SIZE,
        )?,
        max_tarball_size: size_value(
            &key("max_tarball_size"),
            raw.max_tarball_size,
            defaults::UPLINK_MAX_TARBALL_SIZE,
        )?,
    })
}
