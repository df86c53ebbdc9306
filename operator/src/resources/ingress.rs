//! The Ingress; with the AWS Load Balancer Controller (`className: alb`) it carries the ALB shape:
//! IP targets, health check on the ping endpoint, HTTPS listener and redirect for an ACM certificate.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, ServiceBackendPort,
};

use super::{PING_PATH, View, names};
use crate::crd::{AlbTargetType, IngressSpec as Settings};

const ALB: &str = "alb.ingress.kubernetes.io/";

pub fn build(view: &View) -> Option<Ingress> {
    let settings = view.spec.ingress.as_ref()?;
    let mut metadata = view.meta(names::workload(view.name));
    let mut annotations = if is_alb(settings) {
        alb_annotations(settings)
    } else {
        BTreeMap::new()
    };
    // The user's annotations win over ours.
    annotations.extend(settings.annotations.clone());
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);

    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: names::workload(view.name),
            port: Some(ServiceBackendPort {
                number: Some(view.service_port()),
                name: None,
            }),
        }),
        resource: None,
    };
    let rule = IngressRule {
        host: settings.host.clone(),
        http: Some(HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                path: Some(settings.path.clone().unwrap_or_else(|| "/".into())),
                path_type: "Prefix".into(),
                backend,
            }],
        }),
    };
    let tls = settings
        .tls
        .as_ref()
        .and_then(|tls| tls.secret_name.clone())
        .map(|secret| {
            vec![IngressTLS {
                hosts: settings.host.clone().map(|h| vec![h]),
                secret_name: Some(secret),
            }]
        });
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: settings.class_name.clone(),
            rules: Some(vec![rule]),
            tls,
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    })
}

/// The AWS Load Balancer Controller handles class `alb`; an ALB block or an ACM certificate
/// implies it too.
fn is_alb(settings: &Settings) -> bool {
    settings.class_name.as_deref() == Some("alb")
        || settings.alb.is_some()
        || settings.tls.as_ref().is_some_and(|t| t.certificate_arn.is_some())
}

/// The ALB's idle timeout in seconds when the spec's annotations set one
/// (`load-balancer-attributes: idle_timeout.timeout_seconds=N`); `None`: not an ALB, or its
/// default (60 s).
pub fn alb_idle_timeout_secs(settings: &Settings) -> Option<u64> {
    if !is_alb(settings) {
        return None;
    }
    let attributes = settings.annotations.get(&format!("{ALB}load-balancer-attributes"))?;
    attributes.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == "idle_timeout.timeout_seconds")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

fn alb_annotations(settings: &Settings) -> BTreeMap<String, String> {
    let alb = settings.alb.clone().unwrap_or_default();
    let mut annotations = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        annotations.insert(format!("{ALB}{key}"), value);
    };
    // IP targets reach pods directly (ClusterIP Service, pod readiness gates work).
    put(
        "target-type",
        alb.target_type.unwrap_or(AlbTargetType::Ip).as_str().into(),
    );
    put("healthcheck-path", PING_PATH.into());
    if let Some(scheme) = alb.scheme {
        put("scheme", scheme.as_str().into());
    }
    if let Some(group) = alb.group_name {
        put("group.name", group);
    }
    if let Some(arn) = settings.tls.as_ref().and_then(|t| t.certificate_arn.clone()) {
        put("certificate-arn", arn);
        put("listen-ports", r#"[{"HTTP": 80}, {"HTTPS": 443}]"#.into());
        put("ssl-redirect", "443".into());
    }
    annotations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AlbScheme, AlbSpec, IngressTls, NpmRegistrySpec};
    use crate::fixtures::{registry, volume_spec};

    const ARN: &str = "arn:aws:acm:eu-west-1:123456789012:certificate/abc";

    fn ingress(settings: Option<Settings>) -> Option<Ingress> {
        let spec = NpmRegistrySpec {
            ingress: settings,
            ..volume_spec()
        };
        let registry = registry(spec);
        build(&View::new(&registry).unwrap())
    }

    fn annotations(ingress: &Ingress) -> BTreeMap<String, String> {
        ingress.metadata.annotations.clone().unwrap_or_default()
    }

    #[test]
    fn the_alb_idle_timeout_is_read_from_the_attributes_annotation() {
        let mut settings = Settings {
            class_name: Some("alb".into()),
            annotations: BTreeMap::from([(
                format!("{ALB}load-balancer-attributes"),
                "deletion_protection.enabled=true, idle_timeout.timeout_seconds=300".into(),
            )]),
            ..Settings::default()
        };
        assert_eq!(alb_idle_timeout_secs(&settings), Some(300));
        settings.class_name = Some("nginx".into());
        assert_eq!(alb_idle_timeout_secs(&settings), None, "not an ALB");
        settings.class_name = Some("alb".into());
        settings.annotations.clear();
        assert_eq!(alb_idle_timeout_secs(&settings), None);
    }

    #[test]
    fn none_without_ingress() {
        assert!(ingress(None).is_none());
    }

    #[test]
    fn plain_ingress_with_tls_secret_routes_to_the_service() {
        let ing = ingress(Some(Settings {
            host: Some("npm.example.com".into()),
            class_name: Some("nginx".into()),
            tls: Some(IngressTls {
                secret_name: Some("npm-tls".into()),
                certificate_arn: None,
            }),
            ..Settings::default()
        }))
        .unwrap();
        assert!(annotations(&ing).is_empty());
        let spec = ing.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let tls = &spec.tls.unwrap()[0];
        assert_eq!(tls.hosts, Some(vec!["npm.example.com".to_string()]));
        assert_eq!(tls.secret_name.as_deref(), Some("npm-tls"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("npm.example.com"));
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!((path.path.as_deref(), path.path_type.as_str()), (Some("/"), "Prefix"));
        let backend = path.backend.service.as_ref().unwrap();
        assert_eq!(
            (backend.name.as_str(), backend.port.as_ref().unwrap().number),
            ("npm", Some(4873))
        );
    }

    #[test]
    fn alb_gets_ip_targets_and_the_ping_health_check() {
        let ing = ingress(Some(Settings {
            host: Some("npm.example.com".into()),
            class_name: Some("alb".into()),
            ..Settings::default()
        }))
        .unwrap();
        let a = annotations(&ing);
        assert_eq!(a["alb.ingress.kubernetes.io/target-type"], "ip");
        assert_eq!(a["alb.ingress.kubernetes.io/healthcheck-path"], "/-/ping");
        assert!(!a.contains_key("alb.ingress.kubernetes.io/listen-ports"));
        assert!(!a.contains_key("alb.ingress.kubernetes.io/ssl-redirect"));
    }

    #[test]
    fn alb_with_acm_certificate_listens_on_https_and_redirects() {
        let ing = ingress(Some(Settings {
            host: Some("npm.example.com".into()),
            class_name: Some("alb".into()),
            tls: Some(IngressTls {
                secret_name: None,
                certificate_arn: Some(ARN.into()),
            }),
            alb: Some(AlbSpec {
                scheme: Some(AlbScheme::InternetFacing),
                target_type: None,
                group_name: Some("shared".into()),
            }),
            ..Settings::default()
        }))
        .unwrap();
        let a = annotations(&ing);
        assert_eq!(a["alb.ingress.kubernetes.io/certificate-arn"], ARN);
        assert_eq!(
            a["alb.ingress.kubernetes.io/listen-ports"],
            r#"[{"HTTP": 80}, {"HTTPS": 443}]"#
        );
        assert_eq!(a["alb.ingress.kubernetes.io/ssl-redirect"], "443");
        assert_eq!(a["alb.ingress.kubernetes.io/scheme"], "internet-facing");
        assert_eq!(a["alb.ingress.kubernetes.io/group.name"], "shared");
        // ACM terminates TLS at the ALB: no TLS section in the Ingress.
        assert_eq!(ing.spec.unwrap().tls, None);
    }

    #[test]
    fn user_annotations_win_over_ours() {
        let ing = ingress(Some(Settings {
            class_name: Some("alb".into()),
            annotations: BTreeMap::from([
                ("alb.ingress.kubernetes.io/target-type".into(), "instance".into()),
                ("alb.ingress.kubernetes.io/healthcheck-path".into(), "/-/ready".into()),
            ]),
            ..Settings::default()
        }))
        .unwrap();
        let a = annotations(&ing);
        assert_eq!(a["alb.ingress.kubernetes.io/target-type"], "instance");
        assert_eq!(a["alb.ingress.kubernetes.io/healthcheck-path"], "/-/ready");
    }
}
