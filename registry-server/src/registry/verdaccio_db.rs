//! Verdaccio's list of locally published packages (`.verdaccio-db.json`, or the S3 plugin's
//! `verdaccio-s3-db.json`: the backend names it), kept so Verdaccio can serve our storage and we
//! can serve its storage; the `secret` and other keys are preserved.

use super::{RegistryError, Result};
use crate::package::PackageName;
use crate::storage::Storage;
use crate::storage::document::{self, Step};
use bytes::Bytes;
use serde_json::{Value, json};

pub async fn read(storage: &dyn Storage) -> Result<Vec<String>> {
    let Some(v) = storage.read(&storage.package_list_key()).await? else {
        return Ok(Vec::new());
    };
    let doc: Value = serde_json::from_slice(&v.bytes).unwrap_or_else(|_| json!({}));
    Ok(doc
        .get("list")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default())
}

/// Adds or removes one name, keeping the rest of the document (one that does not parse is
/// started again: Verdaccio rebuilds it the same way).
async fn change(storage: &dyn Storage, name: &PackageName, add: bool) -> Result<()> {
    let key = storage.package_list_key();
    document::update_raw(storage, &key, "the list of local packages", |current| {
        let mut doc: Value = current
            .and_then(|v| serde_json::from_slice(&v.bytes).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        if !doc.get("list").is_some_and(Value::is_array) {
            doc["list"] = json!([]);
        }
        let list = doc["list"].as_array_mut().expect("set above");
        let present = list.iter().any(|v| v.as_str() == Some(name.as_str()));
        match (add, present) {
            (true, true) | (false, false) => return Ok::<_, RegistryError>(Step::Keep(())),
            (true, false) => list.push(Value::String(name.to_string())),
            (false, true) => list.retain(|v| v.as_str() != Some(name.as_str())),
        }
        Ok(Step::Write(
            Bytes::from(serde_json::to_vec(&doc).expect("JSON serializes")),
            (),
        ))
    })
    .await
}

pub async fn add(storage: &dyn Storage, name: &PackageName) -> Result<()> {
    change(storage, name, true).await
}

pub async fn remove(storage: &dyn Storage, name: &PackageName) -> Result<()> {
    change(storage, name, false).await
}
