//! ServiceAccount of the server pods; on EKS it carries the IRSA role.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;

use super::{View, names, sha256_hex};

/// IRSA: the EKS pod identity webhook injects credentials for this role.
pub const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

pub fn build(view: &View) -> ServiceAccount {
    let mut annotations = BTreeMap::new();
    if let Some(sa) = &view.spec.service_account {
        if let Some(role) = &sa.role_arn {
            annotations.insert(IRSA_ANNOTATION.to_string(), role.clone());
        }
        // The user's annotations win over the ones derived from fields.
        annotations.extend(sa.annotations.clone());
    }
    let mut metadata = view.meta(names::workload(view.name));
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    ServiceAccount {
        metadata,
        // The server never calls the Kubernetes API; IRSA and Pod Identity mount their own tokens.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// Checksum of the annotations, part of the pod template: a new IRSA role must restart the pods,
/// because the webhook injects credentials only when a pod is created.
pub fn checksum(sa: &ServiceAccount) -> String {
    let annotations = sa.metadata.annotations.clone().unwrap_or_default();
    sha256_hex(
        serde_json::to_string(&annotations)
            .expect("a map serializes")
            .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ServiceAccountSpec;
    use crate::fixtures::{registry, s3_spec};

    const ROLE: &str = "arn:aws:iam::123456789012:role/npm-registry";

    fn sa(spec: Option<ServiceAccountSpec>) -> ServiceAccount {
        let mut s = s3_spec();
        s.service_account = spec;
        let registry = registry(s);
        build(&View::new(&registry).unwrap())
    }

    #[test]
    fn role_arn_becomes_the_irsa_annotation() {
        let sa = sa(Some(ServiceAccountSpec {
            role_arn: Some(ROLE.into()),
            ..Default::default()
        }));
        assert_eq!(sa.metadata.name.as_deref(), Some("npm"));
        assert_eq!(sa.metadata.annotations.unwrap()[IRSA_ANNOTATION], ROLE);
        assert_eq!(sa.automount_service_account_token, Some(false));
    }

    #[test]
    fn explicit_annotations_win_over_role_arn() {
        let other = "arn:aws:iam::123456789012:role/other";
        let sa = sa(Some(ServiceAccountSpec {
            role_arn: Some(ROLE.into()),
            annotations: BTreeMap::from([(IRSA_ANNOTATION.into(), other.into())]),
        }));
        assert_eq!(sa.metadata.annotations.unwrap()[IRSA_ANNOTATION], other);
    }

    #[test]
    fn no_annotations_without_a_spec_and_checksum_follows_annotations() {
        let plain = sa(None);
        assert_eq!(plain.metadata.annotations, None);
        let irsa = sa(Some(ServiceAccountSpec {
            role_arn: Some(ROLE.into()),
            ..Default::default()
        }));
        assert_ne!(checksum(&plain), checksum(&irsa));
        assert_eq!(checksum(&irsa), checksum(&irsa.clone()));
    }
}
