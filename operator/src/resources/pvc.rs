//! The storage claim, when the NpmRegistry asks for a volume and names no existing claim.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{View, names};
use crate::crd::DEFAULT_VOLUME_SIZE;

pub fn build(view: &View) -> Option<PersistentVolumeClaim> {
    let volume = view.volume()?;
    if volume.existing_claim.is_some() {
        return None;
    }
    let mut metadata = view.meta(names::pvc(view.name));
    if volume.retain_on_delete {
        // No owner: the garbage collector keeps the claim after the NpmRegistry is gone.
        metadata.owner_references = None;
    }
    let size = volume
        .size
        .clone()
        .unwrap_or_else(|| Quantity(DEFAULT_VOLUME_SIZE.into()));
    Some(PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![volume.access_mode.as_str().into()]),
            storage_class_name: volume.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), size)])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AccessMode, NpmRegistrySpec, VolumeStorage};
    use crate::fixtures::{registry, s3_spec, volume_spec};

    fn pvc(spec: NpmRegistrySpec) -> Option<PersistentVolumeClaim> {
        let registry = registry(spec);
        build(&View::new(&registry).unwrap())
    }

    fn with_volume(volume: VolumeStorage) -> NpmRegistrySpec {
        let mut spec = volume_spec();
        spec.storage.volume = Some(volume);
        spec
    }

    #[test]
    fn default_claim_is_owned_read_write_once_10gi() {
        let claim = pvc(volume_spec()).unwrap();
        assert_eq!(claim.metadata.name.as_deref(), Some("npm-storage"));
        assert!(claim.metadata.owner_references.is_some());
        let spec = claim.spec.unwrap();
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity("10Gi".into())
        );
        assert_eq!(spec.storage_class_name, None);
    }

    #[test]
    fn efs_claim_is_read_write_many_with_its_class() {
        let claim = pvc(with_volume(VolumeStorage {
            access_mode: AccessMode::ReadWriteMany,
            storage_class_name: Some("efs-sc".into()),
            size: Some(Quantity("5Gi".into())),
            ..VolumeStorage::default()
        }))
        .unwrap();
        let spec = claim.spec.unwrap();
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteMany".to_string()]));
        assert_eq!(spec.storage_class_name.as_deref(), Some("efs-sc"));
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity("5Gi".into())
        );
    }

    #[test]
    fn retained_claim_has_no_owner() {
        let claim = pvc(with_volume(VolumeStorage {
            retain_on_delete: true,
            ..VolumeStorage::default()
        }))
        .unwrap();
        assert_eq!(claim.metadata.owner_references, None);
    }

    #[test]
    fn no_claim_for_s3_or_an_existing_claim() {
        assert!(pvc(s3_spec()).is_none());
        assert!(
            pvc(with_volume(VolumeStorage {
                existing_claim: Some("x".into()),
                ..VolumeStorage::default()
            }))
            .is_none()
        );
    }
}
