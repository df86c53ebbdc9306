//! Whole-document updates npm sends as `PUT /:pkg` or `PUT /:pkg/-rev/:rev` without attachments:
//! deprecate/undeprecate, unpublish of versions, dist-tag, star and owner changes. Only those
//! fields are taken from the client; everything else stays as stored.

use super::{PackageError, publish, tags};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub doc: Value,
    pub removed_versions: Vec<String>,
    pub deprecations_changed: bool,
    pub tags_changed: bool,
}

impl Update {
    /// Removing or deprecating versions needs the `unpublish` permission (as in Verdaccio);
    /// anything else needs `publish`.
    pub fn is_destructive(&self) -> bool {
        !self.removed_versions.is_empty() || self.deprecations_changed
    }
}

/// Checks the revision a client sent against the stored one. A client must send one: a
/// whole-document change made without knowing what it replaces would undo others' changes.
pub fn check_revision(stored: &Value, given: Option<&str>) -> Result<(), PackageError> {
    let current = stored
        .get("_rev")
        .and_then(Value::as_str)
        .unwrap_or(super::revision::INITIAL);
    match given {
        None => Err(PackageError::MissingRevision),
        Some(g) if g != current => Err(PackageError::StaleRevision {
            given: g.to_owned(),
            current: current.to_owned(),
        }),
        Some(_) => Ok(()),
    }
}

pub fn apply(stored: &Value, incoming: &Value, now: DateTime<Utc>) -> Result<Update, PackageError> {
    let inc = incoming
        .as_object()
        .ok_or_else(|| PackageError::BadRequest("body must be a JSON object".into()))?;
    let mut doc = stored.clone();
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| PackageError::Corrupt("not an object".into()))?;
    let mut removed = Vec::new();
    let mut deprecations_changed = false;

    if let Some(inc_versions) = inc.get("versions") {
        let inc_versions = inc_versions
            .as_object()
            .ok_or_else(|| PackageError::BadRequest("versions must be an object".into()))?;
        let versions = obj
            .get_mut("versions")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| PackageError::Corrupt("versions is not an object".into()))?;
        if let Some(new) = inc_versions.keys().find(|v| !versions.contains_key(*v)) {
            return Err(PackageError::BadRequest(format!(
                "version {new} is not published; new versions must be published with their tarball"
            )));
        }
        removed = versions
            .keys()
            .filter(|v| !inc_versions.contains_key(*v))
            .cloned()
            .collect();
        for v in &removed {
            versions.shift_remove(v);
        }
        for (v, manifest) in versions.iter_mut() {
            let wanted = inc_versions[v]
                .get("deprecated")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let m = manifest
                .as_object_mut()
                .ok_or_else(|| PackageError::Corrupt(format!("version {v} is not an object")))?;
            let current = m.get("deprecated").and_then(Value::as_str);
            if current != wanted {
                deprecations_changed = true;
                match wanted {
                    Some(msg) => m.insert("deprecated".into(), Value::String(msg.to_owned())),
                    None => m.remove("deprecated"),
                };
            }
        }
        if let Some(time) = obj.get_mut("time").and_then(Value::as_object_mut) {
            for v in &removed {
                time.shift_remove(v);
            }
        }
        if let Some(att) = obj.get_mut("_attachments").and_then(Value::as_object_mut) {
            att.retain(|_, a| {
                a.get("version")
                    .and_then(Value::as_str)
                    .is_none_or(|v| !removed.iter().any(|r| r == v))
            });
        }
    }

    let before_tags = tags::tags(&doc);
    if let Some(inc_tags) = inc.get("dist-tags").and_then(Value::as_object) {
        let mut new_tags = Map::new();
        for (tag, v) in inc_tags {
            let v = v
                .as_str()
                .ok_or_else(|| PackageError::BadRequest(format!("dist-tag {tag} must name a version")))?;
            tags::check_tag(tag)?;
            new_tags.insert(tag.clone(), Value::String(v.to_owned()));
        }
        doc["dist-tags"] = Value::Object(new_tags);
    }
    // Tags never point at versions that are gone; `latest` falls back to the highest left.
    let remaining: Vec<String> = doc["versions"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(t) = doc["dist-tags"].as_object_mut() {
        t.retain(|_, v| v.as_str().is_some_and(|v| remaining.iter().any(|r| r == v)));
    }
    if doc.pointer("/dist-tags/latest").is_none()
        && let Some(h) = tags::highest(&remaining)
    {
        tags::set(&mut doc, "latest", &h)?;
    }
    let tags_changed = tags::tags(&doc) != before_tags;

    for key in ["users", "maintainers"] {
        if let Some(v) = inc.get(key) {
            doc[key] = v.clone();
        }
    }
    if let Some(time) = doc.get_mut("time").and_then(Value::as_object_mut) {
        time.insert("modified".into(), Value::String(publish::timestamp(now)));
    }
    Ok(Update {
        doc,
        removed_versions: removed,
        deprecations_changed,
        tags_changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored() -> Value {
        json!({"_rev": "2-aa", "name": "p", "dist-tags": {"latest": "1.1.0", "old": "1.0.0"},
               "versions": {"1.0.0": {"version": "1.0.0", "dist": {"shasum": "x"}}, "1.1.0": {"version": "1.1.0"}},
               "time": {"1.0.0": "t", "1.1.0": "t", "modified": "t"},
               "_attachments": {"p-1.0.0.tgz": {"version": "1.0.0"}, "p-1.1.0.tgz": {"version": "1.1.0"}}})
    }

    #[test]
    fn deprecate_and_undeprecate() {
        let mut inc = stored();
        inc["versions"]["1.0.0"]["deprecated"] = json!("use 1.1");
        inc["versions"]["1.0.0"]["dist"] = json!({"shasum": "client cannot change this"});
        let u = apply(&stored(), &inc, Utc::now()).unwrap();
        assert!(u.deprecations_changed && u.is_destructive() && u.removed_versions.is_empty());
        assert_eq!(u.doc["versions"]["1.0.0"]["deprecated"], "use 1.1");
        assert_eq!(u.doc["versions"]["1.0.0"]["dist"]["shasum"], "x");
        let mut undo = u.doc.clone();
        undo["versions"]["1.0.0"]["deprecated"] = json!("");
        let u2 = apply(&u.doc, &undo, Utc::now()).unwrap();
        assert!(u2.doc["versions"]["1.0.0"].get("deprecated").is_none());
    }

    #[test]
    fn unpublish_latest_moves_the_tag() {
        let mut inc = stored();
        inc["versions"].as_object_mut().unwrap().remove("1.1.0");
        inc["dist-tags"] = json!({"latest": "1.1.0", "old": "1.0.0"}); // a client that did not fix tags
        let u = apply(&stored(), &inc, Utc::now()).unwrap();
        assert_eq!(u.removed_versions, ["1.1.0"]);
        assert_eq!(u.doc["dist-tags"], json!({"old": "1.0.0", "latest": "1.0.0"}));
        assert!(u.doc["time"].get("1.1.0").is_none());
        assert!(u.doc["_attachments"].get("p-1.1.0.tgz").is_none());
    }

    #[test]
    fn new_versions_and_stale_revisions_are_refused() {
        let mut inc = stored();
        inc["versions"]["9.0.0"] = json!({});
        assert!(matches!(
            apply(&stored(), &inc, Utc::now()),
            Err(PackageError::BadRequest(_))
        ));
        assert!(check_revision(&stored(), Some("2-aa")).is_ok());
        assert_eq!(check_revision(&stored(), None), Err(PackageError::MissingRevision));
        assert!(matches!(
            check_revision(&stored(), Some("1-zz")),
            Err(PackageError::StaleRevision { .. })
        ));
    }

    #[test]
    fn star_only_touches_users() {
        let u = apply(
            &stored(),
            &json!({"_id": "p", "_rev": "2-aa", "users": {"bob": true}}),
            Utc::now(),
        )
        .unwrap();
        assert!(!u.is_destructive() && !u.tags_changed);
        assert_eq!(u.doc["users"]["bob"], true);
        assert_eq!(u.doc["versions"].as_object().unwrap().len(), 2);
    }
}
