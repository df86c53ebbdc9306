//! The `NpmRegistry` custom resource (`npmregistry.dev/v1alpha1`).
//!
//! Invalid combinations are refused by the API server through CEL rules (`x-kubernetes-validations`),
//! so the reconciler only re-checks what CEL cannot express (see `validate.rs`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, LocalObjectReference, ResourceRequirements, Toleration};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the custom resource.
pub const GROUP: &str = "npmregistry.dev";
/// Port the server listens on inside the pod.
pub const SERVER_PORT: i32 = 4873;

/// Desired state of one npm registry: the server Deployment, its storage, and how it is reached.
// The printer columns repeat `type_ = "string"`, which this lint takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "npmregistry.dev",
    version = "v1alpha1",
    kind = "NpmRegistry",
    plural = "npmregistries",
    shortname = "npmreg",
    namespaced,
    doc = "An npm registry (npm-registry-server) run by the npm-registry-operator.",
    status = "NpmRegistryStatus",
    derive = "Default",
    derive = "PartialEq",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.storage.volume) || self.storage.volume.accessMode == 'ReadWriteMany' || (self.replicas <= 1 && !has(self.autoscaling))"
).message("a ReadWriteOnce volume allows one replica and no autoscaling: use accessMode ReadWriteMany (EFS) or S3 storage"))]
pub struct NpmRegistrySpec {
    /// Server image. Defaults to the npm-registry-server release matching this operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// Image pull policy of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Secrets used to pull the server image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Number of server pods (ignored while `autoscaling` is set).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,

    /// Where packages are stored: exactly one of `volume` or `s3`.
    pub storage: StorageSpec,

    /// Upstream registries this one proxies, in the server config's `uplinks`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub uplinks: Vec<UplinkSpec>,

    /// Package access rules, first match wins (so this is an ordered list, not a map).
    /// Empty: every package readable by all, publishable by authenticated users, proxied to every uplink.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[x_kube(
        validation = Rule::new("self.all(p, self.exists_one(q, q.pattern == p.pattern))").message("package patterns must be unique"),
        merge_strategy = ListMerge::Atomic
    )]
    pub packages: Vec<PackageRule>,

    /// Users: a Secret holding an htpasswd file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,

    /// Largest publish body, in Verdaccio size syntax (`50mb`, `500kb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?\s*(b|kb|mb|gb)?$"))]
    pub max_body_size: Option<String>,

    /// Server log level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,

    /// Sizes of the server's in-memory caches (server defaults: 128Mi of packuments, 64Mi of
    /// tarballs). When `resources` sets no memory, the pod's memory request and limit are these
    /// plus the server's fixed overhead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSpec>,

    /// Groups of users: a group name can stand wherever a user name can in `packages`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Vec<String>>,

    /// The web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebSpec>,

    /// Exposes the registry through an Ingress (for example an AWS ALB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,

    /// The Service in front of the server pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,

    /// The ServiceAccount the server runs as (IRSA: `roleArn` or the `eks.amazonaws.com/role-arn` annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSpec>,

    /// Extra annotations on the server pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,

    /// CPU and memory of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Node labels the server pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the server pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity of the server pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Spread of the server pods across zones (applied when more than one pod runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread: Option<TopologySpreadSpec>,

    /// PodDisruptionBudget (created only when more than one pod runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetSpec>,

    /// HorizontalPodAutoscaler; when set it owns the replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
}

fn default_replicas() -> i32 {
    1
}

/// Image pull policy.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Server log level.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Http,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Http => "http",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Storage backend: exactly one of `volume` and `s3`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.volume) || has(self.s3)").message("one of storage.volume or storage.s3 is required"))]
#[x_kube(validation = Rule::new("!(has(self.volume) && has(self.s3))").message("storage.volume and storage.s3 are mutually exclusive"))]
pub struct StorageSpec {
    /// A PersistentVolumeClaim mounted at the server's storage path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeStorage>,
    /// An S3 bucket; credentials come from the AWS default chain (IRSA or Pod Identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
}

/// Size of a claim the operator creates when `size` is not given.
pub const DEFAULT_VOLUME_SIZE: &str = "10Gi";

/// Volume storage: a claim the operator creates, or an existing claim.
///
/// A PersistentVolumeClaim's access mode and class are immutable and its size can only grow: the
/// transition rules refuse such an edit at admission, so it can never reach the claim and fail there.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.existingClaim) || (!has(self.size) && !has(self.storageClassName))")
    .message("existingClaim cannot be combined with size or storageClassName"))]
#[x_kube(validation = Rule::new("self.accessMode == oldSelf.accessMode")
    .message("storage.volume.accessMode cannot change: the PersistentVolumeClaim's access mode is immutable (create a new NpmRegistry and copy the packages)"))]
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)")
    .message("storage.volume.storageClassName cannot change: the PersistentVolumeClaim's class is immutable (create a new NpmRegistry and copy the packages)"))]
#[x_kube(validation = Rule::new(format!(
    "quantity(has(self.size) ? string(self.size) : '{DEFAULT_VOLUME_SIZE}').compareTo(quantity(has(oldSelf.size) ? string(oldSelf.size) : '{DEFAULT_VOLUME_SIZE}')) >= 0"
)).message("storage.volume.size cannot shrink: a PersistentVolumeClaim only grows (and only when its StorageClass allows volume expansion)"))]
pub struct VolumeStorage {
    /// Size of the claim the operator creates (default 10Gi; it may grow, never shrink).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// StorageClass of the created claim (for example `gp3` for EBS or `efs-sc` for EFS); immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
    /// ReadWriteOnce (EBS: one replica, Recreate) or ReadWriteMany (EFS: several replicas); immutable.
    #[serde(default)]
    pub access_mode: AccessMode,
    /// Use this existing claim instead of creating one (the operator never deletes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub existing_claim: Option<String>,
    /// Keep the created claim when the NpmRegistry is deleted.
    #[serde(default)]
    pub retain_on_delete: bool,
}

/// Volume access mode.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AccessMode {
    #[default]
    ReadWriteOnce,
    ReadWriteOncePod,
    ReadWriteMany,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadWriteOncePod => "ReadWriteOncePod",
            AccessMode::ReadWriteMany => "ReadWriteMany",
        }
    }

    /// Only one pod may mount the volume: one replica and the `Recreate` strategy.
    pub fn single_writer(self) -> bool {
        self != AccessMode::ReadWriteMany
    }
}

/// S3 storage (the server's `store.aws-s3-storage`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Storage {
    /// Bucket name.
    #[schemars(length(min = 3, max = 63), regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"))]
    pub bucket: String,
    /// AWS region (default: from the environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Prefix of every key, for example `npm/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub key_prefix: Option<String>,
    /// Endpoint of an S3-compatible service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// Path-style addressing (most S3-compatible services need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// KMS key (full ARN) for SSE-KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key_id: Option<String>,
}

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

const DURATION_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d|w|M|y)?$";

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

/// Ingress.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.tls) || (has(self.host) && self.host != '')").message("ingress.tls requires ingress.host"))]
pub struct IngressSpec {
    /// Host name clients use; also sets the server's `public_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
    )]
    pub host: Option<String>,
    /// IngressClass, for example `alb` (AWS Load Balancer Controller) or `nginx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// Path prefix (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// TLS, by Secret or by ACM certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTls>,
    /// Annotations on the Ingress; these win over the operator's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// AWS Load Balancer Controller settings (used with `className: alb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbSpec>,
}

/// Ingress TLS: exactly one of `secretName` and `certificateArn`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretName) != has(self.certificateArn)").message("set exactly one of tls.secretName or tls.certificateArn"))]
pub struct IngressTls {
    /// Secret of type kubernetes.io/tls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
    /// ACM certificate ARN (ALB terminates TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^arn:aws[a-z-]*:acm:"))]
    pub certificate_arn: Option<String>,
}

/// AWS Load Balancer Controller settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbSpec {
    /// `internal` or `internet-facing` (the controller's default is internal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<AlbScheme>,
    /// `ip` (default; routes straight to pod IPs) or `instance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<AlbTargetType>,
    /// IngressGroup shared with other Ingresses (one ALB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"))]
    pub group_name: Option<String>,
}

/// ALB scheme.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlbScheme {
    Internal,
    InternetFacing,
}

impl AlbScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            AlbScheme::Internal => "internal",
            AlbScheme::InternetFacing => "internet-facing",
        }
    }
}

/// ALB target type.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlbTargetType {
    Ip,
    Instance,
}

impl AlbTargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            AlbTargetType::Ip => "ip",
            AlbTargetType::Instance => "instance",
        }
    }
}

/// Service.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type (default ClusterIP).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ServiceType>,
    /// Service port (default 4873).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Annotations on the Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Service type.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// ServiceAccount of the server pods.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSpec {
    /// IAM role for IRSA; becomes the `eks.amazonaws.com/role-arn` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"))]
    pub role_arn: Option<String>,
    /// Annotations on the ServiceAccount; these win over `roleArn`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Zone spread of the server pods.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologySpreadSpec {
    /// Spread across `topology.kubernetes.io/zone` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `ScheduleAnyway` (default) or `DoNotSchedule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_unsatisfiable: Option<WhenUnsatisfiable>,
}

/// What the scheduler does when the spread cannot be met.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WhenUnsatisfiable {
    ScheduleAnyway,
    DoNotSchedule,
}

impl WhenUnsatisfiable {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenUnsatisfiable::ScheduleAnyway => "ScheduleAnyway",
            WhenUnsatisfiable::DoNotSchedule => "DoNotSchedule",
        }
    }
}

/// PodDisruptionBudget.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    /// Create the budget when more than one pod runs (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Pods that may be unavailable at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// HorizontalPodAutoscaler.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.maxReplicas >= self.minReplicas").message("autoscaling.maxReplicas must be at least minReplicas"))]
pub struct AutoscalingSpec {
    /// Fewest pods (default 2).
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub min_replicas: i32,
    /// Most pods.
    #[schemars(range(min = 1, max = 100))]
    pub max_replicas: i32,
    /// Target average CPU utilization in percent of requests (default 80).
    #[serde(
        default,
        rename = "targetCPUUtilizationPercentage",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: Option<i32>,
}

fn default_min_replicas() -> i32 {
    2
}

/// Observed state, written only by the operator.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NpmRegistryStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Server pods that pass their readiness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// URL clients use: from the Ingress host, else the Service's in-cluster address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Host name of the load balancer in front of the Ingress, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_hostname: Option<String>,
    /// `Ready`, `Progressing`, `Degraded` (and kstatus' `Reconciling`, `Stalled`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// The CustomResourceDefinition, as installed.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = NpmRegistry::crd();
    for version in &mut crd.spec.versions {
        if let Some(schema) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
            let mut value = serde_json::to_value(&*schema).expect("schema serializes");
            strip_null_enum_values(&mut value);
            restrict_name(&mut value);
            *schema = serde_json::from_value(value).expect("schema deserializes");
        }
    }
    crd
}

/// Children are named `<name>-storage` and the Service `<name>`: both must stay DNS labels. The
/// schema may restrict `metadata.name` (and nothing else of `metadata`); the API server then names
/// the field in its error, which a root-level CEL rule cannot.
fn restrict_name(schema: &mut serde_json::Value) {
    schema["properties"]["metadata"] = serde_json::json!({
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "maxLength": crate::validate::MAX_NAME_LEN,
                "pattern": crate::validate::NAME_PATTERN,
            }
        }
    });
}

/// schemars lists `null` among the values of an `Option<enum>`; `nullable: true` already says that,
/// and a `null` enum value is not a string, so drop it.
fn strip_null_enum_values(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            map.values_mut().for_each(strip_null_enum_values);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_null_enum_values),
        _ => {}
    }
}

/// The CustomResourceDefinition as YAML (what `npm-registry-operator crd` prints and `crds/` holds).
pub fn crd_yaml() -> String {
    let yaml = serde_yaml::to_string(&crd()).expect("the CRD serializes");
    format!("# Generated by `npm-registry-operator crd`; do not edit.\n{yaml}")
}
