//! Server-side apply with one field manager, skipped when the live object already matches, so a
//! steady state writes nothing.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

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
    Unchanged,
}

/// Applies `desired` unless the live object already carries it; returns the live object.
pub async fn apply<K>(api: &Api<K>, desired: &K) -> Result<(K, Outcome), kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    let mut desired = desired.clone();
    let hash = sha256_hex(serde_json::to_string(&desired).expect("objects serialize").as_bytes());
    desired
        .annotations_mut()
        .insert(APPLIED_HASH_ANNOTATION.into(), hash.clone());

    let live = api.get_opt(&name).await?;
    if let Some(live) = &live
        && live.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
        && is_subset(&to_value(&desired), &to_value(live))
    {
        return Ok((live.clone(), Outcome::Unchanged));
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&name, &params, &Patch::Apply(&desired)).await?;
    Ok((
        applied,
        if live.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        },
    ))
}

/// Deletes `name` if it exists and this owner controls it (never someone else's object).
pub async fn delete_owned<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<bool, kube::Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let Some(live) = api.get_opt(name).await? else {
        return Ok(false);
    };
    let owned = live
        .owner_references()
        .iter()
        .any(|o| o.uid == owner_uid && o.controller == Some(true));
    if !owned {
        return Ok(false);
    }
    api.delete(name, &DeleteParams::background()).await?;
    Ok(true)
}

fn to_value<K: Serialize>(object: &K) -> Value {
    serde_json::to_value(object).expect("objects serialize")
}

/// Every field of `want` is in `have` with the same value; the API server's defaults in `have` are
/// ignored. Lists must match item by item.
pub fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| is_subset(v, hv))),
        (Value::Array(w), Value::Array(h)) => w.len() == h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b)),
        _ => want == have,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::is_subset;

    #[test]
    fn server_defaults_do_not_count_as_drift() {
        let want = json!({"spec": {"replicas": 1, "template": {"containers": [{"name": "server"}]}}});
        let have = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600,
            "template": {"containers": [{"name": "server", "terminationMessagePath": "/dev/termination-log"}]}}});
        assert!(is_subset(&want, &have));
    }

    #[test]
    fn edits_and_missing_items_are_drift() {
        let want = json!({"spec": {"replicas": 1, "ports": [{"port": 4873}]}});
        assert!(!is_subset(
            &want,
            &json!({"spec": {"replicas": 3, "ports": [{"port": 4873}]}})
        ));
        assert!(!is_subset(&want, &json!({"spec": {"replicas": 1, "ports": []}})));
        assert!(!is_subset(&want, &json!({"spec": {"replicas": 1}})));
    }
}
