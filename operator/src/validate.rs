//! Checks the reconciler repeats before building: the CRD's CEL rules (an older CRD may be installed,
//! or CEL may be off) and what CEL cannot express.

use std::collections::BTreeMap;

use crate::crd::NpmRegistrySpec;

/// Longest NpmRegistry name: the longest child name (`<name>-storage`) must stay a 63-character label.
pub const MAX_NAME_LEN: usize = 55;
/// An RFC 1035 label (what a Service name must be), as the CRD's schema checks it.
pub const NAME_PATTERN: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";

/// Why a spec cannot be reconciled; shown in the `Degraded` condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("name {0:?} must be a DNS label of at most {MAX_NAME_LEN} characters starting with a letter")]
    Name(String),
    #[error("exactly one of storage.volume or storage.s3 must be set")]
    StorageKind,
    #[error("a ReadWriteOnce volume allows one replica and no autoscaling")]
    SingleWriterReplicas,
    #[error("ingress.tls requires ingress.host")]
    TlsWithoutHost,
    #[error("set exactly one of ingress.tls.secretName or ingress.tls.certificateArn")]
    TlsSource,
    #[error("uplinks {0:?} and {1:?} map to the same environment variable {2}")]
    UplinkEnvCollision(String, String, String),
    #[error("packages[].proxy names unknown uplink {0:?}")]
    UnknownUplink(String),
    #[error("autoscaling.maxReplicas must be at least minReplicas")]
    AutoscalingRange,
    #[error("packages[].trustedPublishers requires ingress.host (the id-token audience is the public URL)")]
    TrustedPublishersWithoutHost,
    #[error("trusted publisher of {0:?} names no claim")]
    TrustedPublisherWithoutClaims(String),
    #[error("signing.rotateBefore applies to the key kept in storage, not to signing.keySecret")]
    RotateBeforeWithKeySecret,
}

/// Validates a spec; the first problem wins.
pub fn spec(name: &str, spec: &NpmRegistrySpec) -> Result<(), SpecError> {
    if !is_dns_1035_label(name) || name.len() > MAX_NAME_LEN {
        return Err(SpecError::Name(name.to_string()));
    }
    let storage = &spec.storage;
    if storage.volume.is_some() == storage.s3.is_some() {
        return Err(SpecError::StorageKind);
    }
    if let Some(volume) = &storage.volume
        && volume.access_mode.single_writer()
        && (spec.replicas > 1 || spec.autoscaling.is_some())
    {
        return Err(SpecError::SingleWriterReplicas);
    }
    if let Some(hpa) = &spec.autoscaling
        && hpa.max_replicas < hpa.min_replicas
    {
        return Err(SpecError::AutoscalingRange);
    }
    if let Some(ingress) = &spec.ingress
        && let Some(tls) = &ingress.tls
    {
        if ingress.host.as_deref().is_none_or(str::is_empty) {
            return Err(SpecError::TlsWithoutHost);
        }
        if tls.secret_name.is_some() == tls.certificate_arn.is_some() {
            return Err(SpecError::TlsSource);
        }
    }
    let mut envs: BTreeMap<String, &str> = BTreeMap::new();
    for uplink in &spec.uplinks {
        let env = uplink_token_env(&uplink.name);
        if let Some(other) = envs.insert(env.clone(), &uplink.name) {
            return Err(SpecError::UplinkEnvCollision(
                other.to_string(),
                uplink.name.clone(),
                env,
            ));
        }
    }
    let has_host = spec
        .ingress
        .as_ref()
        .is_some_and(|i| i.host.as_deref().is_some_and(|h| !h.is_empty()));
    for rule in &spec.packages {
        if !rule.trusted_publishers.is_empty() && !has_host {
            return Err(SpecError::TrustedPublishersWithoutHost);
        }
        if rule.trusted_publishers.iter().any(|t| t.claims.is_empty()) {
            return Err(SpecError::TrustedPublisherWithoutClaims(rule.pattern.clone()));
        }
    }
    if let Some(signing) = &spec.signing
        && signing.key_secret.is_some()
        && signing.rotate_before.is_some()
    {
        return Err(SpecError::RotateBeforeWithKeySecret);
    }
    for rule in &spec.packages {
        for proxy in &rule.proxy {
            if !spec.uplinks.iter().any(|u| &u.name == proxy) {
                return Err(SpecError::UnknownUplink(proxy.clone()));
            }
        }
    }
    Ok(())
}

/// Environment variable that carries an uplink's token (`token_env` in the server config).
pub fn uplink_token_env(uplink: &str) -> String {
    let upper: String = uplink
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("UPLINK_{upper}_TOKEN")
}

/// Service names must be RFC 1035 labels: lower-case alphanumerics and '-', starting with a letter.
fn is_dns_1035_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        AccessMode, AutoscalingSpec, ClaimValue, IngressSpec, IngressTls, PackageRule, S3Storage, SecretKeyRef,
        SigningSpec, TrustedPublisher, UplinkSpec, VolumeStorage,
    };
    use crate::fixtures::{s3_spec, volume_spec};

    #[test]
    fn accepts_the_minimal_shapes() {
        assert_eq!(spec("npm", &volume_spec()), Ok(()));
        assert_eq!(spec("npm", &s3_spec()), Ok(()));
    }

    #[test]
    fn refuses_bad_names() {
        for name in ["1npm", "Npm", "npm-", "", &"a".repeat(56)] {
            assert!(matches!(spec(name, &volume_spec()), Err(SpecError::Name(_))), "{name}");
        }
        assert_eq!(spec(&"a".repeat(55), &volume_spec()), Ok(()));
    }

    #[test]
    fn refuses_zero_or_two_storage_kinds() {
        let mut s = volume_spec();
        s.storage.s3 = Some(S3Storage {
            bucket: "b".repeat(3),
            ..S3Storage::default()
        });
        assert_eq!(spec("npm", &s), Err(SpecError::StorageKind));
        s.storage.s3 = None;
        s.storage.volume = None;
        assert_eq!(spec("npm", &s), Err(SpecError::StorageKind));
    }

    #[test]
    fn refuses_replicas_or_hpa_on_a_single_writer_volume() {
        let mut s = volume_spec();
        s.replicas = 2;
        assert_eq!(spec("npm", &s), Err(SpecError::SingleWriterReplicas));
        s.replicas = 1;
        s.autoscaling = Some(AutoscalingSpec {
            min_replicas: 1,
            max_replicas: 3,
            ..AutoscalingSpec::default()
        });
        assert_eq!(spec("npm", &s), Err(SpecError::SingleWriterReplicas));
        s.storage.volume = Some(VolumeStorage {
            access_mode: AccessMode::ReadWriteMany,
            ..VolumeStorage::default()
        });
        assert_eq!(spec("npm", &s), Ok(()));
    }

    #[test]
    fn refuses_tls_without_host() {
        let mut s = volume_spec();
        s.ingress = Some(IngressSpec {
            tls: Some(IngressTls {
                secret_name: Some("tls".into()),
                certificate_arn: None,
            }),
            ..IngressSpec::default()
        });
        assert_eq!(spec("npm", &s), Err(SpecError::TlsWithoutHost));
    }

    #[test]
    fn refuses_colliding_uplink_envs_and_unknown_proxies() {
        let mut s = volume_spec();
        let uplink = |name: &str| UplinkSpec {
            name: name.into(),
            url: "https://upstream.example.com/".into(),
            ..UplinkSpec::default()
        };
        s.uplinks = vec![uplink("a-b"), uplink("a_b")];
        assert!(matches!(spec("npm", &s), Err(SpecError::UplinkEnvCollision(..))));
        s.uplinks = vec![uplink("up")];
        s.packages = vec![PackageRule {
            pattern: "**".into(),
            proxy: vec!["down".into()],
            ..PackageRule::default()
        }];
        assert_eq!(spec("npm", &s), Err(SpecError::UnknownUplink("down".into())));
    }

    #[test]
    fn refuses_trusted_publishers_without_a_host_or_claims_and_rotation_of_a_secret_key() {
        let mut s = volume_spec();
        let publisher = |claims: &[(&str, &str)]| TrustedPublisher {
            issuer: "https://issuer.example.com".into(),
            claims: claims
                .iter()
                .map(|(k, v)| (k.to_string(), ClaimValue(v.to_string())))
                .collect(),
        };
        s.packages = vec![PackageRule {
            pattern: "@internal/*".into(),
            trusted_publishers: vec![publisher(&[("repository", "acme/widgets")])],
            ..PackageRule::default()
        }];
        assert_eq!(spec("npm", &s), Err(SpecError::TrustedPublishersWithoutHost));
        s.ingress = Some(IngressSpec {
            host: Some("npm.example.com".into()),
            ..IngressSpec::default()
        });
        assert_eq!(spec("npm", &s), Ok(()));
        s.packages[0].trusted_publishers = vec![publisher(&[])];
        assert!(matches!(
            spec("npm", &s),
            Err(SpecError::TrustedPublisherWithoutClaims(_))
        ));
        s.packages.clear();
        s.signing = Some(SigningSpec {
            key_secret: Some(SecretKeyRef {
                name: "signing".into(),
                key: "key.pem".into(),
            }),
            rotate_before: Some("2027-01-01T00:00:00Z".into()),
            ..SigningSpec::default()
        });
        assert_eq!(spec("npm", &s), Err(SpecError::RotateBeforeWithKeySecret));
    }

    #[test]
    fn token_env_is_a_valid_variable_name() {
        assert_eq!(uplink_token_env("npmjs"), "UPLINK_NPMJS_TOKEN");
        assert_eq!(uplink_token_env("my-mirror.2"), "UPLINK_MY_MIRROR_2_TOKEN");
    }
}
