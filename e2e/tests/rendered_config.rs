//! The contract between the operator and the server: the config.yaml each sample renders (and one
//! spec that sets every field the CRD has) is read by the server's own parser
//! (`registry_server::config::Config::parse`) with no error and no warning. The server warns on
//! every key it does not know, so a key the operator writes wrong fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::samples;
use operator::crd::*;
use operator::resources::{CONFIG_DIR, configmap::CONFIG_KEY};
use registry_server::config::{Config, KeySource};
use serde_json::Value;

/// The rendered config.yaml of a manifest.
fn rendered(mut manifest: Value) -> String {
    manifest["metadata"]["namespace"] = "team".into();
    manifest["metadata"]["uid"] = "5a3c1d8e-0000-4000-8000-000000000001".into();
    let registry: NpmRegistry = serde_json::from_value(manifest).expect("an NpmRegistry");
    let desired = operator::resources::build(&registry).expect("builds");
    desired.config_map.data.unwrap()[CONFIG_KEY].clone()
}

/// Parses as the server does at startup (relative paths from the config's folder).
fn parse(text: &str, what: &str) -> Config {
    let loaded = Config::parse(text, Path::new(CONFIG_DIR)).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    assert!(
        loaded.warnings.is_empty(),
        "{what}: the server warns: {:?}\n{text}",
        loaded.warnings
    );
    loaded.config
}

#[test]
fn every_sample_config_reads_back_without_a_warning() {
    let samples = samples();
    assert!(!samples.is_empty());
    let mut signed = 0;
    for (file, manifest) in samples {
        let config = parse(&rendered(manifest.clone()), &file);
        assert_eq!(config.listen.port(), SERVER_PORT as u16, "{file}");
        // Behind an ALB whose idle timeout the sample raises, idle connections outlast it.
        if let Some(idle) =
            manifest["spec"]["ingress"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"]
                .as_str()
                .and_then(|a| a.split_once("idle_timeout.timeout_seconds="))
                .and_then(|(_, n)| n.split(',').next()?.parse::<u64>().ok())
        {
            assert!(
                config.connections.keep_alive_timeout > Duration::from_secs(idle),
                "{file}: keepAliveTimeout {:?} does not outlast the ALB's {idle}s",
                config.connections.keep_alive_timeout
            );
        }
        // A signing key Secret is the key file the server reads, where the pod mounts it.
        if let KeySource::File(key) = &config.signing.key {
            let secret = &manifest["spec"]["signing"]["keySecret"];
            let files = projected_files(manifest.clone());
            assert_eq!(
                files.get(key),
                Some(&(
                    secret["name"].as_str().unwrap().into(),
                    secret["key"].as_str().unwrap().into()
                )),
                "{file}: {files:?}"
            );
            signed += 1;
        }
    }
    assert!(signed > 0, "a sample uses a signing key Secret");
}

/// A spec that sets every field that reaches the config.
fn everything() -> NpmRegistrySpec {
    let json = serde_json::json!({
        "replicas": 2,
        "storage": {"s3": {"bucket": "npm-bucket", "region": "eu-west-1", "keyPrefix": "npm/",
            "endpoint": "https://s3.example.com", "forcePathStyle": true,
            "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k", "tarballRedirect": "10m",
            "connectTimeout": "2s", "requestTimeout": "20s", "maxAttempts": 5}},
        "uplinks": [{"name": "upstream", "url": "https://upstream.example.com/", "timeout": "10s",
            "maxage": "5m", "maxFails": 3, "failTimeout": "1m", "cache": false,
            "auth": {"type": "basic", "secretRef": {"name": "tokens", "key": "upstream"}}}],
        "packages": [
            {"pattern": "@internal/*", "access": ["staff"], "publish": ["alice"], "unpublish": ["alice"],
             "trustedPublishers": [{"issuer": "https://token.ci.example.com",
                "claims": {"repository": "acme/widgets", "ref": "refs/tags/v*"}}]},
            {"pattern": "**", "access": ["$all"], "publish": ["$authenticated"], "proxy": ["upstream"],
             "quarantine": "7d", "block": ["left-pad", "event-stream@3.3.6", "@scope/pkg@>=2.0.0"]}
        ],
        "groups": {"staff": ["alice", "bob"]},
        "auth": {"secretName": "users", "maxUsers": 10},
        "maxBodySize": "50mb",
        "logLevel": "debug",
        "cache": {"packuments": "256Mi", "tarballs": "0.5Gi"},
        "web": {"enable": true, "title": "Team registry", "logo": "https://cdn.example.com/logo.png",
            "cacheSize": "48Mi"},
        "ingress": {"host": "npm.example.com", "path": "/npm", "tls": {"secretName": "tls"}},
        "signing": {"enabled": true, "keySecret": {"name": "npm-signing", "key": "key.pem"},
            "retiredKeys": [{"secretRef": {"name": "npm-signing-2026", "key": "public.pem"},
                "expires": "2026-06-01T00:00:00Z"}]},
        "server": {"trustProxy": ["10.0.0.0/16", "loopback"], "keepAliveTimeout": "310s",
            "headersTimeout": "15s", "bodyTimeout": "45s", "maxConnections": 4096,
            "maxBodyBytesInFlight": "256mb"},
        "repair": {"interval": "1h", "grace": "20m"}
    });
    serde_json::from_value(json).unwrap()
}

fn manifest_of(spec: NpmRegistrySpec) -> Value {
    serde_json::json!({
        "apiVersion": "npmregistry.dev/v1alpha1", "kind": "NpmRegistry",
        "metadata": {"name": "npm"}, "spec": spec,
    })
}

/// Each Secret file the pod's config volume holds (its path in the container) → the Secret and key.
fn projected_files(mut manifest: Value) -> BTreeMap<PathBuf, (String, String)> {
    manifest["metadata"]["namespace"] = "team".into();
    manifest["metadata"]["uid"] = "5a3c1d8e-0000-4000-8000-000000000001".into();
    let registry: NpmRegistry = serde_json::from_value(manifest).unwrap();
    let deployment = operator::resources::build(&registry).unwrap().deployment;
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let mount = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "config")
        .cloned()
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let volume = pod.volumes.iter().flatten().find(|v| v.name == "config").unwrap();
    let mut files = BTreeMap::new();
    for source in volume.projected.as_ref().unwrap().sources.iter().flatten() {
        let Some(secret) = &source.secret else { continue };
        for item in secret.items.iter().flatten() {
            files.insert(
                Path::new(&mount.mount_path).join(&item.path),
                (secret.name.clone(), item.key.clone()),
            );
        }
    }
    files
}

#[test]
fn a_spec_with_every_field_reads_back_without_a_warning_and_as_meant() {
    let spec = everything();
    let config = parse(&rendered(manifest_of(spec.clone())), "every field");
    assert_eq!(
        config.max_body_size,
        50 << 20,
        "50mb as the server reads sizes (Verdaccio: binary)"
    );
    assert_eq!(config.packument_cache.max_size, 256 << 20);
    assert_eq!(config.tarball_cache.max_size, 512 << 20);
    assert_eq!(config.web.title, "Team registry");
    assert_eq!(
        config.web.logo,
        Some(registry_server::config::Logo::Url(
            "https://cdn.example.com/logo.png".into()
        ))
    );
    assert_eq!(config.web.cache_size, 48 << 20);
    // The signing Secrets, where the Deployment projects them into the config volume.
    let files = projected_files(manifest_of(spec.clone()));
    let signing = &config.signing;
    assert!(signing.enabled);
    let KeySource::File(key) = &signing.key else {
        panic!("the key Secret is the key file: {:?}", signing.key)
    };
    assert_eq!(
        files.get(key),
        Some(&("npm-signing".into(), "key.pem".into())),
        "{files:?}"
    );
    assert_eq!(signing.retired.len(), 1);
    assert_eq!(
        files.get(&signing.retired[0].file),
        Some(&("npm-signing-2026".into(), "public.pem".into()))
    );
    assert_eq!(signing.retired[0].expires.to_rfc3339(), "2026-06-01T00:00:00+00:00");
    let internal = config.packages.iter().find(|p| p.pattern == "@internal/*").unwrap();
    assert_eq!(internal.trusted_publishers.len(), 1);
    let publisher = &internal.trusted_publishers[0];
    assert_eq!(publisher.issuer, "https://token.ci.example.com");
    assert_eq!(publisher.claims["repository"], "acme/widgets");
    assert_eq!(publisher.claims["ref"], "refs/tags/v*");
    let c = &config.connections;
    assert_eq!(
        (c.keep_alive_timeout, c.headers_timeout, c.body_timeout),
        (
            Duration::from_secs(310),
            Duration::from_secs(15),
            Duration::from_secs(45)
        )
    );
    assert_eq!((c.max_connections, c.max_body_bytes_in_flight), (4096, 256 << 20));
    let proxies = &config.trusted_proxies;
    assert!(proxies.contains("10.0.3.4".parse().unwrap()) && proxies.contains("127.0.0.1".parse().unwrap()));
    assert!(
        !proxies.contains("10.1.0.1".parse().unwrap()),
        "the user's list, not the Ingress default"
    );
    assert_eq!(
        (config.repair.interval, config.repair.grace),
        (Duration::from_secs(3600), Duration::from_secs(1200))
    );
    assert_eq!(config.groups["staff"], ["alice", "bob"]);
    assert_eq!(config.public_url.as_deref(), Some("https://npm.example.com/"));
    assert_eq!(config.url_prefix, "/npm/");
    let uplink = &config.uplinks["upstream"];
    assert_eq!((uplink.max_fails, uplink.cache), (3, false));
    assert_eq!(uplink.auth.as_ref().unwrap().token_env, "UPLINK_UPSTREAM_TOKEN");
    let all = config.packages.iter().find(|p| p.pattern == "**").unwrap();
    assert_eq!(all.filter.min_age, Some(std::time::Duration::from_secs(7 * 86400)));
    assert_eq!(all.filter.block.len(), 3);
    assert!(config.htpasswd.is_some());
    assert_eq!(config.max_users, Some(10));
    let registry_server::config::Store::S3(s3) = config.store else {
        panic!("S3 store")
    };
    assert_eq!(
        (s3.bucket.as_str(), s3.key_prefix.as_str(), s3.force_path_style),
        ("npm-bucket", "npm/", true)
    );
    assert_eq!(
        s3.sse_kms_key_id.as_deref(),
        Some("arn:aws:kms:eu-west-1:123456789012:key/k")
    );
    assert_eq!(s3.tarball_redirect, Some(std::time::Duration::from_secs(600)));
    assert_eq!(
        (
            s3.connect_timeout.as_secs(),
            s3.request_timeout.as_secs(),
            s3.max_attempts
        ),
        (2, 20, 5)
    );
}

#[test]
fn keys_the_spec_leaves_out_are_left_to_the_server_defaults() {
    let manifest = serde_json::json!({
        "apiVersion": "npmregistry.dev/v1alpha1", "kind": "NpmRegistry",
        "metadata": {"name": "npm"}, "spec": {"storage": {"volume": {}}},
    });
    let text = rendered(manifest);
    for key in [
        "max_body_size",
        "packument_cache",
        "tarball_cache",
        "web",
        "level",
        "timeout",
        "signing",
        "server",
        "trustProxy",
        "repair",
    ] {
        assert!(
            !text.contains(key),
            "{key} is written though the spec leaves it out:\n{text}"
        );
    }
    let config = parse(&text, "minimal");
    assert_eq!(config.max_body_size, registry_config::defaults::MAX_BODY_SIZE);
    assert_eq!(
        config.packument_cache.max_size,
        registry_config::defaults::PACKUMENT_CACHE_SIZE
    );
}

/// Behind an Ingress, forwarded headers are believed from the private ranges the Ingress
/// controller or ALB connects from, and from nowhere else; without one, from nobody.
#[test]
fn behind_an_ingress_the_private_ranges_are_trusted_proxies() {
    let mut spec: NpmRegistrySpec = serde_json::from_value(serde_json::json!({"storage": {"volume": {}}})).unwrap();
    let config = parse(&rendered(manifest_of(spec.clone())), "no ingress");
    assert!(config.trusted_proxies.is_empty());
    spec.ingress = Some(IngressSpec {
        class_name: Some("alb".into()),
        host: Some("npm.example.com".into()),
        ..IngressSpec::default()
    });
    let config = parse(&rendered(manifest_of(spec.clone())), "behind an ALB");
    for vpc in ["10.0.12.7", "172.20.1.1", "192.168.3.4"] {
        assert!(config.trusted_proxies.contains(vpc.parse().unwrap()), "{vpc}");
    }
    for public in ["203.0.113.9", "127.0.0.1"] {
        assert!(!config.trusted_proxies.contains(public.parse().unwrap()), "{public}");
    }
    spec.server = Some(ServerSpec {
        trust_proxy: Some(Vec::new()),
        ..ServerSpec::default()
    });
    let config = parse(&rendered(manifest_of(spec)), "trusting none");
    assert!(config.trusted_proxies.is_empty());
}

/// The check above can fail: the server refuses a near miss of a key it knows, and warns on any
/// other key it does not know.
#[test]
fn the_server_refuses_or_warns_on_a_key_it_does_not_know() {
    let text = rendered(serde_json::json!({
        "apiVersion": "npmregistry.dev/v1alpha1", "kind": "NpmRegistry",
        "metadata": {"name": "npm"}, "spec": {"storage": {"s3": {"bucket": "b"}}},
    }));
    let refused = |text: &str| Config::parse(text, Path::new(CONFIG_DIR)).unwrap_err().to_string();
    let error = refused(&text.replace("packages:", "package:"));
    assert!(error.contains("`packages`"), "{error}");
    let error = refused(&format!("{text}packument_cache:\n  max_sise: 1\n"));
    assert!(error.contains("max_size"), "{error}");
    let error = refused(&text.replace("bucket:", "bukket: x\n    bucket:"));
    assert!(error.contains("bucket"), "{error}");
    let unknown = format!("{text}zz_not_a_setting: 1\n");
    let warnings = Config::parse(&unknown, Path::new(CONFIG_DIR)).unwrap().warnings;
    assert!(warnings.iter().any(|w| w.contains("zz_not_a_setting")), "{warnings:?}");
}
