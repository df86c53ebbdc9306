//! The server Deployment: non-root, read-only root filesystem, probes on the health endpoints,
//! checksums that roll the pods, and zone spread when several pods run.
//!
//! Rollouts lose no request: where two pods may run at once (S3, ReadWriteMany) new pods start
//! before old ones stop (`maxSurge: 1`, `maxUnavailable: 0`); a stopping pod drains itself. No
//! `preStop` hook is rendered: the image has no shell for a `sleep` command, a `preStop.sleep`
//! action needs Kubernetes 1.30+, and either would only delay the SIGTERM after which the server
//! already keeps serving, not-ready, for `server.shutdown.drain` while kube-proxy catches up.
//! `terminationGracePeriodSeconds` covers that drain and the bound on requests in flight.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecretKeySelector, SecretProjection, SecurityContext,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::configmap::CONFIG_KEY;
use super::{
    CONFIG_CHECKSUM_ANNOTATION, CONFIG_DIR, CONFIG_PATH, DEFAULT_IMAGE, PING_PATH, READY_PATH, SERVER_BINARY,
    SERVICE_ACCOUNT_CHECKSUM_ANNOTATION, STORAGE_PATH, View, names,
};
use crate::crd::{SERVER_PORT, WhenUnsatisfiable};
use crate::quantity;
use crate::validate::uplink_token_env;

pub const CONTAINER_NAME: &str = "server";
/// The server image's non-root user (the contract with registry-server).
pub const SERVER_UID: i64 = 10001;
/// CPU request when the spec sets no resources at all.
const DEFAULT_CPU_REQUEST: &str = "100m";
const ZONE_KEY: &str = "topology.kubernetes.io/zone";
/// Seconds the kubelet waits past the server's drain and in-flight bound: its own exit.
const GRACE_MARGIN_SECS: i64 = 5;

/// `terminationGracePeriodSeconds`: the server's drain and its bound on requests in flight (the
/// spec's or the server's defaults), plus a margin, so that the kubelet never kills it mid-drain.
pub fn termination_grace_seconds(spec: &crate::crd::NpmRegistrySpec) -> i64 {
    use registry_config::defaults::{SHUTDOWN_DRAIN, SHUTDOWN_TIMEOUT};
    let server = spec.server.clone().unwrap_or_default();
    let drain = server
        .shutdown_drain_seconds
        .map_or(SHUTDOWN_DRAIN.as_secs() as i64, |s| i64::from(s.max(0)));
    let timeout = server
        .shutdown_timeout_seconds
        .map_or(SHUTDOWN_TIMEOUT.as_secs() as i64, |s| i64::from(s.max(1)));
    drain + timeout + GRACE_MARGIN_SECS
}

/// Checksums of the objects the pods depend on, recorded on the pod template.
pub struct Checksums {
    pub config: String,
    pub service_account: String,
}

pub fn build(view: &View, checksums: &Checksums) -> Result<Deployment, super::BuildError> {
    let spec = view.spec;
    let single_writer = view.single_writer();
    let strategy = if single_writer {
        // Two pods cannot mount a ReadWriteOnce volume (Multi-Attach): stop the old pod first.
        // Each change is a short outage; status and README say so (`status::RECREATE_OUTAGE`).
        DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        }
    } else {
        DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        }
    };

    let mut annotations = spec.pod_annotations.clone();
    annotations.insert("kubectl.kubernetes.io/default-container".into(), CONTAINER_NAME.into());
    annotations.insert(CONFIG_CHECKSUM_ANNOTATION.into(), checksums.config.clone());
    annotations.insert(
        SERVICE_ACCOUNT_CHECKSUM_ANNOTATION.into(),
        checksums.service_account.clone(),
    );

    Ok(Deployment {
        metadata: view.meta(names::workload(view.name)),
        spec: Some(DeploymentSpec {
            replicas: view.fixed_replicas(),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(view.selector_labels()),
                ..LabelSelector::default()
            },
            strategy: Some(strategy),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(view.labels()),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(view)?),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

fn pod_spec(view: &View) -> Result<PodSpec, super::BuildError> {
    let spec = view.spec;
    Ok(PodSpec {
        service_account_name: Some(names::workload(view.name)),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(SERVER_UID),
            run_as_group: Some(SERVER_UID),
            // Makes a fresh volume writable by the server user; skip the walk when already right.
            fs_group: Some(SERVER_UID),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container(view)?],
        volumes: Some(volumes(view)),
        image_pull_secrets: (!spec.image_pull_secrets.is_empty()).then(|| spec.image_pull_secrets.clone()),
        node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
        tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
        affinity: spec.affinity.clone(),
        topology_spread_constraints: topology_spread(view),
        termination_grace_period_seconds: Some(termination_grace_seconds(spec)),
        ..PodSpec::default()
    })
}

fn container(view: &View) -> Result<Container, super::BuildError> {
    let spec = view.spec;
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    let mut mounts = vec![
        VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        },
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        },
    ];
    if view.volume().is_some() {
        mounts.push(VolumeMount {
            name: "storage".into(),
            mount_path: STORAGE_PATH.into(),
            ..Default::default()
        });
    }
    let env: Vec<EnvVar> = spec
        .uplinks
        .iter()
        .filter_map(|uplink| {
            let auth = uplink.auth.as_ref()?;
            Some(EnvVar {
                name: uplink_token_env(&uplink.name),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: auth.secret_ref.name.clone(),
                        key: auth.secret_ref.key.clone(),
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            })
        })
        .collect();
    Ok(Container {
        name: CONTAINER_NAME.into(),
        image: Some(spec.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.into())),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().into()),
        command: Some(vec![SERVER_BINARY.into()]),
        args: Some(vec!["--config".into(), CONFIG_PATH.into()]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: SERVER_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: (!env.is_empty()).then_some(env),
        // Startup allows slow storage (a cold EFS or S3) up to 2 minutes before liveness applies.
        startup_probe: Some(probe(PING_PATH, 2, 60)),
        liveness_probe: Some(probe(PING_PATH, 10, 3)),
        readiness_probe: Some(probe(READY_PATH, 5, 2)),
        resources: Some(resources(view)?),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    })
}

/// The spec's resources; when they set no memory, a memory request and an equal limit sized for
/// the server: its two caches (spec or server defaults) plus its fixed overhead. Memory is bounded
/// by configuration, so the limit is what the server can use, and a request below it would let the
/// scheduler overcommit the node.
fn resources(view: &View) -> Result<ResourceRequirements, super::BuildError> {
    let mut resources = view.spec.resources.clone().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([(
            "cpu".to_string(),
            Quantity(DEFAULT_CPU_REQUEST.into()),
        )])),
        ..ResourceRequirements::default()
    });
    let sets_memory =
        |list: &Option<BTreeMap<String, Quantity>>| list.as_ref().is_some_and(|l| l.contains_key("memory"));
    if !sets_memory(&resources.requests) && !sets_memory(&resources.limits) {
        let memory = quantity::mebibytes(view.cache_bytes()? + registry_config::defaults::MEMORY_OVERHEAD);
        for list in [&mut resources.requests, &mut resources.limits] {
            list.get_or_insert_default().insert("memory".into(), memory.clone());
        }
    }
    Ok(resources)
}

fn volumes(view: &View) -> Vec<Volume> {
    // One projected volume: a Secret mounted inside a ConfigMap mount would need a mount point
    // in a read-only volume.
    let mut sources = vec![VolumeProjection {
        config_map: Some(ConfigMapProjection {
            name: names::config_map(view.name),
            items: Some(vec![KeyToPath {
                key: CONFIG_KEY.into(),
                path: "config.yaml".into(),
                mode: None,
            }]),
            optional: Some(false),
        }),
        ..VolumeProjection::default()
    }];
    if let Some(auth) = &view.spec.auth {
        sources.push(VolumeProjection {
            secret: Some(SecretProjection {
                name: auth.secret_name.clone(),
                items: Some(vec![KeyToPath {
                    key: auth.key.clone(),
                    path: "auth/htpasswd".into(),
                    mode: None,
                }]),
                optional: Some(false),
            }),
            ..VolumeProjection::default()
        });
    }
    // The signing keys: read-only like the rest of the volume, and readable by the server's
    // group only (fsGroup), as the htpasswd file.
    let key = view.signing_key().map(|(file, secret)| (file, secret.clone()));
    let retired = view
        .retired_keys()
        .into_iter()
        .map(|(file, r)| (file, r.secret_ref.clone()));
    for (path, secret) in key.into_iter().chain(retired) {
        sources.push(VolumeProjection {
            secret: Some(SecretProjection {
                name: secret.name,
                items: Some(vec![KeyToPath {
                    key: secret.key,
                    path,
                    mode: None,
                }]),
                optional: Some(false),
            }),
            ..VolumeProjection::default()
        });
    }
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(sources),
                default_mode: Some(0o440),
            }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    if let Some(volume) = view.volume() {
        let claim_name = volume.existing_claim.clone().unwrap_or_else(|| names::pvc(view.name));
        volumes.push(Volume {
            name: "storage".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name,
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    volumes
}

/// Zone spread, only when more than one pod may run (pointless for a single pod or volume).
fn topology_spread(view: &View) -> Option<Vec<TopologySpreadConstraint>> {
    let settings = view.spec.topology_spread.clone().unwrap_or_default();
    if view.max_replicas() <= 1 || settings.enabled == Some(false) {
        return None;
    }
    let when = settings.when_unsatisfiable.unwrap_or(WhenUnsatisfiable::ScheduleAnyway);
    Some(vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: ZONE_KEY.into(),
        when_unsatisfiable: when.as_str().into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(view.selector_labels()),
            ..LabelSelector::default()
        }),
        // Spread each rollout's pods on their own, not together with the old ReplicaSet's.
        match_label_keys: Some(vec!["pod-template-hash".into()]),
        ..TopologySpreadConstraint::default()
    }])
}

#[cfg(test)]
mod tests;
