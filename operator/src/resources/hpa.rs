//! HorizontalPodAutoscaler (autoscaling/v2) on CPU; it owns the Deployment's replica count.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};

use super::{View, names};

const DEFAULT_CPU_PERCENT: i32 = 80;

pub fn build(view: &View) -> Option<HorizontalPodAutoscaler> {
    let autoscaling = view.spec.autoscaling.as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: view.meta(names::workload(view.name)),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: names::workload(view.name),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(
                            autoscaling
                                .target_cpu_utilization_percentage
                                .unwrap_or(DEFAULT_CPU_PERCENT),
                        ),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        }),
        ..HorizontalPodAutoscaler::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::AutoscalingSpec;
    use crate::fixtures::{registry, s3_spec};

    #[test]
    fn none_without_autoscaling() {
        let registry = registry(s3_spec());
        assert!(build(&View::new(&registry).unwrap()).is_none());
    }

    #[test]
    fn targets_the_deployment_on_cpu() {
        let mut spec = s3_spec();
        spec.autoscaling = Some(AutoscalingSpec {
            min_replicas: 2,
            max_replicas: 8,
            target_cpu_utilization_percentage: Some(70),
        });
        let registry = registry(spec);
        let hpa = build(&View::new(&registry).unwrap()).unwrap();
        let spec = hpa.spec.unwrap();
        assert_eq!(spec.scale_target_ref.kind, "Deployment");
        assert_eq!(spec.scale_target_ref.name, "npm");
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 8));
        let target = &spec.metrics.unwrap()[0].resource.clone().unwrap().target;
        assert_eq!(target.average_utilization, Some(70));
    }
}
