//! The kustomize base (`config/`): the same CRD, RBAC and Deployment as the chart.

use std::collections::BTreeSet;

use super::support::*;

#[test]
fn kustomize_base_renders_valid_objects() {
    let mut cmd = kubectl();
    cmd.args(["kustomize", "config/"]);
    let out = run(cmd, "kubectl kustomize config/");
    validate(&out, "kubectl kustomize config/");
    let docs = documents(&out);
    let want: BTreeSet<String> = [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds(&docs), want);
    // kustomize re-serializes the CRD (`1.0` becomes `1`): the same schema, not the same bytes.
    let crd = documents(&read(CRD)).remove(0);
    let rendered = &find(&docs, "CustomResourceDefinition")["spec"];
    if let Some(diff) = first_difference(rendered, &crd["spec"], "spec") {
        panic!("the kustomize CRD differs from {CRD} at {diff}");
    }
    let (cluster_rules, lease_rules) = config_rules();
    assert_eq!(find(&docs, "ClusterRole")["rules"], cluster_rules);
    assert_eq!(find(&docs, "Role")["rules"], lease_rules);
    let namespace = find(&docs, "Namespace")["metadata"]["name"].clone();
    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap();
        if ["ServiceAccount", "Role", "RoleBinding", "Service", "Deployment"].contains(&kind) {
            assert_eq!(doc["metadata"]["namespace"], namespace, "{kind}");
        }
        if kind.ends_with("Binding") {
            assert_eq!(doc["subjects"][0]["namespace"], namespace, "{kind} subject");
        }
    }
    let container = operator_container(&docs);
    let image = container["image"].as_str().unwrap();
    assert_eq!(image, format!("{OPERATOR_IMAGE}:{}", app_version()));
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
}
