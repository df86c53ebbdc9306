//! Desired state as pure functions: one builder per child kind, no API calls, deterministic output
//! (sorted maps, stable names, no timestamps) so a steady state applies as a no-op.

pub mod configmap;
pub mod deployment;
pub mod hpa;
pub mod ingress;
pub mod pdb;
pub mod pvc;
pub mod service;
pub mod serviceaccount;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use sha2::{Digest, Sha256};

use crate::children::{Child, ChildKind};
use crate::crd::{NpmRegistry, NpmRegistrySpec, VolumeStorage};
use crate::validate::{self, SpecError};

/// Default server image: the server release that matches this operator.
pub const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/npmregistry-dev/npm-registry-server:",
    env!("CARGO_PKG_VERSION")
);
/// Our own annotations and labels live under the API group.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "npmregistry.dev/config-checksum";
pub const SERVICE_ACCOUNT_CHECKSUM_ANNOTATION: &str = "npmregistry.dev/service-account-checksum";
/// The server binary in its image (registry-server/Dockerfile puts it there; so does the
/// container test's image). An absolute path: an image built from scratch may set no PATH.
pub const SERVER_BINARY: &str = "/usr/local/bin/npm-registry-server";
/// Where the server reads its config and writes packages (the contract with registry-server).
pub const CONFIG_DIR: &str = "/etc/npm-registry";
pub const CONFIG_PATH: &str = "/etc/npm-registry/config.yaml";
pub const HTPASSWD_PATH: &str = "/etc/npm-registry/auth/htpasswd";
/// The signing key Secret and retired keys, projected into the config volume (paths below it).
pub const SIGNING_DIR: &str = "signing";
pub const SIGNING_KEY_FILE: &str = "signing/key.pem";
pub const STORAGE_PATH: &str = "/var/lib/npm-registry/storage";
pub const PING_PATH: &str = "/-/ping";
pub const READY_PATH: &str = "/-/ready";

/// Errors that stop the build of the desired state.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the NpmRegistry has no {0}")]
    MissingMetadata(&'static str),
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] SpecError),
    #[error("cannot render the server config: {0}")]
    Config(#[from] serde_yaml::Error),
    #[error("invalid spec: {0}")]
    Quantity(#[from] crate::quantity::QuantityError),
}

/// Everything one NpmRegistry should own; `None` means "must not exist" (an orphan to delete).
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub config_map: ConfigMap,
    pub service_account: ServiceAccount,
    pub service: Service,
    pub pvc: Option<PersistentVolumeClaim>,
    pub deployment: Deployment,
    pub ingress: Option<Ingress>,
    pub pdb: Option<PodDisruptionBudget>,
    pub hpa: Option<HorizontalPodAutoscaler>,
}

impl Desired {
    /// The child of `kind` this NpmRegistry wants; `None`: it must not exist.
    pub fn get(&self, kind: ChildKind) -> Option<Child> {
        match kind {
            ChildKind::ConfigMap => Some(Child::ConfigMap(self.config_map.clone())),
            ChildKind::ServiceAccount => Some(Child::ServiceAccount(self.service_account.clone())),
            ChildKind::Service => Some(Child::Service(self.service.clone())),
            ChildKind::PersistentVolumeClaim => self.pvc.clone().map(Child::PersistentVolumeClaim),
            ChildKind::Deployment => Some(Child::Deployment(self.deployment.clone())),
            ChildKind::Ingress => self.ingress.clone().map(Child::Ingress),
            ChildKind::PodDisruptionBudget => self.pdb.clone().map(Child::PodDisruptionBudget),
            ChildKind::HorizontalPodAutoscaler => self.hpa.clone().map(Child::HorizontalPodAutoscaler),
        }
    }
}

/// Validates the NpmRegistry and builds every child from it.
pub fn build(registry: &NpmRegistry) -> Result<Desired, BuildError> {
    let view = View::new(registry)?;
    let config_map = configmap::build(&view)?;
    let service_account = serviceaccount::build(&view);
    let checksums = deployment::Checksums {
        config: configmap::checksum(&config_map),
        service_account: serviceaccount::checksum(&service_account),
    };
    Ok(Desired {
        deployment: deployment::build(&view, &checksums)?,
        service: service::build(&view),
        pvc: pvc::build(&view),
        ingress: ingress::build(&view),
        pdb: pdb::build(&view),
        hpa: hpa::build(&view),
        config_map,
        service_account,
    })
}

/// A validated NpmRegistry with the values every builder needs.
pub struct View<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub spec: &'a NpmRegistrySpec,
    pub owner: OwnerReference,
}

impl<'a> View<'a> {
    pub fn new(registry: &'a NpmRegistry) -> Result<Self, BuildError> {
        let meta = &registry.metadata;
        let name = meta.name.as_deref().ok_or(BuildError::MissingMetadata("name"))?;
        let namespace = meta
            .namespace
            .as_deref()
            .ok_or(BuildError::MissingMetadata("namespace"))?;
        let owner = registry
            .controller_owner_ref(&())
            .ok_or(BuildError::MissingMetadata("uid"))?;
        validate::spec(name, &registry.spec)?;
        Ok(View {
            name,
            namespace,
            spec: &registry.spec,
            owner,
        })
    }

    /// Labels on every child: our own `app.kubernetes.io/*` set, never the NpmRegistry's labels
    /// (GitOps tools would adopt and prune children that carry their tracking labels).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert("app.kubernetes.io/managed-by".into(), "npm-registry-operator".into());
        labels.insert("app.kubernetes.io/part-of".into(), "npm-registry".into());
        labels
    }

    /// The immutable subset used by the Deployment, Service and PDB selectors.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "npm-registry-server".to_string()),
            ("app.kubernetes.io/instance".to_string(), self.name.to_string()),
        ])
    }

    /// Metadata of a child named `name`, owned by the NpmRegistry.
    pub fn meta(&self, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_string()),
            labels: Some(self.labels()),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    pub fn volume(&self) -> Option<&'a VolumeStorage> {
        self.spec.storage.volume.as_ref()
    }

    /// One pod at most may mount the volume (EBS and other ReadWriteOnce volumes).
    pub fn single_writer(&self) -> bool {
        self.volume().is_some_and(|v| v.access_mode.single_writer())
    }

    /// Replica count the Deployment carries; `None` while an HPA owns it.
    pub fn fixed_replicas(&self) -> Option<i32> {
        if self.spec.autoscaling.is_some() {
            return None;
        }
        let replicas = self.spec.replicas.max(0);
        Some(if self.single_writer() {
            replicas.min(1)
        } else {
            replicas
        })
    }

    /// Fewest pods that normally run (decides PDB and zone spread).
    pub fn min_replicas(&self) -> i32 {
        match (&self.spec.autoscaling, self.fixed_replicas()) {
            (Some(hpa), _) => hpa.min_replicas,
            (None, replicas) => replicas.unwrap_or(1),
        }
    }

    /// Most pods that may run.
    pub fn max_replicas(&self) -> i32 {
        match &self.spec.autoscaling {
            Some(hpa) => hpa.max_replicas,
            None => self.fixed_replicas().unwrap_or(1),
        }
    }

    /// Bytes the server's caches may hold: the packument and tarball caches and, while the web UI
    /// is on, its page cache; the spec's sizes, else the server's defaults.
    pub fn cache_bytes(&self) -> Result<u64, crate::quantity::QuantityError> {
        use registry_config::defaults;
        let cache = self.spec.cache.clone().unwrap_or_default();
        let web = self.spec.web.clone().unwrap_or_default();
        let size = |q: &Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>, default: u64| {
            q.as_ref().map_or(Ok(default), crate::quantity::bytes)
        };
        let pages = match web.enable {
            Some(false) => 0,
            _ => size(&web.cache_size, defaults::WEB_CACHE_SIZE)?,
        };
        Ok(size(&cache.packuments, defaults::PACKUMENT_CACHE_SIZE)?
            + size(&cache.tarballs, defaults::TARBALL_CACHE_SIZE)?
            + pages)
    }

    /// The signing key Secret and where it is projected, relative to [`CONFIG_DIR`].
    pub fn signing_key(&self) -> Option<(String, &'a crate::crd::SecretKeyRef)> {
        let key = self.spec.signing.as_ref()?.key_secret.as_ref()?;
        Some((SIGNING_KEY_FILE.to_string(), key))
    }

    /// The retired keys and where each is projected, relative to [`CONFIG_DIR`], in spec order.
    pub fn retired_keys(&self) -> Vec<(String, &'a crate::crd::RetiredKey)> {
        let Some(signing) = &self.spec.signing else {
            return Vec::new();
        };
        signing
            .retired_keys
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("{SIGNING_DIR}/retired-{i}.pem"), r))
            .collect()
    }

    pub fn service_port(&self) -> i32 {
        self.spec
            .service
            .as_ref()
            .and_then(|s| s.port)
            .unwrap_or(crate::crd::SERVER_PORT)
    }
}

/// Child names, stable for the life of the NpmRegistry.
pub mod names {
    use crate::children::ChildKind;

    /// The name of the `kind` child of `registry`.
    pub fn of(kind: ChildKind, registry: &str) -> String {
        match kind {
            ChildKind::ConfigMap => config_map(registry),
            ChildKind::PersistentVolumeClaim => pvc(registry),
            ChildKind::ServiceAccount
            | ChildKind::Service
            | ChildKind::Deployment
            | ChildKind::Ingress
            | ChildKind::PodDisruptionBudget
            | ChildKind::HorizontalPodAutoscaler => workload(registry),
        }
    }

    pub fn config_map(registry: &str) -> String {
        format!("{registry}-config")
    }
    pub fn pvc(registry: &str) -> String {
        format!("{registry}-storage")
    }
    /// Deployment, Service, ServiceAccount, Ingress, PDB and HPA share the NpmRegistry's name.
    pub fn workload(registry: &str) -> String {
        registry.to_string()
    }
}

/// Hex SHA-256 of `bytes`, for the pod-template checksums.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    #[test]
    fn every_child_is_owned_and_labelled_without_copying_the_registry_metadata() {
        let mut registry = registry(volume_spec());
        registry.metadata.labels = Some(BTreeMap::from([("argocd.argoproj.io/instance".into(), "x".into())]));
        registry.metadata.annotations = Some(BTreeMap::from([("argocd.argoproj.io/tracking-id".into(), "x".into())]));
        let desired = build(&registry).unwrap();
        let metas = [
            &desired.config_map.metadata,
            &desired.service_account.metadata,
            &desired.service.metadata,
            &desired.deployment.metadata,
            &desired.pvc.as_ref().unwrap().metadata,
        ];
        for meta in metas {
            let owner = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!(owner.kind, "NpmRegistry");
            assert_eq!(owner.controller, Some(true));
            let labels = meta.labels.as_ref().unwrap();
            assert!(labels.keys().all(|k| k.starts_with("app.kubernetes.io/")), "{labels:?}");
            assert!(
                meta.annotations
                    .as_ref()
                    .is_none_or(|a| !a.contains_key("argocd.argoproj.io/tracking-id"))
            );
        }
    }

    #[test]
    fn build_is_deterministic() {
        let registry = registry(s3_spec());
        let a = serde_json::to_string(&build(&registry).unwrap().deployment).unwrap();
        let b = serde_json::to_string(&build(&registry).unwrap().deployment).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn missing_uid_is_an_error_not_a_panic() {
        let mut registry = registry(volume_spec());
        registry.metadata.uid = None;
        assert!(matches!(build(&registry), Err(BuildError::MissingMetadata("uid"))));
    }

    #[test]
    fn default_image_is_the_matching_server_release() {
        assert_eq!(
            DEFAULT_IMAGE,
            format!(
                "ghcr.io/npmregistry-dev/npm-registry-server:{}",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
