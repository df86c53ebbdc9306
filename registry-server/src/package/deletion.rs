//! Tarball deletions recorded in the packument itself, so that they go through the package's
//! compare-and-swap path like every other change and no write can race them.
//!
//! A tarball is deleted in three steps: (1) a write of the packument that lists the file under
//! [`FIELD`] (only while no version names it), (2) the blob delete, (3) a write that drops the
//! entry. A publish whose new versions name a listed file waits until step 3: it cannot store its
//! tarball while a deleter may still remove it. A whole-package unpublish replaces the document
//! with a *tombstone* (no versions, its files listed) and, at step 3, deletes the tombstone.
//! Readers treat a tombstone as absent; a publish treats it as a new package. An entry older than
//! the repair grace period belongs to a deleter that died: the repair task (or a publish that
//! needs the file) claims it again and finishes the deletion.

use super::{PackageError, PackageName, packument};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The packument field listing tarballs being deleted: file name → when the deletion was claimed.
pub const FIELD: &str = "_deleting";

fn versions(doc: &Value) -> Option<&Map<String, Value>> {
    doc.get("versions").and_then(Value::as_object)
}

/// Whether `doc` stands for a package being unpublished: no versions, deletions under way.
/// Readers see no package; a publish starts a new one.
pub fn is_tombstone(doc: &Value) -> bool {
    doc.get(FIELD).is_some() && versions(doc).is_none_or(Map::is_empty)
}

/// A tombstone with nothing left to delete: the unpublish is over and the document goes.
pub fn is_finished(doc: &Value) -> bool {
    is_tombstone(doc) && pending(doc).next().is_none()
}

/// The files being deleted, each with the time its deletion was claimed (`None`: unreadable, so
/// treated as stale).
pub fn pending(doc: &Value) -> impl Iterator<Item = (&str, Option<DateTime<Utc>>)> {
    doc.get(FIELD)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(file, at)| {
            let at = at
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            (file.as_str(), at)
        })
}

/// Whether the deletion of `file` was claimed longer than `grace` ago (its deleter is gone).
pub fn is_stale(claimed: Option<DateTime<Utc>>, now: DateTime<Utc>, grace: chrono::Duration) -> bool {
    claimed.is_none_or(|at| now - at >= grace)
}

/// The tarball files the document's versions name.
pub fn named_files(name: &PackageName, doc: &Value) -> BTreeSet<String> {
    versions(doc)
        .into_iter()
        .flatten()
        .map(|(v, m)| packument::tarball_file(name, v, m))
        .collect()
}

/// Files the document's versions name that are being deleted: a write of it must wait.
pub fn blocked(name: &PackageName, doc: &Value) -> Vec<String> {
    let listed: Vec<&str> = pending(doc).map(|(f, _)| f).collect();
    if listed.is_empty() {
        return Vec::new();
    }
    named_files(name, doc)
        .into_iter()
        .filter(|f| listed.contains(&f.as_str()))
        .collect()
}

fn entries(doc: &mut Value) -> Result<&mut Map<String, Value>, PackageError> {
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| PackageError::Corrupt("not an object".into()))?;
    let field = obj.entry(FIELD).or_insert_with(|| Value::Object(Map::new()));
    if !field.is_object() {
        *field = Value::Object(Map::new());
    }
    Ok(field.as_object_mut().expect("set above"))
}

fn stamp(now: DateTime<Utc>) -> Value {
    Value::String(super::publish::timestamp(now))
}

/// Lists `files` as being deleted from now on. Refused for a file a version still names.
pub fn mark(name: &PackageName, doc: &mut Value, files: &[String], now: DateTime<Utc>) -> Result<(), PackageError> {
    let named = named_files(name, doc);
    if let Some(used) = files.iter().find(|f| named.contains(*f)) {
        return Err(PackageError::TarballInUse(used.clone()));
    }
    let entries = entries(doc)?;
    for f in files {
        entries.insert(f.clone(), stamp(now));
    }
    Ok(())
}

/// The tombstone of a whole-package unpublish: every version gone, the files they named and the
/// files already listed marked as being deleted now. Returns it with the files to delete.
pub fn tombstone(name: &PackageName, doc: &Value, now: DateTime<Utc>) -> (Value, Vec<String>) {
    let mut files = named_files(name, doc);
    if let Some(att) = doc.get("_attachments").and_then(Value::as_object) {
        files.extend(att.keys().filter(|f| PackageName::check_filename(f).is_ok()).cloned());
    }
    files.extend(pending(doc).map(|(f, _)| f.to_owned()));
    let marks: Map<String, Value> = files.iter().map(|f| (f.clone(), stamp(now))).collect();
    let tomb = json!({
        "_id": name.as_str(),
        "name": name.as_str(),
        "_rev": doc.get("_rev").cloned().unwrap_or(Value::Null),
        "versions": {},
        "dist-tags": {},
        // The creation time stays: it tells this package's search entries from a new one's.
        "time": {"created": doc.pointer("/time/created").cloned().unwrap_or(Value::Null), "unpublished": super::publish::timestamp(now)},
        FIELD: marks,
    });
    (tomb, files.into_iter().collect())
}

/// A placeholder for a package that has no document but leftover files to delete (a crashed
/// first publish): a tombstone, so a publish of the package waits for the files it would reuse.
pub fn placeholder(name: &PackageName, files: &[String], now: DateTime<Utc>) -> Value {
    let marks: Map<String, Value> = files.iter().map(|f| (f.clone(), stamp(now))).collect();
    json!({"_id": name.as_str(), "name": name.as_str(), "versions": {}, FIELD: marks})
}

/// Claims the deletion of `files` again (their entries are stale): same as marking, now.
pub fn reclaim(doc: &mut Value, files: &[String], now: DateTime<Utc>) -> Result<(), PackageError> {
    let entries = entries(doc)?;
    for f in files {
        entries.insert(f.clone(), stamp(now));
    }
    Ok(())
}

/// Drops the entries of `files` (deleted now). The field goes when empty, unless the document is
/// a tombstone (then [`is_finished`] says it is to be deleted).
pub fn unmark(doc: &mut Value, files: &[String]) {
    let tomb = is_tombstone(doc);
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    if let Some(entries) = obj.get_mut(FIELD).and_then(Value::as_object_mut) {
        for f in files {
            entries.shift_remove(f);
        }
        if entries.is_empty() && !tomb {
            obj.shift_remove(FIELD);
        }
    }
}

/// A change's result written over a tombstone: the deletions under way stay listed.
pub fn carry_over(tombstone: &Value, doc: &mut Value) {
    if let (Some(entries), Some(obj)) = (
        tombstone
            .get(FIELD)
            .filter(|e| e.as_object().is_some_and(|m| !m.is_empty())),
        doc.as_object_mut(),
    ) {
        obj.insert(FIELD.to_owned(), entries.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> PackageName {
        PackageName::parse("p").unwrap()
    }

    fn doc() -> Value {
        json!({"name": "p", "_rev": "3-a", "versions": {"1.0.0": {"dist": {"tarball": "http://h/p/-/p-1.0.0.tgz"}}, "1.1.0": {}},
               "_attachments": {"p-1.0.0.tgz": {}, "p-1.1.0.tgz": {}, "p-0.9.0.tgz": {}}})
    }

    #[test]
    fn a_tombstone_lists_every_file_and_reads_as_absent() {
        let now = Utc::now();
        let (tomb, files) = tombstone(&name(), &doc(), now);
        assert_eq!(files, ["p-0.9.0.tgz", "p-1.0.0.tgz", "p-1.1.0.tgz"]);
        assert!(is_tombstone(&tomb) && !is_finished(&tomb));
        assert_eq!(tomb["_rev"], "3-a");
        assert!(!is_tombstone(&doc()));
        let mut t = tomb.clone();
        unmark(&mut t, &files);
        assert!(is_finished(&t));
    }

    #[test]
    fn marking_a_file_a_version_names_is_refused() {
        let now = Utc::now();
        let mut d = doc();
        assert_eq!(
            mark(&name(), &mut d, &["p-1.1.0.tgz".into()], now),
            Err(PackageError::TarballInUse("p-1.1.0.tgz".into()))
        );
        mark(&name(), &mut d, &["p-0.9.0.tgz".into()], now).unwrap();
        assert_eq!(pending(&d).map(|(f, _)| f).collect::<Vec<_>>(), ["p-0.9.0.tgz"]);
        assert!(blocked(&name(), &d).is_empty());
        // A publish of 0.9.0 now would name a file being deleted.
        d["versions"]["0.9.0"] = json!({});
        assert_eq!(blocked(&name(), &d), ["p-0.9.0.tgz"]);
        unmark(&mut d, &["p-0.9.0.tgz".into()]);
        assert!(d.get(FIELD).is_none());
    }

    #[test]
    fn stale_claims_and_carry_over() {
        let now = Utc::now();
        let grace = chrono::Duration::seconds(60);
        assert!(!is_stale(Some(now), now, grace));
        assert!(is_stale(Some(now - grace), now, grace));
        assert!(is_stale(None, now, grace));
        let (tomb, _) = tombstone(&name(), &doc(), now);
        let mut fresh = json!({"name": "p", "versions": {"2.0.0": {}}});
        carry_over(&tomb, &mut fresh);
        assert_eq!(pending(&fresh).count(), 3);
        assert!(!is_tombstone(&fresh));
        let place = placeholder(&name(), &["p-1.0.0.tgz".into()], now);
        assert!(is_tombstone(&place));
    }
}
