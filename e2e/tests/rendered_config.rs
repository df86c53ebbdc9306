//! The contract between the operator and the server: the config.yaml each sample renders (and one
//! spec that sets every field the CRD has) is read by the server's own parser
//! (`registry_server::config::Config::parse`) with no error and no warning. The server warns on
//! every key it does not know, so a key the operator writes wrong fails here.

use std::path::Path;

use e2e::samples;
use operator::crd::*;
use operator::resources::{CONFIG_DIR, configmap::CONFIG_KEY};
use registry_server::config::Config;
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
    for (file, manifest) in samples {
        let config = parse(&rendered(manifest), &file);
        assert_eq!(config.listen.port(), SERVER_PORT as u16, "{file}");
    }
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
            {"pattern": "@internal/*", "access": ["staff"], "publish": ["alice"], "unpublish": ["alice"]},
            {"pattern": "**", "access": ["$all"], "publish": ["$authenticated"], "proxy": ["upstream"],
             "quarantine": "7d", "block": ["left-pad", "event-stream@3.3.6", "@scope/pkg@>=2.0.0"]}
        ],
        "groups": {"staff": ["alice", "bob"]},
        "auth": {"secretName": "users", "maxUsers": 10},
        "maxBodySize": "50mb",
        "logLevel": "debug",
        "cache": {"packuments": "256Mi", "tarballs": "0.5Gi"},
        "web": {"enable": true, "title": "Team registry"},
        "ingress": {"host": "npm.example.com", "path": "/npm", "tls": {"secretName": "tls"}}
    });
    serde_json::from_value(json).unwrap()
}

#[test]
fn a_spec_with_every_field_reads_back_without_a_warning_and_as_meant() {
    let spec = everything();
    let manifest = serde_json::json!({
        "apiVersion": "npmregistry.dev/v1alpha1", "kind": "NpmRegistry",
        "metadata": {"name": "npm"}, "spec": spec,
    });
    let config = parse(&rendered(manifest), "every field");
    assert_eq!(
        config.max_body_size,
        50 << 20,
        "50mb as the server reads sizes (Verdaccio: binary)"
    );
    assert_eq!(config.packument_cache.max_size, 256 << 20);
    assert_eq!(config.tarball_cache.max_size, 512 << 20);
    assert_eq!(config.web.title, "Team registry");
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
