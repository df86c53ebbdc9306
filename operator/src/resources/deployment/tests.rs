use super::*;
use crate::crd::*;
use crate::fixtures::{registry, s3_spec, volume_spec};
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
    use registry_config::defaults::{MEMORY_OVERHEAD, PACKUMENT_CACHE_SIZE, TARBALL_CACHE_SIZE, WEB_CACHE_SIZE};
    let mib = |b: u64| format!("{}Mi", b.div_ceil(1 << 20));
    let r = resources_of(volume_spec());
    let default = mib(PACKUMENT_CACHE_SIZE + TARBALL_CACHE_SIZE + WEB_CACHE_SIZE + MEMORY_OVERHEAD);
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
    let r = resources_of(spec.clone());
    let sized = mib((1 << 30) + (256 << 20) + WEB_CACHE_SIZE + MEMORY_OVERHEAD);
    assert_eq!(r.limits.as_ref().unwrap()["memory"], Quantity(sized.clone()));
    assert_eq!(r.requests.as_ref().unwrap()["memory"], Quantity(sized));
    assert_eq!(r.requests.unwrap()["cpu"], Quantity("0.5".into()));

    // The web UI's page cache counts while the UI is on, at the spec's size.
    spec.web = Some(WebSpec {
        cache_size: Some(Quantity("100Mi".into())),
        ..WebSpec::default()
    });
    let sized = mib((1 << 30) + (256 << 20) + (100 << 20) + MEMORY_OVERHEAD);
    assert_eq!(resources_of(spec.clone()).limits.unwrap()["memory"], Quantity(sized));
    spec.web.as_mut().unwrap().enable = Some(false);
    let sized = mib((1 << 30) + (256 << 20) + MEMORY_OVERHEAD);
    assert_eq!(resources_of(spec).limits.unwrap()["memory"], Quantity(sized));
}

#[test]
fn the_signing_key_and_retired_keys_are_projected_read_only_into_the_config_volume() {
    let mut spec = volume_spec();
    spec.signing = Some(SigningSpec {
        key_secret: Some(SecretKeyRef {
            name: "npm-signing".into(),
            key: "key.pem".into(),
        }),
        retired_keys: vec![RetiredKey {
            secret_ref: SecretKeyRef {
                name: "npm-signing-2026".into(),
                key: "public.pem".into(),
            },
            expires: "2026-12-01T00:00:00Z".into(),
        }],
        ..SigningSpec::default()
    });
    let d = deployment(spec);
    let pod = pod(&d);
    let config = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "config")
        .unwrap();
    let projected = config.projected.as_ref().unwrap();
    assert_eq!(
        projected.default_mode,
        Some(0o440),
        "readable by the server's group only"
    );
    let secrets: Vec<(&str, &str, &str)> = projected
        .sources
        .iter()
        .flatten()
        .filter_map(|s| s.secret.as_ref())
        .flat_map(|s| {
            assert_eq!(s.optional, Some(false), "a missing Secret keeps the pod from starting");
            s.items
                .iter()
                .flatten()
                .map(|i| (s.name.as_str(), i.key.as_str(), i.path.as_str()))
        })
        .collect();
    assert_eq!(
        secrets,
        [
            ("npm-signing", "key.pem", "signing/key.pem"),
            ("npm-signing-2026", "public.pem", "signing/retired-0.pem")
        ]
    );
    let mount = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "config")
        .unwrap();
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        ("/etc/npm-registry", Some(true))
    );
    // Without signing, no Secret is projected.
    let d = deployment(volume_spec());
    let config = pod_volumes_secrets(&d);
    assert_eq!(config, 0);
}

fn pod_volumes_secrets(d: &Deployment) -> usize {
    pod(d)
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter(|s| s.secret.is_some())
        .count()
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

#[test]
fn pods_get_a_grace_period_past_the_drain_and_no_pre_stop_hook() {
    let d = deployment(s3_spec());
    let first = pod(&d);
    let (drain, timeout) = (
        registry_config::defaults::SHUTDOWN_DRAIN.as_secs() as i64,
        registry_config::defaults::SHUTDOWN_TIMEOUT.as_secs() as i64,
    );
    let grace = first.termination_grace_period_seconds.unwrap();
    assert!(grace > drain + timeout, "{grace}");
    // The server drains itself on SIGTERM: a preStop would only delay that.
    assert_eq!(first.containers[0].lifecycle, None);

    let mut spec = s3_spec();
    spec.server = Some(ServerSpec {
        shutdown_drain_seconds: Some(15),
        shutdown_timeout_seconds: Some(60),
        ..ServerSpec::default()
    });
    let d = deployment(spec);
    assert_eq!(pod(&d).termination_grace_period_seconds, Some(15 + 60 + 5));
}

#[test]
fn rollout_strategy_follows_the_storage_shape() {
    let strategy = |spec| {
        let d = deployment(spec);
        let s = d.spec.unwrap().strategy.unwrap();
        let rolling = s
            .rolling_update
            .map(|r| (r.max_surge.unwrap(), r.max_unavailable.unwrap()));
        (s.type_.unwrap(), rolling)
    };
    let no_downtime = Some((IntOrString::Int(1), IntOrString::Int(0)));
    let mut s3 = s3_spec();
    s3.replicas = 2;
    assert_eq!(strategy(s3), ("RollingUpdate".to_string(), no_downtime.clone()));
    let mut shared = volume_spec();
    shared.storage.volume.as_mut().unwrap().access_mode = AccessMode::ReadWriteMany;
    assert_eq!(strategy(shared), ("RollingUpdate".to_string(), no_downtime));
    assert_eq!(strategy(volume_spec()), ("Recreate".to_string(), None));
}
