//! Helpers shared by the schema tests: the CRD's openAPIV3Schema, checked by JSON Schema and by CEL.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// The repository root (the operator crate's parent).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The `openAPIV3Schema` of the one served version.
pub fn openapi_schema() -> Value {
    let crd = operator::crd::crd();
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("schema");
    serde_json::to_value(schema).expect("schema serializes")
}

/// Every problem the API server would report for `object`: JSON Schema errors and failed CEL rules.
pub fn validation_errors(object: &Value) -> Vec<String> {
    validation_errors_on_update(None, object)
}

/// As [`validation_errors`], for an update from `old` (transition rules see `oldSelf`).
pub fn validation_errors_on_update(old: Option<&Value>, object: &Value) -> Vec<String> {
    let schema = openapi_schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles as JSON Schema");
    let mut errors: Vec<String> = validator
        .iter_errors(object)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect();
    unknown_fields(&schema, object, "", &mut errors);
    if let Err(cel) = kube_cel::Validator::new().validate(&schema, object, old) {
        errors.extend(
            cel.as_slice()
                .iter()
                .map(|e| format!("{}: {}", e.field_path, e.message)),
        );
    }
    errors
}

/// Parses every YAML document in `text` into JSON values.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Fields the API server would prune (and `kubectl apply --validate=strict` refuse).
fn unknown_fields(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, child) in map {
                // The root schema does not describe the standard fields.
                if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_path = format!("{path}/{key}");
                match (props.and_then(|p| p.get(key)), additional) {
                    (Some(s), _) => unknown_fields(s, child, &child_path, errors),
                    (None, Some(s @ Value::Object(_))) => unknown_fields(s, child, &child_path, errors),
                    _ => errors.push(format!("{child_path}: unknown field")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    unknown_fields(item_schema, item, &format!("{path}/{i}"), errors);
                }
            }
        }
        _ => {}
    }
}
