//! The Service in front of the server pods.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{View, names};
use crate::crd::ServiceType;

pub fn build(view: &View) -> Service {
    let settings = view.spec.service.clone().unwrap_or_default();
    let mut metadata = view.meta(names::workload(view.name));
    metadata.annotations = (!settings.annotations.is_empty()).then_some(settings.annotations);
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(settings.type_.unwrap_or(ServiceType::ClusterIP).as_str().into()),
            selector: Some(view.selector_labels()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: view.service_port(),
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::crd::ServiceSpec as Settings;
    use crate::fixtures::{registry, volume_spec};

    #[test]
    fn default_is_cluster_ip_on_4873_to_the_http_port() {
        let registry = registry(volume_spec());
        let svc = build(&View::new(&registry).unwrap());
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, 4873);
        assert_eq!(
            spec.ports.unwrap()[0].target_port,
            Some(IntOrString::String("http".into()))
        );
        assert_eq!(spec.selector.unwrap()["app.kubernetes.io/instance"], "npm");
        assert_eq!(svc.metadata.annotations, None);
    }

    #[test]
    fn type_port_and_annotations_come_from_the_spec() {
        let mut spec = volume_spec();
        spec.service = Some(Settings {
            type_: Some(ServiceType::LoadBalancer),
            port: Some(80),
            annotations: BTreeMap::from([(
                "service.beta.kubernetes.io/aws-load-balancer-scheme".into(),
                "internal".into(),
            )]),
        });
        let registry = registry(spec);
        let svc = build(&View::new(&registry).unwrap());
        assert_eq!(svc.metadata.annotations.unwrap().len(), 1);
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.ports.unwrap()[0].port, 80);
    }
}
