use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;
use crate::crd::*;
use crate::fixtures::{registry, s3_spec, volume_spec};

fn render_spec(spec: NpmRegistrySpec) -> String {
    let registry = registry(spec);
    render(&View::new(&registry).unwrap()).unwrap()
}

fn parsed(spec: NpmRegistrySpec) -> ConfigFile {
    serde_yaml::from_str(&render_spec(spec)).unwrap()
}

#[test]
fn a_spec_that_sets_nothing_leaves_the_server_defaults_alone() {
    assert_eq!(
        render_spec(volume_spec()),
        "storage: /var/lib/npm-registry/storage\nlisten: 0.0.0.0:4873\npackages:\n  '**':\n    access:\n    - $all\n    publish:\n    - $authenticated\nlog:\n  format: json\n"
    );
}

#[test]
fn every_spec_setting_reaches_its_key() {
    let mut spec = volume_spec();
    spec.max_body_size = Some("50mb".into());
    spec.log_level = Some(LogLevel::Debug);
    spec.ingress = Some(IngressSpec {
        host: Some("npm.example.com".into()),
        tls: Some(IngressTls {
            secret_name: Some("npm-tls".into()),
            certificate_arn: None,
        }),
        ..IngressSpec::default()
    });
    spec.auth = Some(AuthSpec {
        secret_name: "users".into(),
        key: "htpasswd".into(),
        max_users: 100,
    });
    spec.uplinks = vec![UplinkSpec {
        name: "npmjs".into(),
        url: "https://upstream.example.com/".into(),
        maxage: Some("10m".into()),
        auth: Some(UplinkAuth {
            type_: UplinkAuthType::Bearer,
            secret_ref: SecretKeyRef {
                name: "tokens".into(),
                key: "npmjs".into(),
            },
        }),
        ..UplinkSpec::default()
    }];
    spec.packages = vec![
        PackageRule {
            pattern: "@internal/*".into(),
            access: vec!["staff".into()],
            publish: vec!["alice".into()],
            unpublish: vec!["alice".into()],
            ..PackageRule::default()
        },
        PackageRule {
            pattern: "**".into(),
            access: vec!["$all".into()],
            proxy: vec!["npmjs".into()],
            quarantine: Some("7d".into()),
            block: vec!["left-pad".into(), "event-stream@3.3.6".into()],
            ..PackageRule::default()
        },
    ];
    spec.groups = BTreeMap::from([("staff".into(), vec!["alice".into(), "bob".into()])]);
    spec.web = Some(WebSpec {
        enable: Some(false),
        title: Some("Team registry".into()),
        logo: Some("https://cdn.example.com/logo.png".into()),
        cache_size: Some(Quantity("64Mi".into())),
    });
    spec.server = Some(ServerSpec {
        keep_alive_timeout: Some("90s".into()),
        headers_timeout: Some("10s".into()),
        body_timeout: Some("1m".into()),
        max_connections: Some(500),
        max_body_bytes_in_flight: Some("128mb".into()),
        ..ServerSpec::default()
    });
    spec.repair = Some(RepairSpec {
        interval: Some("1h".into()),
        grace: Some("30m".into()),
    });
    spec.cache = Some(CacheSpec {
        packuments: Some(Quantity("256Mi".into())),
        tarballs: Some(Quantity("0".into())),
    });
    let file = parsed(spec);
    assert_eq!(file.max_body_size, Some(Value::from("50mb")));
    assert_eq!(file.log.unwrap().level.as_deref(), Some("debug"));
    assert_eq!(file.public_url.as_deref(), Some("https://npm.example.com/"));
    let htpasswd = file.auth.unwrap().htpasswd.unwrap();
    assert_eq!(htpasswd.file.as_deref(), Some("/etc/npm-registry/auth/htpasswd"));
    assert_eq!(htpasswd.max_users, Some(100));
    let uplink = &file.uplinks.unwrap()["npmjs"];
    assert_eq!(uplink.maxage, Some(Value::from("10m")));
    assert_eq!(uplink.timeout, None, "left to the server's default");
    let auth = uplink.auth.clone().unwrap();
    assert_eq!(auth.kind.as_deref(), Some("bearer"));
    assert_eq!(auth.token_env, Some(Value::from("UPLINK_NPMJS_TOKEN")));
    let packages = file.packages.unwrap();
    assert_eq!(packages.keys().collect::<Vec<_>>(), ["@internal/*", "**"], "spec order");
    let all = &packages["**"];
    assert_eq!(all.quarantine, Some(Value::from("7d")));
    assert_eq!(all.block.clone().unwrap(), ["left-pad", "event-stream@3.3.6"]);
    assert_eq!(all.publish, None);
    assert_eq!(
        file.groups.unwrap()["staff"],
        StringList::Many(vec!["alice".into(), "bob".into()])
    );
    let web = file.web.unwrap();
    assert_eq!((web.enable, web.title.as_deref()), (Some(false), Some("Team registry")));
    assert_eq!(web.logo.as_deref(), Some("https://cdn.example.com/logo.png"));
    assert_eq!(web.cache_size, Some(Value::from(64u64 << 20)));
    let server = file.server.unwrap();
    assert_eq!(server.keep_alive_timeout, Some(Value::from("90s")));
    assert_eq!(server.headers_timeout, Some(Value::from("10s")));
    assert_eq!(server.body_timeout, Some(Value::from("1m")));
    assert_eq!(server.max_connections, Some(Value::from(500)));
    assert_eq!(server.max_body_bytes_in_flight, Some(Value::from("128mb")));
    let repair = file.repair.unwrap();
    assert_eq!(
        (repair.interval, repair.grace),
        (Some(Value::from("1h")), Some(Value::from("30m")))
    );
    assert_eq!(file.packument_cache.unwrap().max_size, Some(Value::from(256u64 << 20)));
    assert_eq!(file.tarball_cache.unwrap().max_size, Some(Value::from(0u64)));
}

fn signing_spec() -> SigningSpec {
    SigningSpec {
        enabled: Some(true),
        key_secret: Some(SecretKeyRef {
            name: "npm-signing".into(),
            key: "key.pem".into(),
        }),
        retired_keys: vec![RetiredKey {
            secret_ref: SecretKeyRef {
                name: "npm-signing-old".into(),
                key: "key.pem".into(),
            },
            expires: "2026-06-01T00:00:00Z".into(),
        }],
        ..SigningSpec::default()
    }
}

#[test]
fn the_signing_secret_is_the_key_file_where_the_pod_projects_it() {
    let mut spec = volume_spec();
    spec.signing = Some(signing_spec());
    let registry = registry(spec.clone());
    let view = View::new(&registry).unwrap();
    let signing = config(&view).unwrap().signing.unwrap();
    let (file, secret) = view.signing_key().unwrap();
    assert_eq!(secret.name, "npm-signing");
    assert_eq!(signing.key_file, Some(format!("{CONFIG_DIR}/{file}")));
    assert_eq!(signing.key_file.as_deref(), Some("/etc/npm-registry/signing/key.pem"));
    assert_eq!(signing.enabled, Some(true));
    assert_eq!(signing.rotate_before, None);
    let retired = signing.retired_keys.unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(
        retired[0].key_file.as_deref(),
        Some("/etc/npm-registry/signing/retired-0.pem")
    );
    assert_eq!(retired[0].expires.as_deref(), Some("2026-06-01T00:00:00Z"));

    // No Secret: the server keeps a key in the storage and rotates it at rotateBefore.
    spec.signing = Some(SigningSpec {
        rotate_before: Some("2027-01-01T00:00:00Z".into()),
        ..SigningSpec::default()
    });
    let signing = parsed(spec.clone()).signing.unwrap();
    assert_eq!(signing.key_file, None);
    assert_eq!(signing.rotate_before.as_deref(), Some("2027-01-01T00:00:00Z"));
    assert_eq!(signing.retired_keys, None);
    spec.signing = Some(SigningSpec {
        enabled: Some(false),
        ..SigningSpec::default()
    });
    assert_eq!(parsed(spec.clone()).signing.unwrap().enabled, Some(false));
    spec.signing = None;
    assert!(!render_spec(spec).contains("signing"));
}

#[test]
fn trusted_publishers_reach_their_rule() {
    let mut spec = volume_spec();
    spec.ingress = Some(IngressSpec {
        host: Some("npm.example.com".into()),
        ..IngressSpec::default()
    });
    spec.packages = vec![
        PackageRule {
            pattern: "@internal/*".into(),
            access: vec!["$authenticated".into()],
            publish: vec!["$authenticated".into()],
            trusted_publishers: vec![TrustedPublisher {
                issuer: "https://token.ci.example.com".into(),
                claims: BTreeMap::from([
                    ("repository".into(), ClaimValue("acme/widgets".into())),
                    ("ref".into(), ClaimValue("refs/tags/*".into())),
                ]),
            }],
            ..PackageRule::default()
        },
        PackageRule {
            pattern: "**".into(),
            access: vec!["$all".into()],
            ..PackageRule::default()
        },
    ];
    let packages = parsed(spec).packages.unwrap();
    let publishers = packages["@internal/*"].trusted_publishers.clone().unwrap();
    assert_eq!(publishers.len(), 1);
    assert_eq!(publishers[0].issuer.as_deref(), Some("https://token.ci.example.com"));
    assert_eq!(
        publishers[0].claims.clone().unwrap(),
        BTreeMap::from([
            ("ref".to_string(), Value::from("refs/tags/*")),
            ("repository".to_string(), Value::from("acme/widgets")),
        ])
    );
    assert_eq!(packages["**"].trusted_publishers, None);
}

#[test]
fn forwarded_headers_are_believed_from_private_ranges_only_behind_an_ingress() {
    let trust = |spec: NpmRegistrySpec| parsed(spec).server.and_then(|s| s.trust_proxy);
    let mut spec = volume_spec();
    assert_eq!(trust(spec.clone()), None, "no Ingress: the TCP peer is the client");
    assert!(!render_spec(spec.clone()).contains("server:"));
    spec.ingress = Some(IngressSpec {
        class_name: Some("alb".into()),
        ..IngressSpec::default()
    });
    assert_eq!(
        trust(spec.clone()),
        Some(Value::from(vec!["uniquelocal"])),
        "the ALB connects from the VPC's private addresses"
    );
    spec.server = Some(ServerSpec {
        trust_proxy: Some(vec!["10.1.0.0/16".into()]),
        ..ServerSpec::default()
    });
    assert_eq!(
        trust(spec.clone()),
        Some(Value::from(vec!["10.1.0.0/16"])),
        "the user's list wins"
    );
    spec.server = Some(ServerSpec {
        trust_proxy: Some(Vec::new()),
        ..ServerSpec::default()
    });
    assert_eq!(
        trust(spec.clone()),
        None,
        "an empty list trusts none, even behind an Ingress"
    );
    spec.ingress = None;
    spec.server = Some(ServerSpec {
        trust_proxy: Some(vec!["loopback".into()]),
        ..ServerSpec::default()
    });
    assert_eq!(trust(spec), Some(Value::from(vec!["loopback"])));
}

#[test]
fn keep_alive_outlasts_a_raised_alb_idle_timeout_unless_the_spec_sets_it() {
    let keep_alive = |spec: NpmRegistrySpec| parsed(spec).server.and_then(|s| s.keep_alive_timeout);
    let mut spec = volume_spec();
    let idle = |seconds: u64| {
        BTreeMap::from([(
            "alb.ingress.kubernetes.io/load-balancer-attributes".to_string(),
            format!("idle_timeout.timeout_seconds={seconds}"),
        )])
    };
    spec.ingress = Some(IngressSpec {
        class_name: Some("alb".into()),
        annotations: idle(300),
        ..IngressSpec::default()
    });
    assert_eq!(keep_alive(spec.clone()), Some(Value::from("315s")));
    // The server's default already outlasts an ALB at 60 s or less: left to it.
    spec.ingress.as_mut().unwrap().annotations = idle(30);
    assert_eq!(keep_alive(spec.clone()), None);
    spec.ingress.as_mut().unwrap().annotations = idle(300);
    spec.server = Some(ServerSpec {
        keep_alive_timeout: Some("400s".into()),
        ..ServerSpec::default()
    });
    assert_eq!(keep_alive(spec), Some(Value::from("400s")), "the spec's wins");
}

#[test]
fn s3_config_has_a_store_and_no_storage_path_nor_credentials() {
    let mut spec = s3_spec();
    spec.storage.s3 = Some(S3Storage {
        bucket: "b".into(),
        region: Some("eu-west-1".into()),
        key_prefix: Some("npm/".into()),
        endpoint: Some("https://s3.example.com".into()),
        force_path_style: Some(true),
        kms_key_id: Some("arn:aws:kms:eu-west-1:123456789012:key/k".into()),
        ..S3Storage::default()
    });
    let yaml = render_spec(spec);
    assert!(!yaml.contains("storage: /var"), "{yaml}");
    assert!(yaml.contains(
        "store:\n  aws-s3-storage:\n    bucket: b\n    keyPrefix: npm/\n    region: eu-west-1\n    endpoint: https://s3.example.com\n    s3ForcePathStyle: true\n    sseKmsKeyId: arn:aws:kms:eu-west-1:123456789012:key/k\n"
    ), "{yaml}");
    assert!(
        !yaml.to_lowercase().contains("secret") && !yaml.contains("accessKey"),
        "{yaml}"
    );
}

#[test]
fn public_url_is_http_without_tls_and_https_with_acm_and_absent_without_host() {
    let mut spec = volume_spec();
    assert!(!render_spec(spec.clone()).contains("public_url"));
    spec.ingress = Some(IngressSpec {
        host: Some("npm.example.com".into()),
        ..IngressSpec::default()
    });
    assert!(render_spec(spec.clone()).contains("public_url: http://npm.example.com/\n"));
    spec.ingress.as_mut().unwrap().tls = Some(IngressTls {
        secret_name: None,
        certificate_arn: Some("arn:aws:acm:eu-west-1:1:certificate/c".into()),
    });
    spec.ingress.as_mut().unwrap().path = Some("/npm".into());
    let yaml = render_spec(spec.clone());
    assert!(
        yaml.contains("public_url: https://npm.example.com/\nurl_prefix: /npm/\n"),
        "{yaml}"
    );
    let registry = registry(spec);
    assert_eq!(
        client_url(&View::new(&registry).unwrap()),
        "https://npm.example.com/npm/"
    );
}

#[test]
fn without_an_ingress_host_the_url_is_the_service_in_the_cluster() {
    let registry = registry(volume_spec());
    assert_eq!(client_url(&View::new(&registry).unwrap()), "http://npm.team.svc:4873/");
}

#[test]
fn no_package_rules_default_to_open_read_proxied_to_every_uplink() {
    let mut spec = volume_spec();
    spec.uplinks = vec![
        UplinkSpec {
            name: "b".into(),
            url: "https://b.example.com/".into(),
            ..UplinkSpec::default()
        },
        UplinkSpec {
            name: "a".into(),
            url: "https://a.example.com/".into(),
            ..UplinkSpec::default()
        },
    ];
    let file = parsed(spec);
    let all = &file.packages.unwrap()["**"];
    assert_eq!(all.proxy, Some(StringList::Many(vec!["b".into(), "a".into()])));
    assert_eq!(all.access, Some(StringList::Many(vec!["$all".into()])));
    // Uplinks keep spec order too.
    assert_eq!(file.uplinks.unwrap().keys().collect::<Vec<_>>(), ["b", "a"]);
}

#[test]
fn config_map_carries_the_config_and_its_checksum_changes_with_it() {
    let registry = registry(volume_spec());
    let view = View::new(&registry).unwrap();
    let cm = build(&view).unwrap();
    assert_eq!(cm.metadata.name.as_deref(), Some("npm-config"));
    assert!(cm.data.as_ref().unwrap()[CONFIG_KEY].contains("listen: 0.0.0.0:4873"));
    let mut other = volume_spec();
    other.log_level = Some(LogLevel::Debug);
    let other_registry = crate::fixtures::registry(other);
    let other_cm = build(&View::new(&other_registry).unwrap()).unwrap();
    assert_ne!(checksum(&cm), checksum(&other_cm));
    assert_eq!(checksum(&cm), checksum(&build(&view).unwrap()));
}
