//! The server's config.yaml in a ConfigMap, built as the server's own config model
//! (`registry_config::ConfigFile`) and serialized: a key the server does not know cannot be
//! written, and a key the spec leaves out is left out (the server's default applies, once).

use std::collections::BTreeMap;

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::ConfigMap;
use registry_config::{
    AuthFile, CacheFile, ConfigFile, HtpasswdFile, LogFile, RepairFile, RetiredKeyFile, RuleFile, S3_PLUGIN,
    S3StoreFile, ServerFile, SigningFile, StringList, TrustedPublisherFile, UplinkAuthFile, UplinkFile, WebFile,
};
use serde_yaml::Value;

use super::{BuildError, CONFIG_DIR, HTPASSWD_PATH, STORAGE_PATH, View, names, sha256_hex};
use crate::crd::{NpmRegistrySpec, PackageRule, UplinkAuthType};
use crate::quantity;
use crate::validate::uplink_token_env;

/// Key of the config file in the ConfigMap.
pub const CONFIG_KEY: &str = "config.yaml";

/// `server.trustProxy` when an Ingress is set and the spec names no proxies: the Ingress
/// controller (or an ALB, from its VPC subnets) connects from private addresses, so its
/// `X-Forwarded-For` is believed from those. Without an Ingress, nobody's is.
pub const INGRESS_TRUSTED_PROXIES: &str = "uniquelocal";

/// How much longer than an ALB's idle timeout the server keeps an idle connection open, so that
/// the ALB, not the server, closes it (else the ALB may send a request on a closing connection
/// and answer 502). Applied when the spec raises the ALB's idle timeout past what the server's
/// default `keepAliveTimeout` covers.
pub const KEEP_ALIVE_MARGIN_SECS: u64 = 15;

pub fn build(view: &View) -> Result<ConfigMap, BuildError> {
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

/// Renders config.yaml. Maps keep insertion order, so the output is stable and the package rules
/// stay in spec order (the server's first match wins).
pub fn render(view: &View) -> Result<String, BuildError> {
    Ok(serde_yaml::to_string(&config(view)?)?)
}

/// The server config an NpmRegistry asks for.
pub fn config(view: &View) -> Result<ConfigFile, BuildError> {
    let spec = view.spec;
    let (public_url, url_prefix) = match public_url(spec) {
        Some((url, prefix)) => (Some(url), (prefix != "/").then_some(prefix)),
        None => (None, None),
    };
    let cache = spec.cache.clone().unwrap_or_default();
    Ok(ConfigFile {
        storage: view.volume().map(|_| STORAGE_PATH.to_string()),
        // The server's default listens on loopback only; a pod must listen on its IP.
        listen: Some(Value::from(format!("0.0.0.0:{}", crate::crd::SERVER_PORT))),
        public_url,
        url_prefix,
        max_body_size: spec.max_body_size.clone().map(Value::from),
        // One JSON object per line is what cluster log collectors read.
        log: Some(LogFile {
            format: Some("json".into()),
            level: spec.log_level.map(|l| l.as_str().to_string()),
            ..LogFile::default()
        }),
        auth: spec.auth.as_ref().map(|auth| AuthFile {
            htpasswd: Some(HtpasswdFile {
                file: Some(HTPASSWD_PATH.into()),
                max_users: Some(auth.max_users.into()),
                ..HtpasswdFile::default()
            }),
            ..AuthFile::default()
        }),
        uplinks: (!spec.uplinks.is_empty()).then(|| uplinks(spec)),
        packages: Some(packages(spec)),
        groups: (!spec.groups.is_empty()).then(|| {
            spec.groups
                .iter()
                .map(|(group, users)| (group.clone(), StringList::Many(users.clone())))
                .collect()
        }),
        web: match &spec.web {
            None => None,
            Some(web) => Some(WebFile {
                enable: web.enable,
                title: web.title.clone(),
                logo: web.logo.clone(),
                cache_size: web
                    .cache_size
                    .as_ref()
                    .map(quantity::bytes)
                    .transpose()?
                    .map(Value::from),
                ..WebFile::default()
            }),
        },
        signing: spec.signing.as_ref().map(|_| signing(view)),
        server: server(spec),
        repair: spec.repair.as_ref().map(|repair| RepairFile {
            interval: repair.interval.clone().map(Value::from),
            grace: repair.grace.clone().map(Value::from),
        }),
        packument_cache: cache_file(cache.packuments.as_ref())?,
        tarball_cache: cache_file(cache.tarballs.as_ref())?,
        store: spec.storage.s3.as_ref().map(|s3| {
            let store = S3StoreFile {
                bucket: Some(s3.bucket.clone()),
                key_prefix: s3.key_prefix.clone(),
                region: s3.region.clone(),
                endpoint: s3.endpoint.clone(),
                force_path_style: s3.force_path_style,
                sse_kms_key_id: s3.kms_key_id.clone(),
                tarball_redirect: s3.tarball_redirect.clone().map(Value::from),
                connect_timeout: s3.connect_timeout.clone().map(Value::from),
                request_timeout: s3.request_timeout.clone().map(Value::from),
                max_attempts: s3.max_attempts.map(|n| n.max(1) as u32),
            };
            let value = serde_yaml::to_value(store).expect("the S3 section serializes");
            BTreeMap::from([(S3_PLUGIN.to_string(), value)])
        }),
        ..ConfigFile::default()
    })
}

/// `signing`: the key files where the Deployment projects the Secrets.
fn signing(view: &View) -> SigningFile {
    let path = |file: &str| format!("{CONFIG_DIR}/{file}");
    let retired = view.retired_keys();
    let signing = view.spec.signing.as_ref();
    SigningFile {
        enabled: signing.and_then(|s| s.enabled),
        key_file: view.signing_key().map(|(file, _)| path(&file)),
        rotate_before: signing.and_then(|s| s.rotate_before.clone()),
        retired_keys: (!retired.is_empty()).then(|| {
            retired
                .iter()
                .map(|(file, key)| RetiredKeyFile {
                    key_file: Some(path(file)),
                    expires: Some(key.expires.clone()),
                })
                .collect()
        }),
    }
}

/// `server`: the spec's settings, and the trusted proxies (see [`INGRESS_TRUSTED_PROXIES`]).
fn server(spec: &NpmRegistrySpec) -> Option<ServerFile> {
    let settings = spec.server.clone().unwrap_or_default();
    let trust_proxy = match &settings.trust_proxy {
        Some(list) => (!list.is_empty()).then(|| Value::from(list.clone())),
        None => spec
            .ingress
            .is_some()
            .then(|| Value::from(vec![INGRESS_TRUSTED_PROXIES])),
    };
    let keep_alive_timeout = settings.keep_alive_timeout.map(Value::from).or_else(|| {
        let idle = spec.ingress.as_ref().and_then(super::ingress::alb_idle_timeout_secs)?;
        let needed = idle + KEEP_ALIVE_MARGIN_SECS;
        (needed > registry_config::defaults::KEEP_ALIVE_TIMEOUT.as_secs()).then(|| Value::from(format!("{needed}s")))
    });
    let file = ServerFile {
        trust_proxy,
        keep_alive_timeout,
        headers_timeout: settings.headers_timeout.map(Value::from),
        body_timeout: settings.body_timeout.map(Value::from),
        max_connections: settings.max_connections.map(|n| Value::from(n.max(1))),
        max_body_bytes_in_flight: settings.max_body_bytes_in_flight.map(Value::from),
        ..ServerFile::default()
    };
    (file != ServerFile::default()).then_some(file)
}

/// `max_size` in bytes, when the spec sets a size.
fn cache_file(
    size: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> Result<Option<CacheFile>, BuildError> {
    let Some(size) = size else { return Ok(None) };
    Ok(Some(CacheFile {
        max_size: Some(Value::from(quantity::bytes(size)?)),
        ..CacheFile::default()
    }))
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

/// The URL clients use: public_url joined with the path prefix; without an Ingress host, the
/// Service's address inside the cluster.
pub fn client_url(view: &View) -> String {
    match public_url(view.spec) {
        Some((url, prefix)) => format!("{}{}", url.trim_end_matches('/'), prefix),
        None => format!(
            "http://{}.{}.svc:{}/",
            names::workload(view.name),
            view.namespace,
            view.service_port()
        ),
    }
}

fn uplinks(spec: &NpmRegistrySpec) -> IndexMap<String, UplinkFile> {
    spec.uplinks
        .iter()
        .map(|uplink| {
            let file = UplinkFile {
                url: Some(uplink.url.clone()),
                timeout: uplink.timeout.clone().map(Value::from),
                maxage: uplink.maxage.clone().map(Value::from),
                max_fails: uplink.max_fails.map(|n| n.max(0) as u32),
                fail_timeout: uplink.fail_timeout.clone().map(Value::from),
                cache: uplink.cache,
                auth: uplink.auth.as_ref().map(|auth| UplinkAuthFile {
                    kind: Some(
                        match auth.type_ {
                            UplinkAuthType::Bearer => "bearer",
                            UplinkAuthType::Basic => "basic",
                        }
                        .into(),
                    ),
                    // The token itself reaches the pod as this environment variable, from the Secret.
                    token_env: Some(Value::from(uplink_token_env(&uplink.name))),
                    ..UplinkAuthFile::default()
                }),
                ..UplinkFile::default()
            };
            (uplink.name.clone(), file)
        })
        .collect()
}

fn packages(spec: &NpmRegistrySpec) -> IndexMap<String, RuleFile> {
    let default_rule;
    let rules: &[PackageRule] = if spec.packages.is_empty() {
        // No rules would block every package; default to Verdaccio's usual open-read rule.
        default_rule = [PackageRule {
            pattern: "**".into(),
            access: vec!["$all".into()],
            publish: vec!["$authenticated".into()],
            proxy: spec.uplinks.iter().map(|u| u.name.clone()).collect(),
            ..PackageRule::default()
        }];
        &default_rule
    } else {
        &spec.packages
    };
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| StringList::Many(v.clone()));
    rules
        .iter()
        .map(|rule| {
            let file = RuleFile {
                access: list(&rule.access),
                publish: list(&rule.publish),
                unpublish: list(&rule.unpublish),
                proxy: list(&rule.proxy),
                quarantine: rule.quarantine.clone().map(Value::from),
                block: (!rule.block.is_empty()).then(|| rule.block.clone()),
                trusted_publishers: (!rule.trusted_publishers.is_empty()).then(|| {
                    rule.trusted_publishers
                        .iter()
                        .map(|t| TrustedPublisherFile {
                            issuer: Some(t.issuer.clone()),
                            claims: Some(
                                t.claims
                                    .iter()
                                    .map(|(name, value)| (name.clone(), Value::from(value.0.clone())))
                                    .collect(),
                            ),
                        })
                        .collect()
                }),
                ..RuleFile::default()
            };
            (rule.pattern.clone(), file)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;
    use crate::crd::*;
    use crate::resources::testing::{registry, s3_spec, volume_spec};

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
        let other_registry = crate::resources::testing::registry(other);
        let other_cm = build(&View::new(&other_registry).unwrap()).unwrap();
        assert_ne!(checksum(&cm), checksum(&other_cm));
        assert_eq!(checksum(&cm), checksum(&build(&view).unwrap()));
    }
}
