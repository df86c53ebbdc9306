//! How the registry is reached: the Service, the Ingress (and its ALB shape), the ServiceAccount.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Ingress.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.tls) || (has(self.host) && self.host != '')").message("ingress.tls requires ingress.host"))]
pub struct IngressSpec {
    /// Host name clients use; also sets the server's `public_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
    )]
    pub host: Option<String>,
    /// IngressClass, for example `alb` (AWS Load Balancer Controller) or `nginx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// Path prefix (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// TLS, by Secret or by ACM certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTls>,
    /// Annotations on the Ingress; these win over the operator's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// AWS Load Balancer Controller settings (used with `className: alb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbSpec>,
}

/// Ingress TLS: exactly one of `secretName` and `certificateArn`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretName) != has(self.certificateArn)").message("set exactly one of tls.secretName or tls.certificateArn"))]
pub struct IngressTls {
    /// Secret of type kubernetes.io/tls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
    /// ACM certificate ARN (ALB terminates TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^arn:aws[a-z-]*:acm:"))]
    pub certificate_arn: Option<String>,
}

/// AWS Load Balancer Controller settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbSpec {
    /// `internal` or `internet-facing` (the controller's default is internal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<AlbScheme>,
    /// `ip` (default; routes straight to pod IPs) or `instance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<AlbTargetType>,
    /// IngressGroup shared with other Ingresses (one ALB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"))]
    pub group_name: Option<String>,
}

/// ALB scheme.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlbScheme {
    Internal,
    InternetFacing,
}

impl AlbScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            AlbScheme::Internal => "internal",
            AlbScheme::InternetFacing => "internet-facing",
        }
    }
}

/// ALB target type.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlbTargetType {
    Ip,
    Instance,
}

impl AlbTargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            AlbTargetType::Ip => "ip",
            AlbTargetType::Instance => "instance",
        }
    }
}

/// Service.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type (default ClusterIP).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ServiceType>,
    /// Service port (default 4873).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Annotations on the Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Service type.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// ServiceAccount of the server pods.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSpec {
    /// IAM role for IRSA; becomes the `eks.amazonaws.com/role-arn` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"))]
    pub role_arn: Option<String>,
    /// Annotations on the ServiceAccount; these win over `roleArn`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}
