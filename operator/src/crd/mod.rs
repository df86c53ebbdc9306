//! The `NpmRegistry` custom resource (`npmregistry.dev/v1alpha1`).
//!
//! Invalid combinations are refused by the API server through CEL rules (`x-kubernetes-validations`),
//! so the reconciler only re-checks what CEL cannot express (see `validate.rs`). The spec's sections
//! live in the submodules, re-exported here.

mod exposure;
mod scheduling;
mod server;
mod storage;

use std::collections::BTreeMap;

pub use exposure::*;
use k8s_openapi::api::core::v1::{Affinity, LocalObjectReference, ResourceRequirements, Toleration};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
pub use scheduling::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use server::*;
pub use storage::*;

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
#[x_kube(validation = Rule::new(
    "!has(self.packages) || !self.packages.exists(p, has(p.trustedPublishers) && size(p.trustedPublishers) > 0) || (has(self.ingress) && has(self.ingress.host))"
).message("packages[].trustedPublishers requires ingress.host: an id-token's audience is checked against the registry's public URL"))]
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

    /// The key that signs hosted versions: a Secret, or (unset) one the server generates and
    /// keeps in the storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningSpec>,

    /// How the server handles connections: the proxies it believes, timeouts, limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSpec>,

    /// The background repair of leftovers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairSpec>,

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
