//! The config file as written: Verdaccio's `config.yaml` keys plus ours, loosely typed so that
//! validation in `mod.rs` can name the key and the reason for every bad value.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub storage: Option<String>,
    pub listen: Option<Value>,
    pub public_url: Option<String>,
    pub url_prefix: Option<String>,
    pub max_body_size: Option<Value>,
    pub packages: Option<IndexMap<String, RawRule>>,
    pub uplinks: Option<IndexMap<String, RawUplink>>,
    pub auth: Option<RawAuth>,
    pub groups: Option<BTreeMap<String, StringList>>,
    pub web: Option<RawWeb>,
    pub log: Option<RawLog>,
    /// Verdaccio's name before 5.22.
    pub logs: Option<RawLog>,
    pub store: Option<BTreeMap<String, Value>>,
    /// Ours: the in-memory packument and tarball caches.
    pub packument_cache: Option<RawCache>,
    pub tarball_cache: Option<RawCache>,

    // Verdaccio settings this server accepts without using them; each gets a warning.
    pub plugins: Option<Value>,
    pub middlewares: Option<Value>,
    pub security: Option<Value>,
    pub server: Option<Value>,
    pub i18n: Option<Value>,
    pub notify: Option<Value>,
    pub publish: Option<Value>,
    pub flags: Option<Value>,
    pub experiments: Option<Value>,
    pub filters: Option<Value>,
    pub https: Option<Value>,
    pub http_proxy: Option<Value>,
    pub https_proxy: Option<Value>,
    pub no_proxy: Option<Value>,
    pub user_agent: Option<Value>,
    #[serde(rename = "userRateLimit")]
    pub user_rate_limit: Option<Value>,
    pub self_path: Option<Value>,
}

impl RawConfig {
    /// Verdaccio keys that are read but have no effect here.
    pub fn unused_verdaccio_keys(&self) -> Vec<&'static str> {
        let pairs: [(&'static str, bool); 17] = [
            ("plugins", self.plugins.is_some()),
            ("middlewares", self.middlewares.is_some()),
            ("security", self.security.is_some()),
            ("server", self.server.is_some()),
            ("i18n", self.i18n.is_some()),
            ("notify", self.notify.is_some()),
            ("publish", self.publish.is_some()),
            ("flags", self.flags.is_some()),
            ("experiments", self.experiments.is_some()),
            ("filters", self.filters.is_some()),
            ("https", self.https.is_some()),
            ("http_proxy", self.http_proxy.is_some()),
            ("https_proxy", self.https_proxy.is_some()),
            ("no_proxy", self.no_proxy.is_some()),
            ("user_agent", self.user_agent.is_some()),
            ("userRateLimit", self.user_rate_limit.is_some()),
            ("self_path", self.self_path.is_some()),
        ];
        pairs.into_iter().filter(|(_, set)| *set).map(|(k, _)| k).collect()
    }
}

/// Verdaccio accepts both `access: $all staff` and `access: [$all, staff]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StringList {
    One(String),
    Many(Vec<String>),
}

impl StringList {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StringList::One(s) => s.split_whitespace().map(str::to_owned).collect(),
            StringList::Many(v) => v
                .into_iter()
                .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawRule {
    pub access: Option<StringList>,
    pub publish: Option<StringList>,
    pub unpublish: Option<StringList>,
    pub proxy: Option<StringList>,
    // Deprecated Verdaccio aliases.
    pub allow_access: Option<StringList>,
    pub allow_publish: Option<StringList>,
    pub proxy_access: Option<StringList>,
    pub storage: Option<String>,
    /// Ours: hide upstream versions younger than this (`7d`).
    pub quarantine: Option<Value>,
    /// Ours: upstream packages (`name`) or versions (`name@range`) never served.
    pub block: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawUplink {
    pub url: Option<String>,
    pub timeout: Option<Value>,
    pub maxage: Option<Value>,
    pub fail_timeout: Option<Value>,
    pub max_fails: Option<u32>,
    pub cache: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub auth: Option<RawUplinkAuth>,
    pub strict_ssl: Option<bool>,
    pub ca: Option<Value>,
    pub agent_options: Option<Value>,
    pub http_proxy: Option<Value>,
    pub https_proxy: Option<Value>,
    pub no_proxy: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawUplinkAuth {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub token: Option<String>,
    /// `true` means `NPM_TOKEN`, a string names the variable.
    pub token_env: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAuth {
    pub htpasswd: Option<RawHtpasswd>,
    #[serde(flatten)]
    pub plugins: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawHtpasswd {
    pub file: Option<String>,
    pub max_users: Option<i64>,
    pub algorithm: Option<String>,
    pub rounds: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawWeb {
    pub enable: Option<bool>,
    pub title: Option<String>,
    /// Verdaccio's many UI settings: accepted without a warning, unused.
    #[allow(dead_code)]
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawLog {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub format: Option<String>,
    pub level: Option<String>,
    pub path: Option<String>,
    pub colors: Option<bool>,
    pub redact: Option<Value>,
    pub sync: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawCache {
    pub max_size: Option<Value>,
    pub revalidate_after: Option<Value>,
}
