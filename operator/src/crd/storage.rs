//! Where packages are stored: a volume (a claim the operator creates, or an existing one) or S3.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Answer tarball downloads with a redirect to a presigned S3 URL valid this long (`5m`; at
    /// most 7 days): large tarballs then never pass through the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = super::server::DURATION_PATTERN))]
    pub tarball_redirect: Option<String>,
    /// Time to connect to S3 (server default 3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = super::server::DURATION_PATTERN))]
    pub connect_timeout: Option<String>,
    /// Limit of one attempt of one S3 call (server default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = super::server::DURATION_PATTERN))]
    pub request_timeout: Option<String>,
    /// Attempts per S3 call (server default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: Option<i32>,
}
