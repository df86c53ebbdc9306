//! The config file of `npm-registry-server` as written: Verdaccio's `config.yaml` keys plus ours.
//!
//! Data only. The server parses it and validates every value (naming the key and the reason, so
//! values are loosely typed here); the operator renders it into a ConfigMap, so it cannot write a
//! key the server does not know. Defaults live in [`defaults`], once for both.

pub mod defaults;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<IndexMap<String, RuleFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplinks: Option<IndexMap<String, UplinkFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<BTreeMap<String, StringList>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<WebFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogFile>,
    /// Verdaccio's name before 5.22.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<BTreeMap<String, Value>>,
    /// Ours: the in-memory packument and tarball caches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packument_cache: Option<CacheFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tarball_cache: Option<CacheFile>,

    // Verdaccio settings this server accepts without using them; each gets a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middlewares: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub i18n: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiments: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Value>,
    #[serde(rename = "userRateLimit", skip_serializing_if = "Option::is_none")]
    pub user_rate_limit: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_path: Option<Value>,
}

impl ConfigFile {
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpublish: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<StringList>,
    // Deprecated Verdaccio aliases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_access: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_publish: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_access: Option<StringList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Ours: hide upstream versions younger than this (`7d`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Value>,
    /// Ours: upstream packages (`name`) or versions (`name@range`) never served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UplinkFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxage: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_timeout: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_fails: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<UplinkAuthFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict_ssl: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_options: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<Value>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UplinkAuthFile {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `true` means `NPM_TOKEN`, a string names the variable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<Value>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<HtpasswdFile>,
    /// Every other section: an auth plugin by its name (`ldap`, `gitlab`, ...).
    #[serde(flatten)]
    pub plugins: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HtpasswdFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_users: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u32>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// An image file (relative to the config file's folder) or an http(s) URL, as in Verdaccio.
    /// Either way the server reads it once at start and serves it itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Ours: the in-memory cache of package pages and rendered READMEs (`32mb`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_size: Option<Value>,
    /// Verdaccio's many UI settings: accepted without a warning, unused.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogFile {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colors: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redact: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<bool>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revalidate_after: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_file_reads_back_as_written_in_key_order() {
        let mut packages = IndexMap::new();
        for pattern in ["@internal/*", "**"] {
            packages.insert(
                pattern.to_owned(),
                RuleFile {
                    access: Some(StringList::Many(vec!["$all".into()])),
                    proxy: (pattern == "**").then(|| StringList::One("public".into())),
                    ..RuleFile::default()
                },
            );
        }
        let file = ConfigFile {
            listen: Some(Value::from("0.0.0.0:4873")),
            packages: Some(packages),
            ..ConfigFile::default()
        };
        let yaml = serde_yaml::to_string(&file).unwrap();
        assert_eq!(
            yaml,
            "listen: 0.0.0.0:4873\npackages:\n  '@internal/*':\n    access:\n    - $all\n  '**':\n    access:\n    - $all\n    proxy: public\n"
        );
        assert_eq!(serde_yaml::from_str::<ConfigFile>(&yaml).unwrap(), file);
    }
}
