//! The config file of `npm-registry-server` as written: Verdaccio's `config.yaml` keys plus ours.
//!
//! Data only. The server parses it and validates every value (naming the key and the reason, so
//! values are loosely typed here); the operator renders it into a ConfigMap, so it cannot write a
//! key the server does not know. Defaults live in [`defaults`], once for both. Each type says in
//! `expecting` what a user should have written, so that a misplaced value is reported in the
//! file's terms, never with a type name of ours.
//!
//! One file, long because it is the whole format: one struct per section, read top to bottom
//! like the file they describe.

pub mod defaults;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    expecting = "a mapping of settings (storage, listen, packages, uplinks, auth, ...)"
)]
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
    /// A storage plugin by its name; [`S3_PLUGIN`] holds an [`S3StoreFile`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<BTreeMap<String, Value>>,
    /// Ours: the in-memory packument and tarball caches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packument_cache: Option<CacheFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tarball_cache: Option<CacheFile>,
    /// Ours: `auth` plugin sections to start without (their users cannot log in here). Without
    /// it, a plugin section this server does not implement stops it from starting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_auth_plugins: Option<StringList>,
    /// Which tokens Verdaccio issued and how to check them (`api.legacy`, `api.jwt`, `web`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityFile>,
    /// Verdaccio's `server` section (`trustProxy`, `keepAliveTimeout`) and our connection limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerFile>,
    /// Ours: the background repair of leftovers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairFile>,
    /// Ours: the key that signs hosted versions (`dist.signatures`, `GET /-/npm/v1/keys`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningFile>,

    // Verdaccio settings this server accepts without using them; each gets a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middlewares: Option<Value>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_path: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<Value>,
    #[serde(rename = "_debug", skip_serializing_if = "Option::is_none")]
    pub debug: Option<Value>,
}

impl ConfigFile {
    /// Verdaccio keys that are read but have no effect here.
    pub fn unused_verdaccio_keys(&self) -> Vec<&'static str> {
        let pairs: [(&'static str, bool); 18] = [
            ("plugins", self.plugins.is_some()),
            ("middlewares", self.middlewares.is_some()),
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
            ("config_path", self.config_path.is_some()),
            ("server_id", self.server_id.is_some()),
            ("_debug", self.debug.is_some()),
        ];
        pairs.into_iter().filter(|(_, set)| *set).map(|(k, _)| k).collect()
    }
}

/// Verdaccio accepts both `access: $all staff` and `access: [$all, staff]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "names, as a list or separated by spaces (`$all`, `alice staff`, `[alice, staff]`)"
)]
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
#[serde(
    default,
    expecting = "a package rule: a mapping with access, publish, unpublish, proxy (under a package pattern such as '**')"
)]
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
    /// Ours: CI workflows that may publish matching packages without a token of their own, by
    /// npm's OIDC trusted publishing (`POST /-/npm/v1/oidc/token/exchange/package/<name>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_publishers: Option<Vec<TrustedPublisherFile>>,
}

/// One trusted publisher: the OIDC issuer whose id-tokens are accepted, and the claims a token
/// must carry (each exactly, or as a pattern where `*` stands for any text).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    expecting = "a trusted publisher: a mapping with issuer (an https URL) and claims (claim name: value)"
)]
pub struct TrustedPublisherFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<BTreeMap<String, Value>>,
}

/// The registry's signing key: a PEM file (a mounted Secret), or else one generated on first
/// start and kept in the storage backend, shared by every replica.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    expecting = "a mapping with enabled, key_file, rotate_before and retired_keys"
)]
pub struct SigningFile {
    /// `false`: no signatures and no keys (`GET /-/npm/v1/keys` answers 404).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// An ECDSA P-256 private key, PEM (`PRIVATE KEY` or `EC PRIVATE KEY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Without `key_file`: a stored key made before this time (RFC 3339) is retired once the
    /// time has come, and a new one made (the old one keeps verifying what it signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_before: Option<String>,
    /// Keys signed with before `key_file`'s, still served so that what they signed verifies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_keys: Option<Vec<RetiredKeyFile>>,
}

/// A retired signing key: its PEM (public or private) and when it stopped signing.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, expecting = "a mapping with key_file and expires")]
pub struct RetiredKeyFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// RFC 3339; npm trusts the key for versions published before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    expecting = "an uplink: a mapping with url, timeout, maxage, ... (under the uplink's name)"
)]
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
    /// Ours: the largest packument accepted from this uplink (`64mb`); checked while it arrives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_packument_size: Option<Value>,
    /// Ours: the largest tarball accepted from this uplink (`1gb`); checked while it arrives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tarball_size: Option<Value>,
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
#[serde(default, expecting = "a mapping with type (bearer or basic) and token_env")]
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
#[serde(default, expecting = "a mapping of auth plugins (htpasswd: {file: ...})")]
pub struct AuthFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<HtpasswdFile>,
    /// Every other section: an auth plugin by its name (`ldap`, `gitlab`, ...).
    #[serde(flatten)]
    pub plugins: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, expecting = "a mapping with file and max_users")]
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
#[serde(default, expecting = "a mapping with enable, title, ...")]
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
#[serde(default, expecting = "a mapping with type, format and level")]
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

/// `server`: how connections are served. `trustProxy` and `keepAliveTimeout` are Verdaccio's keys
/// (same meaning); the rest are ours, camelCase like them.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerFile {
    /// The proxies whose `X-Forwarded-For`/`-Host`/`-Proto` headers are believed: IPs, CIDRs,
    /// `loopback`, `linklocal`, `uniquelocal`; a list or one comma-separated string.
    #[serde(rename = "trustProxy", skip_serializing_if = "Option::is_none")]
    pub trust_proxy: Option<Value>,
    /// How long an idle keep-alive connection stays open (seconds, or `75s`).
    #[serde(rename = "keepAliveTimeout", skip_serializing_if = "Option::is_none")]
    pub keep_alive_timeout: Option<Value>,
    /// How long a client may take to send a request's headers.
    #[serde(rename = "headersTimeout", skip_serializing_if = "Option::is_none")]
    pub headers_timeout: Option<Value>,
    /// How long a request or response body may move slower than 1 KiB/s before it is cut off.
    #[serde(rename = "bodyTimeout", skip_serializing_if = "Option::is_none")]
    pub body_timeout: Option<Value>,
    /// Connections open at once; more wait to be accepted.
    #[serde(rename = "maxConnections", skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<Value>,
    /// Connections one client address may hold at once (behind a proxy in `trustProxy`:
    /// requests in progress per forwarded address).
    #[serde(rename = "maxConnectionsPerAddress", skip_serializing_if = "Option::is_none")]
    pub max_connections_per_address: Option<Value>,
    /// Request body bytes all requests together may hold in memory (`64mb`); a request over it
    /// gets 503 before its body is read (a request refused before, e.g. 401, reserves nothing).
    #[serde(rename = "maxBodyBytesInFlight", skip_serializing_if = "Option::is_none")]
    pub max_body_bytes_in_flight: Option<Value>,
    /// What happens on SIGTERM (`drain`, `timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<ShutdownFile>,
    /// Verdaccio's other `server` settings: accepted with a warning, unused.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `server.shutdown`: on SIGTERM the server reports not-ready and keeps serving for `drain` (so
/// load balancers stop sending it new connections first), then stops accepting, closes idle
/// connections and gives requests in flight up to `timeout` to finish.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Value>,
}

/// `repair`: the background task that removes orphan tarballs, finishes stopped deletions,
/// completes the package list, sweeps temp files and rebuilds the search index.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RepairFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace: Option<Value>,
}

/// The name of the S3 storage plugin under `store` (Verdaccio's `verdaccio-aws-s3-storage`).
pub const S3_PLUGIN: &str = "aws-s3-storage";

/// The keys of `store.aws-s3-storage` as the file spells them: the one home of these names (the
/// server reads them by these, and a test holds them to [`S3StoreFile`]'s own spelling).
pub mod s3_keys {
    pub const BUCKET: &str = "bucket";
    pub const KEY_PREFIX: &str = "keyPrefix";
    pub const REGION: &str = "region";
    pub const ENDPOINT: &str = "endpoint";
    pub const FORCE_PATH_STYLE: &str = "s3ForcePathStyle";
    pub const SSE_KMS_KEY_ID: &str = "sseKmsKeyId";
    pub const TARBALL_REDIRECT: &str = "tarballRedirect";
    pub const CONNECT_TIMEOUT: &str = "connectTimeout";
    pub const REQUEST_TIMEOUT: &str = "requestTimeout";
    pub const MAX_ATTEMPTS: &str = "maxAttempts";
    /// Every key above, in [`super::S3StoreFile`]'s order.
    pub const ALL: [&str; 10] = [
        BUCKET,
        KEY_PREFIX,
        REGION,
        ENDPOINT,
        FORCE_PATH_STYLE,
        SSE_KMS_KEY_ID,
        TARBALL_REDIRECT,
        CONNECT_TIMEOUT,
        REQUEST_TIMEOUT,
        MAX_ATTEMPTS,
    ];
}

/// `store.aws-s3-storage`: the plugin's keys (camelCase, as Verdaccio spells them) plus ours
/// (`sseKmsKeyId`, `tarballRedirect`, `connectTimeout`, `requestTimeout`, `maxAttempts`).
/// Credentials are never part of the file.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct S3StoreFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(rename = "s3ForcePathStyle", skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse_kms_key_id: Option<String>,
    /// `true`, `false` or a lifetime (`5m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tarball_redirect: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, expecting = "a mapping with max_size and revalidate_after")]
pub struct CacheFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revalidate_after: Option<Value>,
}

/// Verdaccio's `security`: how the API and the web UI sign and check tokens.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, expecting = "a mapping with api and web")]
pub struct SecurityFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiSecurityFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<JwtFile>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, expecting = "a mapping with legacy and jwt")]
pub struct ApiSecurityFile {
    /// AES legacy tokens (Verdaccio's default); with `jwt` set, JWTs instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtFile>,
    #[serde(rename = "migrateToSecureLegacySignature", skip_serializing_if = "Option::is_none")]
    pub migrate_to_secure_legacy_signature: Option<bool>,
}

/// `sign` and `verify` options of Verdaccio's JWTs (those of node's `jsonwebtoken`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, expecting = "a mapping with sign and verify")]
pub struct JwtFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign: Option<BTreeMap<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<BTreeMap<String, Value>>,
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

    #[test]
    fn the_s3_section_uses_the_plugin_spelling() {
        let s3 = S3StoreFile {
            bucket: Some("b".into()),
            key_prefix: Some("npm/".into()),
            force_path_style: Some(true),
            sse_kms_key_id: Some("k".into()),
            max_attempts: Some(3),
            ..S3StoreFile::default()
        };
        let yaml = serde_yaml::to_string(&s3).unwrap();
        assert_eq!(
            yaml,
            "bucket: b\nkeyPrefix: npm/\ns3ForcePathStyle: true\nsseKmsKeyId: k\nmaxAttempts: 3\n"
        );
        assert_eq!(serde_yaml::from_str::<S3StoreFile>(&yaml).unwrap(), s3);
    }

    #[test]
    fn the_s3_key_names_are_the_sections_own() {
        let every = S3StoreFile {
            bucket: Some("b".into()),
            key_prefix: Some("p".into()),
            region: Some("r".into()),
            endpoint: Some("e".into()),
            force_path_style: Some(true),
            sse_kms_key_id: Some("k".into()),
            tarball_redirect: Some(Value::from(true)),
            connect_timeout: Some(Value::from("1s")),
            request_timeout: Some(Value::from("1s")),
            max_attempts: Some(1),
        };
        let Value::Mapping(map) = serde_yaml::to_value(&every).unwrap() else {
            panic!("a mapping");
        };
        let spelled: Vec<&str> = map.keys().map(|k| k.as_str().unwrap()).collect();
        assert_eq!(spelled, s3_keys::ALL);
    }
}
