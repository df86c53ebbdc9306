//! What reaches the server's config file: uplinks, package rules, users, caches, the web UI.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One upstream registry.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UplinkSpec {
    /// Name used in `packages[].proxy`.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"))]
    pub name: String,
    /// Base URL of the upstream registry.
    #[schemars(length(max = 2048), regex(pattern = r"^https?://"))]
    pub url: String,
    /// Request timeout (Verdaccio duration, default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// How long fetched metadata is fresh (default 2m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub maxage: Option<String>,
    /// Failures before the uplink is marked offline (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_fails: Option<i32>,
    /// How long an offline uplink stays offline (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub fail_timeout: Option<String>,
    /// Cache tarballs fetched from this uplink (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    /// Credentials sent upstream, read from a Secret into an environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<UplinkAuth>,
}

pub(super) const DURATION_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d|w|M|y)?$";

/// Uplink credentials.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UplinkAuth {
    /// `bearer` (default) or `basic`.
    #[serde(default, rename = "type")]
    pub type_: UplinkAuthType,
    /// Secret key holding the token.
    pub secret_ref: SecretKeyRef,
}

/// Uplink authentication scheme.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UplinkAuthType {
    #[default]
    Bearer,
    Basic,
}

/// A key in a Secret of the NpmRegistry's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// One package access rule.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageRule {
    /// Package name glob, for example `@internal/*` or `**`.
    #[schemars(length(min = 1, max = 214))]
    pub pattern: String,
    /// Who may read: `$all`, `$anonymous`, `$authenticated`, users or groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub access: Vec<String>,
    /// Who may publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub publish: Vec<String>,
    /// Who may unpublish (default: as `publish`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub unpublish: Vec<String>,
    /// Uplinks consulted for packages matching this rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(min = 1, max = 63)))]
    pub proxy: Vec<String>,
    /// Hide upstream versions younger than this (a duration such as `7d`): a release-age quarantine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub quarantine: Option<String>,
    /// Upstream packages (`name`) or versions (`name@range`, an npm range) never served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 256)))]
    pub block: Vec<String>,
}

/// Sizes of the server's in-memory caches.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheSpec {
    /// Packument (package metadata) cache size, for example `256Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packuments: Option<Quantity>,
    /// Cache of small tarballs (up to 1 MiB each), for example `128Mi`; `0` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tarballs: Option<Quantity>,
}

/// The web UI.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebSpec {
    /// Serve the web UI (the server's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Title of the web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub title: Option<String>,
}

/// Authentication.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Secret holding the htpasswd file, mounted read-only.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of the htpasswd file in the Secret.
    #[serde(default = "default_htpasswd_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// Most users that may register; -1 (default) disables registration, since the file is read-only.
    #[serde(default = "default_max_users")]
    #[schemars(range(min = -1, max = 1000000))]
    pub max_users: i32,
}

fn default_htpasswd_key() -> String {
    "htpasswd".into()
}

fn default_max_users() -> i32 {
    -1
}
