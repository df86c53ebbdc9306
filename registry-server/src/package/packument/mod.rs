//! Views of a packument: the full document clients read (internal fields dropped, tarball URLs
//! pointing at us), the abbreviated "corgi" install form, and one version.
//!
//! The read path cuts them from the stored bytes without building a tree of values
//! ([`index`] finds the parts, [`views`] assembles [`template`]s of slices of those bytes); the
//! one-off `?write=true` read of a modification uses [`client_view`] on a parsed document.

mod emit;
pub mod index;
pub mod template;
mod views;
#[cfg(test)]
mod views_tests;

pub use index::{IndexError, Source};
pub use template::{Part, Template};
pub use views::{Inputs, Origin, Packument, Sign, UpstreamTarball};

use super::PackageName;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Stored bookkeeping (ours and Verdaccio's) that clients never see.
const INTERNAL_FIELDS: &[&str] = &["_uplinks", "_distfiles"];

/// Whether a stored document is Verdaccio's copy of an upstream package (its `_uplinks` names
/// the uplinks it was fetched from) rather than a package published to it. Verdaccio records its
/// local publishes in its package list; a document it only cached is not in it. Such a document
/// stays a cache here: not listed, not searched, not counted. Ours always have `_uplinks: {}`.
pub fn is_upstream_copy(doc: &Value) -> bool {
    doc.get("_uplinks")
        .and_then(Value::as_object)
        .is_some_and(|u| !u.is_empty())
}

/// `base` (ending in `/`) + the canonical tarball path.
pub fn tarball_url(base: &str, name: &PackageName, file: &str) -> String {
    format!("{base}{name}/-/{file}")
}

/// The tarball file name a version's `dist.tarball` points at (its last path segment).
pub fn tarball_file(name: &PackageName, version: &str, manifest: &Value) -> String {
    manifest
        .pointer("/dist/tarball")
        .and_then(Value::as_str)
        .and_then(|u| u.rsplit('/').next())
        .filter(|f| PackageName::check_filename(f).is_ok())
        .map(str::to_owned)
        .unwrap_or_else(|| name.tarball_filename(version))
}

/// The full document as clients read it.
pub fn client_view(stored: &Value, name: &PackageName, base: &str) -> Value {
    let mut doc = stored.clone();
    let Some(obj) = doc.as_object_mut() else {
        return doc;
    };
    for f in INTERNAL_FIELDS {
        obj.remove(*f);
    }
    obj.insert("_attachments".into(), Value::Object(Map::new()));
    obj.entry("_id").or_insert_with(|| Value::String(name.to_string()));
    obj.entry("name").or_insert_with(|| Value::String(name.to_string()));
    if let Some(versions) = obj.get_mut("versions").and_then(Value::as_object_mut) {
        for (version, manifest) in versions.iter_mut() {
            let file = tarball_file(name, version, manifest);
            if let Some(dist) = manifest.get_mut("dist").and_then(Value::as_object_mut) {
                dist.insert("tarball".into(), Value::String(tarball_url(base, name, &file)));
            }
        }
    }
    hoist_latest(obj);
    doc
}

fn hoist_latest(obj: &mut Map<String, Value>) {
    let latest = obj
        .get("dist-tags")
        .and_then(|t| t.get("latest"))
        .and_then(Value::as_str)
        .and_then(|v| obj.get("versions")?.get(v))
        .cloned();
    if let Some(Value::Object(latest)) = latest {
        for f in &index::FIELDS[index::HOISTED_FIELDS] {
            if !obj.contains_key(*f)
                && let Some(v) = latest.get(*f)
            {
                obj.insert((*f).to_owned(), v.clone());
            }
        }
    }
}

/// The abbreviated install form of a full client view: the tree-of-values oracle the byte views
/// are tested against.
#[cfg(test)]
pub fn abbreviated_view(full: &Value) -> Value {
    let mut out = Map::new();
    for f in ["name", "dist-tags"] {
        if let Some(v) = full.get(f) {
            out.insert(f.to_owned(), v.clone());
        }
    }
    if let Some(m) = full.pointer("/time/modified") {
        out.insert("modified".into(), m.clone());
    }
    let mut versions = Map::new();
    if let Some(all) = full.get("versions").and_then(Value::as_object) {
        for (v, manifest) in all {
            let mut slim = Map::new();
            for f in &index::FIELDS[..index::ABBREVIATED_FIELDS] {
                if let Some(x) = manifest.get(*f) {
                    slim.insert((*f).to_owned(), x.clone());
                }
            }
            let has_install_script = manifest
                .get("scripts")
                .and_then(Value::as_object)
                .is_some_and(|s| index::INSTALL_SCRIPTS.iter().any(|k| s.contains_key(*k)));
            if has_install_script || manifest.get("hasInstallScript") == Some(&Value::Bool(true)) {
                slim.insert("hasInstallScript".into(), Value::Bool(true));
            }
            versions.insert(v.clone(), Value::Object(slim));
        }
    }
    out.insert("versions".into(), Value::Object(versions));
    Value::Object(out)
}

/// One version by number or dist-tag, from a client view (the oracle of [`Packument::version`]).
#[cfg(test)]
pub fn version_view(full: &Value, spec: &str) -> Option<Value> {
    let versions = full.get("versions")?;
    if let Some(v) = versions.get(spec) {
        return Some(v.clone());
    }
    let tagged = full.get("dist-tags")?.get(spec)?.as_str()?;
    versions.get(tagged).cloned()
}

/// `time.modified`, used for `Last-Modified`.
pub fn modified(doc: &Value) -> Option<DateTime<Utc>> {
    doc.pointer("/time/modified")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored() -> Value {
        json!({
            "_id": "@s/pkg", "name": "@s/pkg", "_rev": "3-abc",
            "dist-tags": {"latest": "1.0.0"},
            "time": {"created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-02T00:00:00.000Z", "1.0.0": "2024-01-02T00:00:00.000Z"},
            "versions": {"1.0.0": {
                "name": "@s/pkg", "version": "1.0.0", "description": "d", "repository": {"url": "git+x"},
                "main": "index.js", "scripts": {"postinstall": "node x", "test": "t"},
                "dependencies": {"a": "^1"},
                "dist": {"tarball": "http://elsewhere:1/@s/pkg/-/@s/pkg-1.0.0.tgz", "shasum": "s", "integrity": "i"}
            }},
            "_uplinks": {"npmjs": {}}, "_distfiles": {}, "_attachments": {"pkg-1.0.0.tgz": {"shasum": "s"}}
        })
    }

    #[test]
    fn client_view_rewrites_and_strips() {
        let name = PackageName::parse("@s/pkg").unwrap();
        let v = client_view(&stored(), &name, "https://reg.example/npm/");
        assert_eq!(
            v["versions"]["1.0.0"]["dist"]["tarball"],
            "https://reg.example/npm/@s/pkg/-/pkg-1.0.0.tgz"
        );
        assert!(v.get("_uplinks").is_none() && v.get("_distfiles").is_none());
        assert_eq!(v["_attachments"], json!({}));
        assert_eq!(v["_rev"], "3-abc");
        assert_eq!(v["description"], "d");
        assert_eq!(v["repository"]["url"], "git+x");
    }

    #[test]
    fn abbreviated_keeps_only_install_fields() {
        let name = PackageName::parse("@s/pkg").unwrap();
        let a = abbreviated_view(&client_view(&stored(), &name, "http://h/"));
        assert_eq!(a["modified"], "2024-01-02T00:00:00.000Z");
        assert!(a.get("time").is_none() && a.get("_rev").is_none());
        let v = &a["versions"]["1.0.0"];
        assert_eq!(v["dependencies"]["a"], "^1");
        assert_eq!(v["hasInstallScript"], true);
        assert!(v.get("main").is_none() && v.get("scripts").is_none() && v.get("description").is_none());
        let keys: Vec<_> = a.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["name", "dist-tags", "modified", "versions"]);
    }

    #[test]
    fn version_by_number_or_tag() {
        let s = stored();
        assert_eq!(version_view(&s, "1.0.0").unwrap()["version"], "1.0.0");
        assert_eq!(version_view(&s, "latest").unwrap()["version"], "1.0.0");
        assert!(version_view(&s, "2.0.0").is_none());
        assert!(version_view(&s, "beta").is_none());
    }
}
