//! What reaches the server's config file: uplinks, package rules, users, caches, the web UI,
//! the signing key, connection handling and the background repair.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
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
    /// CI workflows that may publish matching packages with no token of their own, by npm's OIDC
    /// trusted publishing. Needs `ingress.host`: an id-token's audience is checked against the
    /// registry's public URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub trusted_publishers: Vec<TrustedPublisher>,
}

/// One trusted publisher: an OIDC issuer and the claims its id-tokens must carry.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.claims) > 0").message("a trusted publisher names at least one claim: without one, any workflow the issuer signs for could publish"))]
pub struct TrustedPublisher {
    /// The issuer whose id-tokens are accepted (an https URL, compared with a token's `iss`
    /// exactly), for example the CI system's token issuer.
    #[schemars(length(min = 9, max = 2048), regex(pattern = r"^https://[^?#]+$"))]
    pub issuer: String,
    /// Claim name to the value a token must carry: exact, or a pattern where `*` stands for any
    /// text (for example `repository: acme/widgets`, `ref: refs/tags/*`).
    #[schemars(extend("maxProperties" = 32))]
    pub claims: BTreeMap<String, ClaimValue>,
}

/// The value a claim must have.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(transparent)]
pub struct ClaimValue(#[schemars(length(min = 1, max = 1024))] pub String);

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
    /// Logo shown in the web UI: an http(s) URL the server fetches once at start and serves itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://"))]
    pub logo: Option<String>,
    /// Memory for package pages and rendered READMEs, for example `64Mi` (server default 32Mi).
    /// Counted in the pod's memory like `cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_size: Option<Quantity>,
}

/// The key that signs hosted versions (`dist.signatures`, served at `/-/npm/v1/keys`).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.keySecret) && has(self.rotateBefore))").message("signing.rotateBefore applies to the key kept in storage, not to keySecret: rotate a Secret key by moving it to retiredKeys"))]
pub struct SigningSpec {
    /// Sign at all (the server's default: true). `false`: no signatures and no keys served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Secret key holding the ECDSA P-256 private key (PEM), mounted read-only. Without it the
    /// server generates a key on first start and keeps it in the storage, shared by every replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<SecretKeyRef>,
    /// Without `keySecret`: retire a stored key made before this time (RFC 3339) and make a new
    /// one; the old one keeps verifying what it signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = RFC3339_PATTERN))]
    pub rotate_before: Option<String>,
    /// Keys that signed before `keySecret`'s, still served so that what they signed verifies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub retired_keys: Vec<RetiredKey>,
}

/// A key that no longer signs.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetiredKey {
    /// Secret key holding its PEM (public or private).
    pub secret_ref: SecretKeyRef,
    /// When it stopped signing (RFC 3339): npm trusts it for versions published before.
    #[schemars(regex(pattern = RFC3339_PATTERN))]
    pub expires: String,
}

const RFC3339_PATTERN: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

/// How the server handles connections (the config's `server` section). Left out, each setting
/// takes the server's default.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Proxies whose `X-Forwarded-For`/`-Host`/`-Proto` are believed: addresses, CIDRs, or
    /// `loopback`, `linklocal`, `uniquelocal` (the private ranges). Unset: with an Ingress,
    /// `uniquelocal` (the Ingress controller or ALB connects from the cluster's or VPC's private
    /// addresses; list the VPC CIDR to narrow it); without one, none. `[]` trusts none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 64), regex(pattern = r"^[0-9A-Za-z.:/]+$"))
    )]
    pub trust_proxy: Option<Vec<String>>,
    /// How long an idle keep-alive connection stays open (default 75s, above an ALB's 60s idle
    /// timeout so that the balancer closes idle connections, not the server; when the Ingress
    /// annotations raise the ALB's `idle_timeout.timeout_seconds`, that plus 15s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub keep_alive_timeout: Option<String>,
    /// How long a client may take to send a request's headers (default 20s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub headers_timeout: Option<String>,
    /// How long a body may move slower than 1 KiB/s before it is cut off (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub body_timeout: Option<String>,
    /// Connections open at once per pod; more wait to be accepted (default 2048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_connections: Option<i32>,
    /// Request body bytes all requests of a pod may hold in memory together, in Verdaccio size
    /// syntax (default `64mb`, at least `maxBodySize`); a request over it is answered 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?\s*(b|kb|mb|gb)?$"))]
    pub max_body_bytes_in_flight: Option<String>,
    /// Seconds a pod keeps serving after SIGTERM while it reports not-ready, so that kube-proxy
    /// and load balancers stop sending it connections before it closes its port (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 300))]
    pub shutdown_drain_seconds: Option<i32>,
    /// Seconds requests in flight then have to finish (default 20). The pod's
    /// `terminationGracePeriodSeconds` is the drain plus this plus 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub shutdown_timeout_seconds: Option<i32>,
}

/// The background repair of leftovers (orphan tarballs, stopped deletions, the package list,
/// temp files, the search index), run by one replica at a time.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepairSpec {
    /// How often leftovers are looked for (default 15m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Option<String>,
    /// How old a leftover must be before it is repaired (default 10m); longer than any write takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub grace: Option<String>,
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
