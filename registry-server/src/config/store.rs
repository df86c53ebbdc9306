//! `store:` — where packages live. Without it, the `storage` folder; with
//! `store: {aws-s3-storage: {...}}`, an S3 bucket laid out as Verdaccio's S3 plugin lays it out.
//! The plugin's keys are accepted as they are (including its habit of reading a value from the
//! environment variable it names); credentials never come from the file.

use super::keys::{fields_of, near_miss};
use super::{ConfigError, duration_value, invalid};
use registry_config::defaults;
use registry_config::s3_keys as k;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub use registry_config::S3_PLUGIN;

#[derive(Debug, Clone, PartialEq)]
pub enum Store {
    /// The `storage` folder (a local disk, a PVC, EFS).
    Filesystem,
    S3(S3Store),
}

#[derive(Debug, Clone, PartialEq)]
pub struct S3Store {
    pub bucket: String,
    /// Prepended to every key; empty, or ending in `/` (Verdaccio adds the slash too).
    pub key_prefix: String,
    /// `None`: the AWS default chain (`AWS_REGION`, profile, instance metadata).
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    /// Every object we write is encrypted with this KMS key (SSE-KMS).
    pub sse_kms_key_id: Option<String>,
    /// Answer tarball downloads with a redirect to a presigned URL valid this long.
    pub tarball_redirect: Option<Duration>,
    pub connect_timeout: Duration,
    /// Limit of one attempt of one S3 call (a streamed download only until its headers arrive).
    pub request_timeout: Duration,
    pub max_attempts: u32,
}

/// Keys that would put a credential in the file, with the variable the AWS chain reads instead.
const CREDENTIAL_KEYS: [(&str, &str); 3] = [
    ("accessKeyId", "AWS_ACCESS_KEY_ID"),
    ("secretAccessKey", "AWS_SECRET_ACCESS_KEY"),
    ("sessionToken", "AWS_SESSION_TOKEN"),
];

/// Verdaccio plugin keys we accept without using.
const IGNORED_KEYS: [&str; 3] = ["tarballACL", "acl", "proxy"];

/// Every key of `store.aws-s3-storage` this server knows, for near-miss errors: the section's
/// own, the plugin's that are ignored or refused, and its DynamoDB table (never read).
fn known_keys() -> Vec<&'static str> {
    let mut known = fields_of::<registry_config::S3StoreFile>().to_vec();
    known.extend(IGNORED_KEYS);
    known.extend(CREDENTIAL_KEYS.map(|(k, _)| k));
    known.push("dynamoTableName");
    known
}

pub fn resolve(raw: Option<BTreeMap<String, Value>>, warnings: &mut Vec<String>) -> Result<Store, ConfigError> {
    let Some(raw) = raw.filter(|m| !m.is_empty()) else {
        return Ok(Store::Filesystem);
    };
    let mut s3 = None;
    for (plugin, value) in raw {
        if plugin != S3_PLUGIN {
            return Err(invalid(
                format!("store.{plugin}"),
                format!("unknown storage plugin; supported: store.{S3_PLUGIN}"),
            ));
        }
        s3 = Some(resolve_s3(value, warnings)?);
    }
    Ok(s3.map_or(Store::Filesystem, Store::S3))
}

fn resolve_s3(value: Value, warnings: &mut Vec<String>) -> Result<S3Store, ConfigError> {
    let key = |k: &str| format!("store.{S3_PLUGIN}.{k}");
    let Value::Mapping(map) = value else {
        return Err(invalid(key(k::BUCKET), format!("store.{S3_PLUGIN} must be a mapping")));
    };
    let mut fields: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in map {
        let Value::String(k) = k else {
            return Err(invalid(key("?"), "keys must be strings"));
        };
        fields.insert(k, v);
    }
    for (name, variable) in CREDENTIAL_KEYS {
        let value = match fields.remove(name) {
            None => continue,
            Some(Value::Null) => None,
            Some(Value::String(v)) if v.trim().is_empty() => None,
            Some(v) => Some(v),
        };
        match value {
            // The deployment guides' `accessKeyId: # your key`: nothing given.
            None => {
                warnings.push(format!(
                    "`{}` is empty and treated as absent: credentials come from the AWS default chain",
                    key(name)
                ));
                continue;
            }
            // Naming the variable the default chain reads anyway (the plugin reads a value that
            // names a variable from it).
            Some(Value::String(v)) if v == variable => {
                warnings.push(format!(
                    "`{}: {v}` is not needed: the AWS default chain reads {v} itself",
                    key(name)
                ));
                continue;
            }
            Some(_) => {}
        }
        {
            return Err(invalid(
                key(name),
                "credentials are not accepted in the config file; the server uses the AWS default \
                 chain (IRSA web identity, EKS Pod Identity, instance profile, or the \
                 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN environment variables)",
            ));
        }
    }
    let mut take = |name: &str| fields.remove(name);
    let bucket = string(&key(k::BUCKET), take(k::BUCKET))?.ok_or_else(|| invalid(key(k::BUCKET), "is required"))?;
    if bucket.is_empty() {
        return Err(invalid(key(k::BUCKET), "must not be empty"));
    }
    let key_prefix = match string(&key(k::KEY_PREFIX), take(k::KEY_PREFIX))? {
        None => String::new(),
        Some(p) => {
            let p = p.trim_start_matches('/').to_owned();
            if p.is_empty() || p.ends_with('/') {
                p
            } else {
                format!("{p}/")
            }
        }
    };
    let region = string(&key(k::REGION), take(k::REGION))?.filter(|r| !r.is_empty());
    let endpoint = match string(&key(k::ENDPOINT), take(k::ENDPOINT))?.filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => {
            let u =
                url::Url::parse(&e).map_err(|err| invalid(key(k::ENDPOINT), format!("{e:?} is not a URL: {err}")))?;
            if u.scheme() != "http" && u.scheme() != "https" {
                return Err(invalid(key(k::ENDPOINT), format!("{e:?} must be an http or https URL")));
            }
            Some(e)
        }
    };
    let force_path_style = boolean(&key(k::FORCE_PATH_STYLE), take(k::FORCE_PATH_STYLE))?;
    let sse_kms_key_id = string(&key(k::SSE_KMS_KEY_ID), take(k::SSE_KMS_KEY_ID))?.filter(|id| !id.is_empty());
    let tarball_redirect = match take(k::TARBALL_REDIRECT) {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(defaults::S3_TARBALL_REDIRECT),
        v => {
            let ttl = duration_value(&key(k::TARBALL_REDIRECT), v, defaults::S3_TARBALL_REDIRECT)?;
            // SigV4 presigned URLs are valid for at most seven days.
            if ttl.is_zero() || ttl > Duration::from_secs(7 * 24 * 3600) {
                return Err(invalid(
                    key(k::TARBALL_REDIRECT),
                    "must be true, false, or a lifetime between 1s and 7d",
                ));
            }
            Some(ttl)
        }
    };
    let connect_timeout = duration_value(
        &key(k::CONNECT_TIMEOUT),
        take(k::CONNECT_TIMEOUT),
        defaults::S3_CONNECT_TIMEOUT,
    )?;
    let request_timeout = duration_value(
        &key(k::REQUEST_TIMEOUT),
        take(k::REQUEST_TIMEOUT),
        defaults::S3_REQUEST_TIMEOUT,
    )?;
    for (name, d) in [
        (k::CONNECT_TIMEOUT, connect_timeout),
        (k::REQUEST_TIMEOUT, request_timeout),
    ] {
        if d.is_zero() {
            return Err(invalid(key(name), "must be more than zero"));
        }
    }
    let attempts_error = || invalid(key(k::MAX_ATTEMPTS), "must be a number from 1 to 10");
    let max_attempts = match take(k::MAX_ATTEMPTS) {
        None => defaults::S3_MAX_ATTEMPTS,
        Some(Value::Number(n)) => n.as_u64().filter(|n| (1..=10).contains(n)).ok_or_else(attempts_error)? as u32,
        Some(_) => return Err(attempts_error()),
    };
    for name in IGNORED_KEYS {
        if fields.remove(name).is_some() {
            warnings.push(format!("`{}` is not supported; ignored", key(name)));
        }
    }
    let known = known_keys();
    for name in fields.keys() {
        if let Some(expected) = near_miss(name, &known) {
            return Err(ConfigError::NearMiss {
                key: key(name),
                expected: key(expected),
            });
        }
        warnings.push(format!("unknown config key `{}` ignored", key(name)));
    }
    Ok(S3Store {
        bucket,
        key_prefix,
        region,
        endpoint,
        force_path_style,
        sse_kms_key_id,
        tarball_redirect,
        connect_timeout,
        request_timeout,
        max_attempts,
    })
}

/// A string value; as in Verdaccio's plugin, a value that names a set environment variable is
/// replaced by that variable's value (`bucket: S3_BUCKET`).
fn string(key: &str, v: Option<Value>) -> Result<Option<String>, ConfigError> {
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(invalid(key, "expected a string")),
    };
    let names_a_variable = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if names_a_variable
        && let Ok(v) = std::env::var(&s)
        && !v.is_empty()
    {
        return Ok(Some(v));
    }
    Ok(Some(s))
}

fn boolean(key: &str, v: Option<Value>) -> Result<bool, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(_) => Err(invalid(key, "expected true or false")),
    }
}
