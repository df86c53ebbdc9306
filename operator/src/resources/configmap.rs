//! The server's config.yaml (Verdaccio's format plus our keys) in a ConfigMap.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_yaml::{Mapping, Value};

use super::{HTPASSWD_PATH, STORAGE_PATH, View, names, sha256_hex};
use crate::crd::{NpmRegistrySpec, PackageRule, UplinkAuthType};
use crate::validate::uplink_token_env;

/// Key of the config file in the ConfigMap.
pub const CONFIG_KEY: &str = "config.yaml";
const DEFAULT_MAX_BODY_SIZE: &str = "50mb";

pub fn build(view: &View) -> Result<ConfigMap, serde_yaml::Error> {
    let yaml = render(view)?;
    Ok(ConfigMap {
        metadata: view.meta(names::config_map(view.name)),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), yaml)])),
        ..ConfigMap::default()
    })
}

/// Checksum of the rendered config, put on the pod template so a config change rolls the pods.
pub fn checksum(config_map: &ConfigMap) -> String {
    let data = config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_KEY))
        .map(String::as_str)
        .unwrap_or("");
    sha256_hex(data.as_bytes())
}

/// Renders config.yaml. A `Mapping` keeps insertion order, so the output is stable and the
/// package rules stay in spec order (the server's first match wins).
pub fn render(view: &View) -> Result<String, serde_yaml::Error> {
    let spec = view.spec;
    let mut root = Mapping::new();
    if view.volume().is_some() {
        root.insert("storage".into(), STORAGE_PATH.into());
    }
    root.insert("listen".into(), format!("0.0.0.0:{}", crate::crd::SERVER_PORT).into());
    if let Some((public_url, prefix)) = public_url(spec) {
        root.insert("public_url".into(), public_url.into());
        if prefix != "/" {
            root.insert("url_prefix".into(), prefix.into());
        }
    }
    root.insert(
        "max_body_size".into(),
        spec.max_body_size.as_deref().unwrap_or(DEFAULT_MAX_BODY_SIZE).into(),
    );
    root.insert(
        "log".into(),
        map([
            ("type", "stdout".into()),
            ("format", "json".into()),
            ("level", spec.log_level.map_or("info", |l| l.as_str()).into()),
        ]),
    );
    if let Some(auth) = &spec.auth {
        let htpasswd = map([("file", HTPASSWD_PATH.into()), ("max_users", auth.max_users.into())]);
        root.insert("auth".into(), map([("htpasswd", htpasswd)]));
    }
    if !spec.uplinks.is_empty() {
        root.insert("uplinks".into(), uplinks(spec));
    }
    root.insert("packages".into(), packages(spec));
    if let Some(s3) = &spec.storage.s3 {
        let mut store = Mapping::new();
        store.insert("bucket".into(), s3.bucket.clone().into());
        let optional = [
            ("keyPrefix", s3.key_prefix.clone().map(Value::from)),
            ("region", s3.region.clone().map(Value::from)),
            ("endpoint", s3.endpoint.clone().map(Value::from)),
            ("s3ForcePathStyle", s3.force_path_style.map(Value::from)),
            ("sseKmsKeyId", s3.kms_key_id.clone().map(Value::from)),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                store.insert(key.into(), value);
            }
        }
        root.insert("store".into(), map([("aws-s3-storage", Value::Mapping(store))]));
    }
    serde_yaml::to_string(&Value::Mapping(root))
}

/// `public_url` and path prefix from the Ingress host: https when TLS (Secret or ACM), else http.
pub fn public_url(spec: &NpmRegistrySpec) -> Option<(String, String)> {
    let ingress = spec.ingress.as_ref()?;
    let host = ingress.host.as_deref().filter(|h| !h.is_empty())?;
    let scheme = if ingress.tls.is_some() { "https" } else { "http" };
    let mut prefix = ingress.path.clone().unwrap_or_else(|| "/".into());
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    Some((format!("{scheme}://{host}/"), prefix))
}

/// The URL clients use: public_url joined with the path prefix.
pub fn client_url(spec: &NpmRegistrySpec) -> Option<String> {
    public_url(spec).map(|(url, prefix)| format!("{}{}", url.trim_end_matches('/'), prefix))
}

fn uplinks(spec: &NpmRegistrySpec) -> Value {
    let mut uplinks = Mapping::new();
    for uplink in &spec.uplinks {
        let mut entry = map([
            ("url", uplink.url.clone().into()),
            ("timeout", uplink.timeout.clone().unwrap_or_else(|| "30s".into()).into()),
            ("maxage", uplink.maxage.clone().unwrap_or_else(|| "2m".into()).into()),
            ("max_fails", uplink.max_fails.unwrap_or(2).into()),
            (
                "fail_timeout",
                uplink.fail_timeout.clone().unwrap_or_else(|| "5m".into()).into(),
            ),
            ("cache", uplink.cache.unwrap_or(true).into()),
        ]);
        if let Some(auth) = &uplink.auth {
            let kind = match auth.type_ {
                UplinkAuthType::Bearer => "bearer",
                UplinkAuthType::Basic => "basic",
            };
            let auth = map([
                ("type", kind.into()),
                ("token_env", uplink_token_env(&uplink.name).into()),
            ]);
            if let Value::Mapping(m) = &mut entry {
                m.insert("auth".into(), auth);
            }
        }
        uplinks.insert(uplink.name.clone().into(), entry);
    }
    Value::Mapping(uplinks)
}

fn packages(spec: &NpmRegistrySpec) -> Value {
    let default_rule;
    let rules: &[PackageRule] = if spec.packages.is_empty() {
        // No rules would block every package; default to Verdaccio's usual open-read rule.
        default_rule = [PackageRule {
            pattern: "**".into(),
            access: vec!["$all".into()],
            publish: vec!["$authenticated".into()],
            unpublish: vec![],
            proxy: spec.uplinks.iter().map(|u| u.name.clone()).collect(),
        }];
        &default_rule
    } else {
        &spec.packages
    };
    let mut packages = Mapping::new();
    for rule in rules {
        let mut entry = Mapping::new();
        for (key, list) in [
            ("access", &rule.access),
            ("publish", &rule.publish),
            ("unpublish", &rule.unpublish),
            ("proxy", &rule.proxy),
        ] {
            if !list.is_empty() {
                entry.insert(
                    key.into(),
                    Value::Sequence(list.iter().map(|s| s.clone().into()).collect()),
                );
            }
        }
        packages.insert(rule.pattern.clone().into(), Value::Mapping(entry));
    }
    Value::Mapping(packages)
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Mapping(entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::*;
    use crate::resources::testing::{registry, s3_spec, volume_spec};

    fn render_spec(spec: NpmRegistrySpec) -> String {
        let registry = registry(spec);
        render(&View::new(&registry).unwrap()).unwrap()
    }

    #[test]
    fn volume_config_matches_the_server_contract() {
        let mut spec = volume_spec();
        spec.max_body_size = Some("50mb".into());
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
                proxy: vec![],
            },
            PackageRule {
                pattern: "**".into(),
                access: vec!["$all".into()],
                publish: vec!["$authenticated".into()],
                unpublish: vec![],
                proxy: vec!["npmjs".into()],
            },
        ];
        let expected = "\
storage: /var/lib/npm-registry/storage
listen: 0.0.0.0:4873
public_url: https://npm.example.com/
max_body_size: 50mb
log:
  type: stdout
  format: json
  level: info
auth:
  htpasswd:
    file: /etc/npm-registry/auth/htpasswd
    max_users: 100
uplinks:
  npmjs:
    url: https://upstream.example.com/
    timeout: 30s
    maxage: 2m
    max_fails: 2
    fail_timeout: 5m
    cache: true
    auth:
      type: bearer
      token_env: UPLINK_NPMJS_TOKEN
packages:
  '@internal/*':
    access:
    - staff
    publish:
    - alice
    unpublish:
    - alice
  '**':
    access:
    - $all
    publish:
    - $authenticated
    proxy:
    - npmjs
";
        assert_eq!(render_spec(spec), expected);
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
        assert_eq!(client_url(&spec).as_deref(), Some("https://npm.example.com/npm/"));
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
        let yaml = render_spec(spec);
        assert!(yaml.ends_with("packages:\n  '**':\n    access:\n    - $all\n    publish:\n    - $authenticated\n    proxy:\n    - b\n    - a\n"), "{yaml}");
        // Uplinks keep spec order too.
        assert!(yaml.find("\n  b:").unwrap() < yaml.find("\n  a:").unwrap());
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
        let other_registry = crate::resources::testing::registry(other);
        let other_cm = build(&View::new(&other_registry).unwrap()).unwrap();
        assert_ne!(checksum(&cm), checksum(&other_cm));
        assert_eq!(checksum(&cm), checksum(&build(&view).unwrap()));
    }
}
