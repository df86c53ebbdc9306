//! Server-side apply with one field manager, skipped when the live object already carries what we
//! want, so a quiet cluster sees no write at all.
//!
//! "Carries" is semantic: the API server fills defaults, rewrites quantities in its canonical
//! spelling (`0.5` → `500m`, `1024Mi` → `1Gi`) and keeps list items other field managers added.
//! A field we stop setting is not visible in the live object, so the hash of the last applied
//! desired object rides along as an annotation. When an apply does go out, its outcome comes from
//! the resourceVersion: the API server's own no-op writes nothing and is reported as unchanged.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::quantity;
use crate::resources::sha256_hex;

/// The one field manager for everything the operator writes.
pub const FIELD_MANAGER: &str = "npm-registry-operator";
/// Hash of the last applied desired object: a removed field changes it, which a subset check misses.
pub const APPLIED_HASH_ANNOTATION: &str = "npmregistry.dev/applied-hash";

/// What an apply did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// Applied, and the API server found nothing to change (no write, no new resourceVersion).
    NoOp,
    /// Already up to date: no request sent.
    Unchanged,
}

/// `desired` with the annotation that records its hash.
pub fn stamped<K: Resource + Serialize + Clone>(desired: &K) -> K {
    let mut stamped = desired.clone();
    let hash = sha256_hex(serde_json::to_string(desired).expect("objects serialize").as_bytes());
    stamped.annotations_mut().insert(APPLIED_HASH_ANNOTATION.into(), hash);
    stamped
}

/// Whether `live` already is what applying `stamped` would make it.
pub fn up_to_date<K: Resource + Serialize>(stamped: &K, live: &K) -> bool {
    live.annotations().get(APPLIED_HASH_ANNOTATION) == stamped.annotations().get(APPLIED_HASH_ANNOTATION)
        && carries(&to_value(stamped), &to_value(live))
}

/// Applies `desired` unless `live` (what the cache or a GET saw; `None`: it does not exist) already
/// carries it. Returns the object as it now is.
pub async fn apply<K>(api: &Api<K>, live: Option<K>, desired: &K) -> Result<(K, Outcome), kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let stamped = stamped(desired);
    if let Some(live) = live.as_ref().filter(|live| up_to_date(&stamped, live)) {
        return Ok((live.clone(), Outcome::Unchanged));
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&desired.name_any(), &params, &Patch::Apply(&stamped)).await?;
    let outcome = match &live {
        None => Outcome::Created,
        Some(live) if live.resource_version() == applied.resource_version() => Outcome::NoOp,
        Some(_) => Outcome::Updated,
    };
    Ok((applied, outcome))
}

/// Deletes `live` if this owner controls it (never someone else's object).
pub async fn delete_owned<K>(api: &Api<K>, live: &K, owner_uid: &str) -> Result<bool, kube::Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let owned = live
        .owner_references()
        .iter()
        .any(|o| o.uid == owner_uid && o.controller == Some(true));
    if !owned {
        return Ok(false);
    }
    api.delete(&live.name_any(), &DeleteParams::background()).await?;
    Ok(true)
}

/// Whether `manager`'s apply owns the field at `path` (for example `["spec", "replicas"]`).
pub fn owns_field(entries: &[ManagedFieldsEntry], manager: &str, path: &[&str]) -> bool {
    entries
        .iter()
        .filter(|e| e.manager.as_deref() == Some(manager) && e.operation.as_deref() == Some("Apply"))
        .filter_map(|e| e.fields_v1.as_ref())
        .any(|fields| {
            path.iter()
                .try_fold(&fields.0, |node, key| node.get(format!("f:{key}")))
                .is_some()
        })
}

fn to_value<K: Serialize>(object: &K) -> Value {
    serde_json::to_value(object).expect("objects serialize")
}

/// Every field of `want` is in `have` with the same value, where "same" forgives what the API
/// server does to an applied object:
/// - fields only in `have` (defaults, status, other managers' fields) are ignored;
/// - strings that are the same Kubernetes quantity are equal; numbers compare by value;
/// - a list of objects (containers, ports, env, volumes: list maps, merged by key) matches when
///   each wanted item matches a distinct live item in order, so items another manager added
///   are not drift; a list of scalars (args, command, access modes) must match exactly.
pub fn carries(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| carries(v, hv))),
        (Value::Array(w), Value::Array(h)) if w.iter().any(Value::is_object) => {
            let mut live = h.iter();
            w.iter()
                .all(|item| live.by_ref().any(|candidate| carries(item, candidate)))
        }
        (Value::Array(w), Value::Array(h)) => w.len() == h.len() && w.iter().zip(h).all(|(a, b)| carries(a, b)),
        (Value::String(a), Value::String(b)) => quantity::same(a, b),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == have,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
    use serde_json::json;

    use super::*;

    #[test]
    fn server_defaults_do_not_count_as_drift() {
        let want = json!({"spec": {"replicas": 1, "template": {"containers": [{"name": "server"}]}}});
        let have = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600,
            "template": {"containers": [{"name": "server", "terminationMessagePath": "/dev/termination-log"}]}}});
        assert!(carries(&want, &have));
    }

    #[test]
    fn canonical_quantities_are_the_same_values() {
        let want =
            json!({"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"memory": "1.5Gi"}}});
        let have = json!({"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1536Mi"}}});
        assert!(carries(&want, &have));
        let more = json!({"resources": {"requests": {"cpu": "600m", "memory": "1Gi"}, "limits": {"memory": "1536Mi"}}});
        assert!(!carries(&want, &more));
    }

    #[test]
    fn items_other_managers_added_are_not_drift_but_missing_or_edited_ones_are() {
        let want = json!({"spec": {"ports": [{"name": "http", "port": 4873}]}});
        let extra = json!({"spec": {"ports": [{"name": "http", "port": 4873}, {"name": "metrics", "port": 9090}]}});
        assert!(carries(&want, &extra));
        let before = json!({"spec": {"ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 4873}]}});
        assert!(carries(&want, &before));
        assert!(!carries(&want, &json!({"spec": {"ports": []}})));
        assert!(!carries(
            &want,
            &json!({"spec": {"ports": [{"name": "http", "port": 80}]}})
        ));
        assert!(!carries(&want, &json!({"spec": {}})));
    }

    #[test]
    fn scalar_lists_must_match_exactly() {
        let want = json!({"args": ["--config", "/etc/npm-registry/config.yaml"]});
        assert!(carries(
            &want,
            &json!({"args": ["--config", "/etc/npm-registry/config.yaml"]})
        ));
        assert!(!carries(
            &want,
            &json!({"args": ["--config", "/etc/npm-registry/config.yaml", "--listen", "x"]})
        ));
        assert!(!carries(
            &want,
            &json!({"args": ["/etc/npm-registry/config.yaml", "--config"]})
        ));
    }

    #[test]
    fn edits_are_drift() {
        let want = json!({"spec": {"replicas": 1}});
        assert!(!carries(&want, &json!({"spec": {"replicas": 3}})));
        assert!(carries(&want, &json!({"spec": {"replicas": 1.0}})));
        assert!(!carries(&json!({"image": "a:1"}), &json!({"image": "a:2"})));
    }

    #[test]
    fn field_ownership_is_read_from_managed_fields() {
        let entry = |manager: &str, operation: &str, fields: Value| ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            fields_v1: Some(FieldsV1(fields)),
            ..ManagedFieldsEntry::default()
        };
        let entries = vec![
            entry(
                FIELD_MANAGER,
                "Apply",
                json!({"f:spec": {"f:replicas": {}, "f:template": {}}}),
            ),
            entry("kube-controller-manager", "Update", json!({"f:spec": {"f:paused": {}}})),
        ];
        assert!(owns_field(&entries, FIELD_MANAGER, &["spec", "replicas"]));
        assert!(!owns_field(&entries, FIELD_MANAGER, &["spec", "paused"]));
        assert!(!owns_field(&entries, "kube-controller-manager", &["spec", "replicas"]));
    }
}
