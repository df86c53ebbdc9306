//! The server Deployment: non-root, read-only root filesystem, probes on the health endpoints,
//! checksums that roll the pods, and zone spread when several pods run.

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
mod tests {
    use super::*;
    use crate::crd::*;
    use crate::resources::testing::{registry, s3_spec, volume_spec};
    use crate::resources::{build as build_all, serviceaccount::IRSA_ANNOTATION};

    fn deployment(spec: NpmRegistrySpec) -> Deployment {
        build_all(&registry(spec)).unwrap().deployment
    }

    fn pod(d: &Deployment) -> &PodSpec {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    fn template_annotations(d: &Deployment) -> &BTreeMap<String, String> {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()
    }

    #[test]
    fn runs_the_server_command_as_non_root_with_a_read_only_root() {
        let d = deployment(volume_spec());
        let pod = pod(&d);
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some(DEFAULT_IMAGE));
        assert_eq!(c.command, Some(vec!["/usr/local/bin/npm-registry-server".to_string()]));
        assert_eq!(
            c.args,
            Some(vec![
                "--config".to_string(),
                "/etc/npm-registry/config.yaml".to_string()
            ])
        );
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 4873);
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!((psc.run_as_non_root, psc.run_as_user), (Some(true), Some(10001)));
        let mounts: Vec<(&str, &str)> = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(
            mounts,
            [
                ("config", "/etc/npm-registry"),
                ("tmp", "/tmp"),
                ("storage", "/var/lib/npm-registry/storage")
            ]
        );
        assert_eq!(pod.service_account_name.as_deref(), Some("npm"));
    }

    fn resources_of(spec: NpmRegistrySpec) -> ResourceRequirements {
        pod(&deployment(spec)).containers[0].resources.clone().unwrap()
    }

    #[test]
    fn memory_is_sized_from_the_caches_when_the_spec_sets_none() {
        use registry_config::defaults::{MEMORY_OVERHEAD, PACKUMENT_CACHE_SIZE, TARBALL_CACHE_SIZE};
        let mib = |b: u64| format!("{}Mi", b.div_ceil(1 << 20));
        let r = resources_of(volume_spec());
        let default = mib(PACKUMENT_CACHE_SIZE + TARBALL_CACHE_SIZE + MEMORY_OVERHEAD);
        assert_eq!(r.requests.as_ref().unwrap()["memory"], Quantity(default.clone()));
        assert_eq!(r.limits.as_ref().unwrap()["memory"], Quantity(default));
        assert_eq!(r.requests.unwrap()["cpu"], Quantity("100m".into()));

        let mut spec = volume_spec();
        spec.cache = Some(CacheSpec {
            packuments: Some(Quantity("1Gi".into())),
            tarballs: Some(Quantity("256Mi".into())),
        });
        // CPU only: memory is still derived, the CPU kept.
        spec.resources = Some(ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".to_string(), Quantity("0.5".into()))])),
            ..Default::default()
        });
        let r = resources_of(spec);
        let sized = mib((1 << 30) + (256 << 20) + MEMORY_OVERHEAD);
        assert_eq!(r.limits.as_ref().unwrap()["memory"], Quantity(sized.clone()));
        assert_eq!(r.requests.as_ref().unwrap()["memory"], Quantity(sized));
        assert_eq!(r.requests.unwrap()["cpu"], Quantity("0.5".into()));
    }

    #[test]
    fn memory_the_spec_sets_is_kept_as_is() {
        let mut spec = volume_spec();
        let set = ResourceRequirements {
            limits: Some(BTreeMap::from([("memory".to_string(), Quantity("2Gi".into()))])),
            ..Default::default()
        };
        spec.resources = Some(set.clone());
        assert_eq!(resources_of(spec), set);
    }

    #[test]
    fn a_cache_size_that_is_no_quantity_is_an_error() {
        let mut spec = volume_spec();
        spec.cache = Some(CacheSpec {
            packuments: Some(Quantity("lots".into())),
            tarballs: None,
        });
        assert!(matches!(
            build_all(&registry(spec)),
            Err(crate::resources::BuildError::Quantity(_))
        ));
    }

    #[test]
    fn probes_use_the_health_endpoints() {
        let d = deployment(s3_spec());
        let c = &pod(&d).containers[0];
        let path = |p: &Option<Probe>| p.as_ref().unwrap().http_get.as_ref().unwrap().path.clone().unwrap();
        assert_eq!(path(&c.liveness_probe), "/-/ping");
        assert_eq!(path(&c.readiness_probe), "/-/ready");
        assert_eq!(path(&c.startup_probe), "/-/ping");
    }

    #[test]
    fn read_write_once_volume_gets_one_replica_and_recreate() {
        let d = deployment(volume_spec());
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.strategy.as_ref().unwrap().type_.as_deref(), Some("Recreate"));
        assert_eq!(pod(&d).topology_spread_constraints, None);
        let claim = pod(&d).volumes.as_ref().unwrap()[2]
            .persistent_volume_claim
            .clone()
            .unwrap();
        assert_eq!(claim.claim_name, "npm-storage");
    }

    #[test]
    fn efs_read_write_many_scales_with_rolling_updates_and_zone_spread() {
        let mut spec = volume_spec();
        spec.storage.volume = Some(VolumeStorage {
            access_mode: AccessMode::ReadWriteMany,
            storage_class_name: Some("efs-sc".into()),
            ..VolumeStorage::default()
        });
        spec.replicas = 3;
        let d = deployment(spec);
        let s = d.spec.as_ref().unwrap();
        assert_eq!(s.replicas, Some(3));
        assert_eq!(s.strategy.as_ref().unwrap().type_.as_deref(), Some("RollingUpdate"));
        let spread = &pod(&d).topology_spread_constraints.as_ref().unwrap()[0];
        assert_eq!(spread.topology_key, "topology.kubernetes.io/zone");
        assert_eq!(spread.when_unsatisfiable, "ScheduleAnyway");
    }

    #[test]
    fn s3_has_no_storage_volume_and_hpa_leaves_replicas_unset() {
        let mut spec = s3_spec();
        spec.autoscaling = Some(AutoscalingSpec {
            min_replicas: 2,
            max_replicas: 6,
            ..Default::default()
        });
        let d = deployment(spec);
        assert_eq!(d.spec.as_ref().unwrap().replicas, None);
        assert!(pod(&d).volumes.as_ref().unwrap().iter().all(|v| v.name != "storage"));
    }

    #[test]
    fn existing_claim_is_mounted_as_is() {
        let mut spec = volume_spec();
        spec.storage.volume = Some(VolumeStorage {
            existing_claim: Some("legacy".into()),
            ..VolumeStorage::default()
        });
        let d = deployment(spec);
        let claim = pod(&d).volumes.as_ref().unwrap()[2]
            .persistent_volume_claim
            .clone()
            .unwrap();
        assert_eq!(claim.claim_name, "legacy");
    }

    #[test]
    fn config_change_changes_the_pod_template_checksum() {
        let a = deployment(volume_spec());
        let mut spec = volume_spec();
        spec.max_body_size = Some("1gb".into());
        let b = deployment(spec);
        assert_ne!(
            template_annotations(&a)[CONFIG_CHECKSUM_ANNOTATION],
            template_annotations(&b)[CONFIG_CHECKSUM_ANNOTATION]
        );
    }

    #[test]
    fn service_account_annotations_are_part_of_the_pod_template() {
        let a = deployment(s3_spec());
        let mut spec = s3_spec();
        spec.service_account = Some(ServiceAccountSpec {
            annotations: BTreeMap::from([(IRSA_ANNOTATION.into(), "arn:aws:iam::123456789012:role/r".into())]),
            ..Default::default()
        });
        let b = deployment(spec);
        let key = SERVICE_ACCOUNT_CHECKSUM_ANNOTATION;
        assert_ne!(template_annotations(&a)[key], template_annotations(&b)[key]);
        assert_ne!(a.spec.unwrap().template, b.spec.unwrap().template);
    }

    #[test]
    fn auth_secret_and_uplink_tokens_are_wired() {
        let mut spec = volume_spec();
        spec.auth = Some(AuthSpec {
            secret_name: "users".into(),
            key: "file".into(),
            max_users: -1,
        });
        spec.uplinks = vec![UplinkSpec {
            name: "npmjs".into(),
            url: "https://upstream.example.com/".into(),
            auth: Some(UplinkAuth {
                type_: UplinkAuthType::Bearer,
                secret_ref: SecretKeyRef {
                    name: "tokens".into(),
                    key: "npmjs".into(),
                },
            }),
            ..Default::default()
        }];
        let d = deployment(spec);
        let pod = pod(&d);
        let env = &pod.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.name, "UPLINK_NPMJS_TOKEN");
        let secret = env.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!((secret.name.as_str(), secret.key.as_str()), ("tokens", "npmjs"));
        let sources = pod.volumes.as_ref().unwrap()[0]
            .projected
            .as_ref()
            .unwrap()
            .sources
            .as_ref()
            .unwrap();
        let htpasswd = sources[1].secret.as_ref().unwrap();
        assert_eq!(htpasswd.name, "users");
        assert_eq!(htpasswd.items.as_ref().unwrap()[0].path, "auth/htpasswd");
    }

    #[test]
    fn scheduling_fields_pass_through() {
        let mut spec = s3_spec();
        spec.image = Some("registry.example.com/npm-registry-server:dev".into());
        spec.image_pull_policy = Some(PullPolicy::Always);
        spec.node_selector = BTreeMap::from([("kubernetes.io/arch".into(), "arm64".into())]);
        spec.pod_annotations = BTreeMap::from([("team".into(), "web".into())]);
        spec.topology_spread = Some(TopologySpreadSpec {
            enabled: Some(true),
            when_unsatisfiable: Some(WhenUnsatisfiable::DoNotSchedule),
        });
        let d = deployment(spec);
        let pod = pod(&d);
        assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(pod.node_selector.as_ref().unwrap()["kubernetes.io/arch"], "arm64");
        assert_eq!(
            pod.topology_spread_constraints.as_ref().unwrap()[0].when_unsatisfiable,
            "DoNotSchedule"
        );
        assert_eq!(template_annotations(&d)["team"], "web");
    }
}
