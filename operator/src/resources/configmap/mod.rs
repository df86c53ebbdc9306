//! The server's config.yaml in a ConfigMap, built as the server's own config model
//! (`registry_config::ConfigFile`) and serialized: a key the server does not know cannot be
//! written, and a key the spec leaves out is left out (the server's default applies, once).

use std::collections::BTreeMap;

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::ConfigMap;
use registry_config::{
    AuthFile, CacheFile, ConfigFile, HtpasswdFile, LogFile, RepairFile, RetiredKeyFile, RuleFile, S3_PLUGIN,
    S3StoreFile, ServerFile, ShutdownFile, SigningFile, StringList, TrustedPublisherFile, UplinkAuthFile, UplinkFile,
    WebFile,
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
    let shutdown = shutdown_file(&settings);
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
        shutdown,
        ..ServerFile::default()
    };
    (file != ServerFile::default()).then_some(file)
}

/// `server.shutdown` in seconds, when the spec sets it (the pod's grace period follows it:
/// `deployment::termination_grace_seconds`).
fn shutdown_file(settings: &crate::crd::ServerSpec) -> Option<ShutdownFile> {
    let file = ShutdownFile {
        drain: settings.shutdown_drain_seconds.map(|s| Value::from(s.max(0))),
        timeout: settings.shutdown_timeout_seconds.map(|s| Value::from(s.max(1))),
    };
    (file != ShutdownFile::default()).then_some(file)
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
mod tests;
