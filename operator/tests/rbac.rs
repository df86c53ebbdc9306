//! config/rbac/role.yaml grants what the operator calls, and nothing wider.

mod common;

use common::{repo_root, yaml_documents};
use serde_json::Value;

fn rules() -> Vec<(String, String, Vec<String>)> {
    let text = std::fs::read_to_string(repo_root().join("config/rbac/role.yaml")).unwrap();
    let mut out = Vec::new();
    for doc in yaml_documents(&text) {
        for rule in doc["rules"].as_array().unwrap() {
            let strings = |v: &Value| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            };
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    out.push((group.clone(), resource, strings(&rule["verbs"])));
                }
            }
        }
    }
    out
}

fn allowed(group: &str, resource: &str, verb: &str) -> bool {
    rules()
        .iter()
        .any(|(g, r, verbs)| g == group && r == resource && verbs.iter().any(|v| v == verb))
}

#[test]
fn grants_every_call_the_operator_makes() {
    let watch = ["get", "list", "watch"];
    for verb in watch {
        assert!(allowed("npmregistry.dev", "npmregistries", verb), "{verb}");
    }
    assert!(allowed("npmregistry.dev", "npmregistries/status", "patch"));
    let children = [
        ("", "configmaps"),
        ("", "services"),
        ("", "serviceaccounts"),
        ("", "persistentvolumeclaims"),
        ("apps", "deployments"),
        ("networking.k8s.io", "ingresses"),
        ("policy", "poddisruptionbudgets"),
        ("autoscaling", "horizontalpodautoscalers"),
    ];
    for (group, resource) in children {
        for verb in watch.iter().chain(&["create", "patch"]) {
            assert!(allowed(group, resource, verb), "{group}/{resource} {verb}");
        }
    }
    for (group, resource) in &children[5..] {
        assert!(allowed(group, resource, "delete"), "orphans of {resource} are deleted");
    }
    assert!(allowed("events.k8s.io", "events", "create") && allowed("events.k8s.io", "events", "patch"));
    for verb in ["get", "create", "patch"] {
        assert!(allowed("coordination.k8s.io", "leases", verb), "lease {verb}");
    }
}

#[test]
fn grants_nothing_wider() {
    for (group, resource, verbs) in rules() {
        assert!(
            group != "*" && resource != "*" && !verbs.iter().any(|v| v == "*"),
            "wildcard in {group}/{resource}"
        );
        assert_ne!(resource, "secrets", "the operator never reads Secrets");
        assert!(
            !(resource == "npmregistries" && verbs.iter().any(|v| v == "patch" || v == "update")),
            "never writes spec"
        );
    }
    // Children the garbage collector removes are never deleted by the operator.
    assert!(!allowed("", "persistentvolumeclaims", "delete"));
}
