//! The committed CRD is the generated one, its schema is structural, and its CEL rules refuse the
//! invalid combinations the issue lists.

mod common;

use common::{openapi_schema, repo_root, validation_errors};
use serde_json::{Value, json};

const CRD_FILE: &str = "crds/npmregistries.npmregistry.dev.yaml";

#[test]
fn committed_crd_matches_generated_output() {
    let path = repo_root().join(CRD_FILE);
    let generated = operator::crd::crd_yaml();
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).expect("write CRD");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{CRD_FILE} is stale: run `cargo run -p operator -- crd > {CRD_FILE}` (or UPDATE_CRD=1 cargo test -p operator --test crd)"
    );
}

#[test]
fn crd_subcommand_prints_the_committed_file() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_npm-registry-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(output.status.success());
    let committed = std::fs::read_to_string(repo_root().join(CRD_FILE)).unwrap();
    assert!(
        String::from_utf8(output.stdout).unwrap() == committed,
        "`npm-registry-operator crd` differs from {CRD_FILE}"
    );
}

#[test]
fn crd_names_printer_columns_and_status_subresource() {
    let crd = serde_json::to_value(operator::crd::crd()).unwrap();
    assert_eq!(crd["metadata"]["name"], "npmregistries.npmregistry.dev");
    assert_eq!(crd["spec"]["group"], "npmregistry.dev");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "NpmRegistry");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["npmreg"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Ready", "Reason", "URL", "Replicas", "Age"]);
}

/// Walks every schema node with its path.
fn walk<'a>(path: String, node: &'a Value, visit: &mut dyn FnMut(&str, &'a Value)) {
    visit(&path, node);
    let Some(map) = node.as_object() else { return };
    if let Some(Value::Object(props)) = map.get("properties") {
        for (name, child) in props {
            walk(format!("{path}.{name}"), child, visit);
        }
    }
    if let Some(items) = map.get("items") {
        walk(format!("{path}[]"), items, visit);
    }
    if let Some(additional @ Value::Object(_)) = map.get("additionalProperties") {
        walk(format!("{path}{{}}"), additional, visit);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = map.get(key) {
            for (i, b) in branches.iter().enumerate() {
                walk(format!("{path}.{key}[{i}]"), b, visit);
            }
        }
    }
}

/// The rules of https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema
/// plus the usual schemars pitfalls.
#[test]
fn schema_is_structural() {
    let schema = openapi_schema();
    let mut problems = Vec::new();
    walk(String::new(), &schema, &mut |path, node| {
        let map = node.as_object().unwrap();
        let int_or_string = map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        let ty = map.get("type").and_then(Value::as_str);
        if ty.is_none() && !int_or_string && !preserve {
            problems.push(format!("{path}: no type"));
        }
        if int_or_string && ty.is_some() {
            problems.push(format!("{path}: int-or-string must not have a type"));
        }
        for key in [
            "anyOf",
            "oneOf",
            "allOf",
            "not",
            "$ref",
            "definitions",
            "$defs",
            "$schema",
            "const",
        ] {
            if map.contains_key(key) {
                problems.push(format!("{path}: {key} is not allowed here"));
            }
        }
        if let Some(nullable) = map.get("nullable") {
            if nullable != &Value::Bool(true) {
                problems.push(format!("{path}: nullable other than true"));
            }
            if ty.is_none() && !int_or_string {
                problems.push(format!("{path}: nullable without a type"));
            }
        }
        if let Some(Value::Array(values)) = map.get("enum")
            && values.iter().any(Value::is_null)
        {
            problems.push(format!("{path}: null in enum"));
        }
        if map.get("default") == Some(&Value::Null) {
            problems.push(format!("{path}: null default"));
        }
        if ty == Some("integer") {
            let format = map.get("format").and_then(Value::as_str);
            if !matches!(format, Some("int32" | "int64")) {
                problems.push(format!("{path}: integer format {format:?} (must be int32 or int64)"));
            }
        }
        if map.get("uniqueItems") == Some(&Value::Bool(true)) {
            problems.push(format!("{path}: uniqueItems is not supported"));
        }
        if map.contains_key("properties") && map.contains_key("additionalProperties") {
            problems.push(format!("{path}: properties and additionalProperties together"));
        }
        if ty == Some("array") && !map.contains_key("items") {
            problems.push(format!("{path}: array without items"));
        }
        if map.get("x-kubernetes-list-type") == Some(&json!("map")) {
            let keys = map["x-kubernetes-list-map-keys"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let required = map["items"]["required"].as_array().cloned().unwrap_or_default();
            for key in keys {
                if !required.contains(&key) {
                    problems.push(format!("{path}: list-map key {key} is not required"));
                }
            }
        }
    });
    assert!(
        problems.is_empty(),
        "schema is not structural:\n{}",
        problems.join("\n")
    );
}

#[test]
fn quantities_are_int_or_string() {
    let schema = openapi_schema();
    let spec = &schema["properties"]["spec"]["properties"];
    let size = &spec["storage"]["properties"]["volume"]["properties"]["size"];
    assert_eq!(size["x-kubernetes-int-or-string"], true, "{size}");
    for key in ["limits", "requests"] {
        let value = &spec["resources"]["properties"][key]["additionalProperties"];
        assert_eq!(value["x-kubernetes-int-or-string"], true, "resources.{key}: {value}");
    }
    let max_unavailable = &spec["podDisruptionBudget"]["properties"]["maxUnavailable"];
    assert_eq!(max_unavailable["x-kubernetes-int-or-string"], true);
    // Quantities written as numbers or strings are both accepted.
    let mut object = minimal_volume();
    object["spec"]["storage"]["volume"]["size"] = json!("20Gi");
    object["spec"]["resources"] = json!({"requests": {"cpu": 1, "memory": "256Mi"}});
    assert!(
        validation_errors(&object).is_empty(),
        "{:?}",
        validation_errors(&object)
    );
}

#[test]
fn every_cel_rule_compiles() {
    let schema = openapi_schema();
    let mut rules = Vec::new();
    walk(String::new(), &schema, &mut |path, node| {
        if let Some(Value::Array(list)) = node.get("x-kubernetes-validations") {
            for rule in list {
                rules.push((path.to_string(), rule["rule"].as_str().unwrap().to_string()));
                assert!(rule["message"].is_string(), "{path}: every rule carries a message");
            }
        }
    });
    assert!(rules.len() >= 7, "expected the CEL rules, found {rules:?}");
    for (path, rule) in rules {
        kube_cel::cel::Program::compile(&rule).unwrap_or_else(|e| panic!("{path}: `{rule}` does not compile: {e}"));
    }
}

/// The API server refuses a CRD whose rules may exceed the CEL cost budget (unbounded lists or
/// strings) or use variables out of scope.
#[test]
fn cel_rules_stay_within_scope_and_cost_budget() {
    let schema = openapi_schema();
    let mut warnings = Vec::new();
    walk(String::new(), &schema, &mut |path, node| {
        if let Some(Value::Array(list)) = node.get("x-kubernetes-validations") {
            let compiled = kube_cel::compile_schema(node);
            for rule in list {
                let rule = rule["rule"].as_str().unwrap();
                // (analyze_rule's scope check does not know macro variables such as `p` in `all(p, …)`.)
                for w in kube_cel::estimate_rule_cost(rule, &compiled) {
                    warnings.push(format!("{path}: `{rule}`: {}", w.message));
                }
            }
        }
    });
    assert!(warnings.is_empty(), "{}", warnings.join("\n"));
}

fn minimal_volume() -> Value {
    json!({
        "apiVersion": "npmregistry.dev/v1alpha1",
        "kind": "NpmRegistry",
        "metadata": {"name": "npm", "namespace": "default"},
        "spec": {"storage": {"volume": {"size": "10Gi"}}}
    })
}

fn s3() -> Value {
    json!({"bucket": "my-bucket", "region": "eu-west-1"})
}

/// Asserts that `object` is refused and that one error message contains `expected`.
fn assert_refused(object: &Value, expected: &str) {
    let errors = validation_errors(object);
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "expected an error containing {expected:?}, got {errors:?}"
    );
}

#[test]
fn minimal_objects_are_accepted() {
    assert_eq!(validation_errors(&minimal_volume()), Vec::<String>::new());
    let mut object = minimal_volume();
    object["spec"]["storage"] = json!({"s3": s3()});
    object["spec"]["replicas"] = json!(3);
    assert_eq!(validation_errors(&object), Vec::<String>::new());
}

#[test]
fn cel_refuses_two_storage_kinds() {
    let mut object = minimal_volume();
    object["spec"]["storage"]["s3"] = s3();
    assert_refused(&object, "mutually exclusive");
}

#[test]
fn cel_refuses_no_storage_kind() {
    let mut object = minimal_volume();
    object["spec"]["storage"] = json!({});
    assert_refused(&object, "one of storage.volume or storage.s3 is required");
}

#[test]
fn cel_refuses_replicas_or_hpa_on_read_write_once() {
    let mut object = minimal_volume();
    object["spec"]["replicas"] = json!(2);
    assert_refused(&object, "ReadWriteOnce volume allows one replica");

    let mut object = minimal_volume();
    object["spec"]["autoscaling"] = json!({"maxReplicas": 4});
    assert_refused(&object, "ReadWriteOnce volume allows one replica");

    // ReadWriteMany (EFS) may scale.
    let mut object = minimal_volume();
    object["spec"]["storage"]["volume"]["accessMode"] = json!("ReadWriteMany");
    object["spec"]["replicas"] = json!(3);
    assert_eq!(validation_errors(&object), Vec::<String>::new());
}

#[test]
fn cel_refuses_tls_without_host() {
    let mut object = minimal_volume();
    object["spec"]["ingress"] = json!({"className": "nginx", "tls": {"secretName": "npm-tls"}});
    assert_refused(&object, "ingress.tls requires ingress.host");
}

#[test]
fn cel_refuses_two_tls_sources_and_bad_references() {
    let mut object = minimal_volume();
    object["spec"]["ingress"] = json!({
        "host": "npm.example.com",
        "tls": {"secretName": "npm-tls", "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x"}
    });
    assert_refused(&object, "exactly one of tls.secretName or tls.certificateArn");

    let mut object = minimal_volume();
    object["spec"]["storage"]["volume"] = json!({"existingClaim": "data", "size": "1Gi"});
    assert_refused(&object, "existingClaim cannot be combined");

    let mut object = minimal_volume();
    object["spec"]["packages"] = json!([{"pattern": "**"}, {"pattern": "**"}]);
    assert_refused(&object, "package patterns must be unique");

    let mut object = minimal_volume();
    object["spec"]["storage"] = json!({"s3": s3()});
    object["spec"]["autoscaling"] = json!({"minReplicas": 5, "maxReplicas": 2});
    assert_refused(&object, "maxReplicas must be at least minReplicas");
}

#[test]
fn the_schema_refuses_names_that_cannot_name_the_children_naming_the_field() {
    for name in ["1npm", "Npm", "npm-", &"a".repeat(56)] {
        let mut object = minimal_volume();
        object["metadata"]["name"] = json!(name);
        assert_refused(&object, "/metadata/name");
    }
    let mut object = minimal_volume();
    object["metadata"]["name"] = json!("a".repeat(55));
    assert_eq!(validation_errors(&object), Vec::<String>::new());
    // The API server accepts only name and generateName under metadata.
    let metadata = &openapi_schema()["properties"]["metadata"];
    let keys: Vec<&String> = metadata["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["name"]);
    assert_eq!(metadata["properties"]["name"]["type"], "string");
}

fn updated(old: &Value, edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut new = old.clone();
    edit(&mut new);
    common::validation_errors_on_update(Some(old), &new)
}

#[test]
fn transition_rules_refuse_what_a_claim_cannot_change() {
    let old = minimal_volume();
    let errors = updated(&old, |o| {
        o["spec"]["storage"]["volume"]["accessMode"] = json!("ReadWriteMany")
    });
    assert!(
        errors.iter().any(|e| e.contains("accessMode cannot change")),
        "{errors:?}"
    );
    let errors = updated(&old, |o| {
        o["spec"]["storage"]["volume"]["storageClassName"] = json!("gp3")
    });
    assert!(
        errors.iter().any(|e| e.contains("storageClassName cannot change")),
        "{errors:?}"
    );
    let errors = updated(&old, |o| o["spec"]["storage"]["volume"]["size"] = json!("5Gi"));
    assert!(errors.iter().any(|e| e.contains("size cannot shrink")), "{errors:?}");
    // Without a size the claim is 10Gi: dropping it from 20Gi shrinks too.
    let mut big = minimal_volume();
    big["spec"]["storage"]["volume"]["size"] = json!("20Gi");
    let errors = updated(&big, |o| {
        o["spec"]["storage"]["volume"].as_object_mut().unwrap().remove("size");
    });
    assert!(errors.iter().any(|e| e.contains("size cannot shrink")), "{errors:?}");
}

#[test]
fn transition_rules_let_a_claim_grow_and_everything_else_change() {
    let old = minimal_volume();
    for edit in [
        |o: &mut Value| o["spec"]["storage"]["volume"]["size"] = json!("20Gi"),
        |o: &mut Value| o["spec"]["storage"]["volume"]["size"] = json!("10240Mi"),
        |o: &mut Value| o["spec"]["maxBodySize"] = json!("20mb"),
        |o: &mut Value| o["spec"]["storage"] = json!({"s3": {"bucket": "my-bucket"}}),
    ] {
        let errors = updated(&old, edit);
        assert!(errors.is_empty(), "{errors:?}");
    }
}

#[test]
fn cel_refuses_trusted_publishers_without_a_host_or_claims() {
    let publisher = json!({"issuer": "https://token.ci.example.com", "claims": {"repository": "acme/widgets"}});
    let mut object = minimal_volume();
    object["spec"]["packages"] = json!([{"pattern": "@internal/*", "trustedPublishers": [publisher]}]);
    assert_refused(&object, "trustedPublishers requires ingress.host");
    object["spec"]["ingress"] = json!({"host": "npm.example.com"});
    assert_eq!(validation_errors(&object), Vec::<String>::new());

    object["spec"]["packages"][0]["trustedPublishers"][0]["claims"] = json!({});
    assert_refused(&object, "names at least one claim");
    object["spec"]["packages"][0]["trustedPublishers"][0] =
        json!({"issuer": "http://token.ci.example.com", "claims": {"repository": "acme/widgets"}});
    assert_refused(&object, "https://");
}

#[test]
fn cel_refuses_rotation_of_a_secret_signing_key_and_bad_times() {
    let mut object = minimal_volume();
    object["spec"]["signing"] = json!({
        "keySecret": {"name": "npm-signing", "key": "key.pem"},
        "retiredKeys": [{"secretRef": {"name": "old", "key": "key.pem"}, "expires": "2026-06-01T00:00:00Z"}]
    });
    assert_eq!(validation_errors(&object), Vec::<String>::new());
    object["spec"]["signing"]["rotateBefore"] = json!("2027-01-01T00:00:00Z");
    assert_refused(&object, "rotateBefore applies to the key kept in storage");
    object["spec"]["signing"] = json!({"rotateBefore": "next tuesday"});
    assert_refused(&object, "rotateBefore");
    object["spec"]["signing"] = json!({"rotateBefore": "2027-01-01T00:00:00+01:00", "enabled": true});
    assert_eq!(validation_errors(&object), Vec::<String>::new());
}

#[test]
fn server_settings_are_checked_by_the_schema() {
    let mut object = minimal_volume();
    object["spec"]["server"] = json!({
        "trustProxy": ["10.0.0.0/8", "uniquelocal", "fd00::/8"],
        "keepAliveTimeout": "75s", "headersTimeout": "20s", "bodyTimeout": "30s",
        "maxConnections": 4096, "maxBodyBytesInFlight": "128mb"
    });
    object["spec"]["repair"] = json!({"interval": "30m", "grace": "10m"});
    assert_eq!(validation_errors(&object), Vec::<String>::new());
    object["spec"]["server"]["keepAliveTimeout"] = json!("forever");
    assert_refused(&object, "keepAliveTimeout");
    object["spec"]["server"] = json!({"maxConnections": 0});
    assert_refused(&object, "maxConnections");
}
