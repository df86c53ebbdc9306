//! PodDisruptionBudget, only when more than one pod runs: on a single pod it would block drains.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{View, names};

pub fn build(view: &View) -> Option<PodDisruptionBudget> {
    let settings = view.spec.pod_disruption_budget.clone().unwrap_or_default();
    if view.min_replicas() <= 1 || settings.enabled == Some(false) {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: view.meta(names::workload(view.name)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(settings.max_unavailable.unwrap_or(IntOrString::Int(1))),
            selector: Some(LabelSelector {
                match_labels: Some(view.selector_labels()),
                ..LabelSelector::default()
            }),
            // A crash-looping pod must not block node drains.
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AutoscalingSpec, NpmRegistrySpec, PodDisruptionBudgetSpec as Settings};
    use crate::fixtures::{registry, s3_spec, volume_spec};

    fn pdb(spec: NpmRegistrySpec) -> Option<PodDisruptionBudget> {
        let registry = registry(spec);
        build(&View::new(&registry).unwrap())
    }

    #[test]
    fn none_for_a_single_pod() {
        assert!(pdb(volume_spec()).is_none());
        let mut spec = s3_spec();
        spec.replicas = 1;
        assert!(pdb(spec).is_none());
    }

    #[test]
    fn max_unavailable_one_for_several_pods() {
        let pdb = pdb(s3_spec()).unwrap();
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(
            spec.selector.unwrap().match_labels.unwrap()["app.kubernetes.io/instance"],
            "npm"
        );
    }

    #[test]
    fn follows_hpa_minimum_and_can_be_disabled() {
        let mut spec = s3_spec();
        spec.replicas = 1;
        spec.autoscaling = Some(AutoscalingSpec {
            min_replicas: 2,
            max_replicas: 4,
            ..Default::default()
        });
        assert!(pdb(spec.clone()).is_some());
        spec.pod_disruption_budget = Some(Settings {
            enabled: Some(false),
            max_unavailable: None,
        });
        assert!(pdb(spec).is_none());
    }
}
