//! A package seen through local data and an uplink's: upstream versions filtered by the rule's
//! quarantine and block list, then local versions and dist-tags laid over them (local wins, as in
//! Verdaccio).

use super::range::NameRange;
use super::tags;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::time::Duration;

/// Which upstream versions a rule hides.
#[derive(Debug, Clone, Default)]
pub struct VersionFilter {
    /// Versions younger than this (by the upstream's `time`) are hidden.
    pub min_age: Option<Duration>,
    /// `name` (the whole package) or `name@range` entries.
    pub block: Vec<NameRange>,
}

impl VersionFilter {
    pub fn is_empty(&self) -> bool {
        self.min_age.is_none() && self.block.is_empty()
    }

    fn blocks(&self, name: &str, version: &str) -> bool {
        if self.block.is_empty() {
            return false;
        }
        self.block.iter().any(|entry| entry.covers(name, version))
    }

    fn too_young(&self, published: Option<&str>, now: DateTime<Utc>) -> bool {
        let Some(min_age) = self.min_age else { return false };
        match published.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
            Some(t) => now.signed_duration_since(t).to_std().map_or(true, |age| age < min_age),
            // No publish time: the age cannot be proven, so the version stays hidden.
            None => true,
        }
    }

    /// Whether one upstream version is hidden (`published`: its `time` entry).
    pub fn hides(&self, name: &str, version: &str, published: Option<&str>, now: DateTime<Utc>) -> bool {
        self.blocks(name, version) || self.too_young(published, now)
    }

    /// Removes hidden versions from an upstream packument and repoints dist-tags that named one.
    pub fn apply(&self, name: &str, doc: &mut Value, now: DateTime<Utc>) {
        if self.is_empty() {
            return;
        }
        let time = doc.get("time").cloned().unwrap_or(Value::Null);
        let Some(versions) = doc.get_mut("versions").and_then(Value::as_object_mut) else {
            return;
        };
        versions.retain(|v, _| !self.hides(name, v, time.get(v).and_then(Value::as_str), now));
        let visible: Vec<String> = versions.keys().cloned().collect();
        if let Some(tags) = doc.get_mut("dist-tags").and_then(Value::as_object_mut) {
            let fallback = tags::highest(&visible);
            for (_, v) in tags.iter_mut() {
                if !v.as_str().is_some_and(|v| visible.iter().any(|x| x == v)) {
                    *v = fallback.clone().map(Value::String).unwrap_or(Value::Null);
                }
            }
            tags.retain(|_, v| !v.is_null());
        }
    }
}

/// Lays local data over (filtered) upstream data. `None` when neither has the package.
pub fn merge(local: Option<&Value>, upstream: Option<Value>) -> Option<Value> {
    match (local, upstream) {
        (None, None) => None,
        (Some(l), None) => Some(l.clone()),
        (None, Some(u)) => Some(u),
        (Some(l), Some(mut u)) => {
            let obj = u.as_object_mut()?;
            for key in ["versions", "time", "dist-tags"] {
                let mut merged: Map<String, Value> =
                    obj.get(key).and_then(Value::as_object).cloned().unwrap_or_default();
                if let Some(local) = l.get(key).and_then(Value::as_object) {
                    for (k, v) in local {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                obj.insert(key.to_owned(), Value::Object(merged));
            }
            for (k, v) in l.as_object()? {
                if !["versions", "time", "dist-tags"].contains(&k.as_str()) {
                    obj.insert(k.clone(), v.clone());
                }
            }
            Some(u)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entries(list: &[&str]) -> Vec<NameRange> {
        list.iter().map(|e| NameRange::parse(e).unwrap()).collect()
    }

    fn upstream(now: DateTime<Utc>) -> Value {
        let day = chrono::Duration::days(1);
        json!({"name": "lib", "dist-tags": {"latest": "1.2.0", "next": "2.0.0-rc.1"},
               "time": {"1.0.0": (now - day * 30).to_rfc3339(), "1.1.0": (now - day * 10).to_rfc3339(),
                        "1.2.0": (now - day).to_rfc3339(), "2.0.0-rc.1": (now - day).to_rfc3339()},
               "versions": {"1.0.0": {}, "1.1.0": {}, "1.2.0": {}, "2.0.0-rc.1": {}}})
    }

    #[test]
    fn quarantine_hides_young_versions_and_moves_tags() {
        let now = Utc::now();
        let mut doc = upstream(now);
        let f = VersionFilter {
            min_age: Some(Duration::from_secs(7 * 86400)),
            block: vec![],
        };
        f.apply("lib", &mut doc, now);
        let versions: Vec<_> = doc["versions"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(versions, ["1.0.0", "1.1.0"]);
        assert_eq!(doc["dist-tags"], json!({"latest": "1.1.0", "next": "1.1.0"}));
    }

    #[test]
    fn block_list_by_name_and_range() {
        let now = Utc::now();
        let mut doc = upstream(now);
        VersionFilter {
            min_age: None,
            block: entries(&["lib@>=1.1.0 <2.0.0-0"]),
        }
        .apply("lib", &mut doc, now);
        let versions: Vec<_> = doc["versions"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(versions, ["1.0.0", "2.0.0-rc.1"]);
        assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
        let mut doc = upstream(now);
        VersionFilter {
            min_age: None,
            block: entries(&["lib"]),
        }
        .apply("lib", &mut doc, now);
        assert!(doc["versions"].as_object().unwrap().is_empty());
        assert!(doc["dist-tags"].as_object().unwrap().is_empty());
        let mut doc = upstream(now);
        VersionFilter {
            min_age: None,
            block: entries(&["lib@1.0.0 || >=2.0.0-0"]),
        }
        .apply("lib", &mut doc, now);
        let versions: Vec<_> = doc["versions"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(versions, ["1.1.0", "1.2.0"]);
        let mut scoped = json!({"versions": {"1.0.0": {}}, "dist-tags": {"latest": "1.0.0"}});
        VersionFilter {
            min_age: None,
            block: entries(&["@s/x@1.0.0"]),
        }
        .apply("@s/x", &mut scoped, now);
        assert!(scoped["versions"].as_object().unwrap().is_empty());
    }

    #[test]
    fn local_wins() {
        let local = json!({"name": "lib", "_rev": "3-a", "dist-tags": {"latest": "9.0.0"},
                           "versions": {"1.0.0": {"mine": true}, "9.0.0": {}}, "time": {"9.0.0": "t"}});
        let m = merge(Some(&local), Some(upstream(Utc::now()))).unwrap();
        assert_eq!(m["versions"]["1.0.0"]["mine"], true);
        assert_eq!(m["versions"].as_object().unwrap().len(), 5);
        assert_eq!(m["dist-tags"]["latest"], "9.0.0");
        assert_eq!(m["dist-tags"]["next"], "2.0.0-rc.1");
        assert_eq!(m["_rev"], "3-a");
        assert!(merge(None, None).is_none());
    }
}
