//! config/rbac/role.yaml grants what the operator calls, and nothing wider.

mod common;

use common::{repo_root, yaml_documents};
use operator::children::ChildKind;
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
    // Every kind of the children table: watched (its cache), applied (create + patch), and deleted
    // when the table says an unwanted one is.
    for &kind in ChildKind::ALL {
        let resource = kind.api_resource();
        let (group, plural) = (resource.group.as_str(), resource.plural.as_str());
        for verb in watch.iter().chain(&["create", "patch"]) {
            assert!(allowed(group, plural, verb), "{group}/{plural} {verb}");
        }
        assert_eq!(
            allowed(group, plural, "delete"),
            kind.deleted_when_unwanted(),
            "{group}/{plural}: delete exactly when unwanted children of it are deleted"
        );
    }
    // The server pods, read for status (why they are not ready).
    for verb in watch {
        assert!(allowed("", "pods", verb), "pods {verb}");
    }
    assert!(allowed("events.k8s.io", "events", "create") && allowed("events.k8s.io", "events", "patch"));
    for verb in ["get", "create", "patch"] {
        assert!(allowed("coordination.k8s.io", "leases", verb), "lease {verb}");
    }
}

#[test]
fn grants_nothing_wider() {
    let children: Vec<(String, String)> = ChildKind::ALL
        .iter()
        .map(|k| {
            let r = k.api_resource();
            (r.group, r.plural)
        })
        .collect();
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
        let known = children.contains(&(group.clone(), resource.clone()))
            || ["npmregistries", "npmregistries/status", "pods", "events", "leases"].contains(&resource.as_str());
        assert!(known, "{group}/{resource} is granted but the operator does not use it");
        if resource == "pods" {
            assert_eq!(verbs, ["get", "list", "watch"], "pods are only read");
        }
    }
}
