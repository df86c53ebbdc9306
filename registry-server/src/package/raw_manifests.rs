//! A packument read for a publish. A publish only adds versions, so the manifests already stored
//! (the bulk of a large packument) stay raw JSON text: they are copied into the new document, not
//! parsed into values and serialized again. Everything else is parsed as usual.
//!
//! The result can be kept for the next publish to the same package ([`Stored::into_owned`],
//! [`Stored::absorb`]), which then needs no reading at all.

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Manifests by version, borrowed from the stored bytes or owned.
type RawMap<'a> = IndexMap<String, Cow<'a, RawValue>>;

/// Pretty JSON indents one level by this; a manifest sits two levels deep in a packument.
const MANIFEST_INDENT: &str = "\n    ";

/// The stored manifests that [`parse`] left out of the document.
#[derive(Default)]
pub struct Stored<'a>(RawMap<'a>);

/// The document with every stored version's manifest replaced by `null` (its key stays, so that
/// "does this version exist" still has its answer), and the manifests set aside. One pass over
/// the bytes.
pub fn parse(bytes: &[u8]) -> Result<(Value, Stored<'_>), serde_json::Error> {
    let Top { doc, stored } = serde_json::from_slice(bytes)?;
    Ok((Value::Object(doc), Stored(stored)))
}

struct Top<'a> {
    doc: Map<String, Value>,
    stored: RawMap<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Top<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TopVisitor(std::marker::PhantomData))
    }
}

struct TopVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TopVisitor<'a> {
    type Value = Top<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a packument object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Top<'a>, M::Error> {
        let mut doc = Map::new();
        let mut stored = RawMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if key == "versions" {
                match map.next_value::<Versions<'a>>()? {
                    Versions::Raw(versions) => {
                        let keys = versions.keys().map(|v| (v.clone(), Value::Null)).collect();
                        stored = versions;
                        Value::Object(keys)
                    }
                    Versions::Other(v) => v,
                }
            } else {
                map.next_value::<Value>()?
            };
            doc.insert(key, value);
        }
        Ok(Top { doc, stored })
    }
}

/// `versions` as it should be (an object: kept raw), or anything else (parsed, for the change to
/// deal with as it would with a whole document).
enum Versions<'a> {
    Raw(RawMap<'a>),
    Other(Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for Versions<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(VersionsVisitor(std::marker::PhantomData))
    }
}

struct VersionsVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for VersionsVisitor<'a> {
    type Value = Versions<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Versions<'a>, M::Error> {
        let mut raw = RawMap::new();
        while let Some((k, v)) = map.next_entry::<String, &'a RawValue>()? {
            raw.insert(k, Cow::Borrowed(v));
        }
        Ok(Versions::Raw(raw))
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Versions<'a>, S::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(Versions::Other(Value::Array(items)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Versions<'a>, E> {
        Ok(Versions::Other(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Versions<'a>, E> {
        Ok(Versions::Other(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Versions<'a>, E> {
        Ok(Versions::Other(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Versions<'a>, E> {
        Ok(Versions::Other(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Versions<'a>, E> {
        Ok(Versions::Other(Value::String(v.to_owned())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Versions<'a>, E> {
        Ok(Versions::Other(Value::Null))
    }
}

impl Stored<'_> {
    /// `doc` (the document after a change that only added versions) as pretty JSON, each `null`
    /// manifest put back from storage as it was.
    pub fn to_vec_pretty(&self, doc: &Value) -> Vec<u8> {
        serde_json::to_vec_pretty(&WithStored { doc, stored: &self.0 }).expect("a JSON value serializes")
    }

    /// One stored manifest, parsed (the `latest` one, for the search index).
    pub fn manifest(&self, version: &str) -> Option<Value> {
        serde_json::from_str(self.0.get(version)?.get()).ok()
    }

    /// The same manifests, no longer borrowed from the bytes they were read from.
    pub fn into_owned(self) -> Stored<'static> {
        Stored(
            self.0
                .into_iter()
                .map(|(k, v)| (k, Cow::Owned(v.into_owned())))
                .collect(),
        )
    }

    /// Sets the manifests that `doc` holds as values (the versions a change added) aside as raw
    /// text too, leaving `null` in their place: `(doc, self)` is then what [`parse`] gives for
    /// the bytes [`to_vec_pretty`](Self::to_vec_pretty) wrote, without reading them.
    pub fn absorb(&mut self, doc: &mut Value) {
        let Some(versions) = doc.get_mut("versions").and_then(Value::as_object_mut) else {
            return;
        };
        for (version, manifest) in versions.iter_mut().filter(|(_, m)| !m.is_null()) {
            // Indented as it sits in the pretty document, so the next write is byte for byte
            // what a write of the whole document would be (JSON strings hold no raw newline).
            let text = serde_json::to_string_pretty(manifest)
                .expect("a JSON value serializes")
                .replace('\n', MANIFEST_INDENT);
            let raw = RawValue::from_string(text).expect("serde_json writes valid JSON");
            self.0.insert(version.clone(), Cow::Owned(raw));
            *manifest = Value::Null;
        }
    }
}

struct WithStored<'a> {
    doc: &'a Value,
    stored: &'a RawMap<'a>,
}

impl Serialize for WithStored<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(top) = self.doc else {
            return self.doc.serialize(s);
        };
        let mut map = s.serialize_map(Some(top.len()))?;
        for (key, value) in top {
            match value {
                Value::Object(versions) if key == "versions" => map.serialize_entry(
                    key,
                    &VersionsOut {
                        versions,
                        stored: self.stored,
                    },
                )?,
                _ => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

struct VersionsOut<'a> {
    versions: &'a Map<String, Value>,
    stored: &'a RawMap<'a>,
}

impl Serialize for VersionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.versions.len()))?;
        for (version, manifest) in self.versions {
            match self.stored.get(version) {
                Some(raw) if manifest.is_null() => map.serialize_entry(version, raw.as_ref())?,
                _ => map.serialize_entry(version, manifest)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageName;
    use crate::package::publish::{self, Publish};
    use serde_json::json;

    fn stored_doc() -> Value {
        json!({
            "_id": "p", "name": "p", "_rev": "3-abc",
            "dist-tags": {"latest": "1.1.0", "beta": "2.0.0-beta.1"},
            "versions": {
                "1.0.0": {"name": "p", "version": "1.0.0", "deprecated": "old", "dist": {"tarball": "http://h/p/-/p-1.0.0.tgz", "shasum": "a"}},
                "1.1.0": {"name": "p", "version": "1.1.0", "description": "d \"quoted\" \u{e9}", "dist": {"tarball": "http://h/p/-/p-1.1.0.tgz", "shasum": "b"}},
                "2.0.0-beta.1": {"name": "p", "version": "2.0.0-beta.1", "dist": {"shasum": "c"}, "nested": [1, {"x": null}]}
            },
            "time": {"created": "2020-01-01T00:00:00.000Z", "1.0.0": "2020-01-01T00:00:00.000Z"},
            "readme": "# p", "maintainers": [{"name": "alice"}], "custom": {"kept": true}
        })
    }

    fn publish_of(version: &str, tag: &str) -> Publish {
        let mut manifest = serde_json::Map::new();
        manifest.insert("name".into(), json!("p"));
        manifest.insert("version".into(), json!(version));
        manifest.insert("description".into(), json!("new"));
        manifest.insert("dist".into(), json!({}));
        let mut dist_tags = serde_json::Map::new();
        dist_tags.insert(tag.into(), json!(version));
        Publish {
            versions: vec![publish::NewVersion {
                version: version.into(),
                manifest,
                filename: format!("p-{version}.tgz"),
                tarball: b"bytes".to_vec(),
                provenance: None,
            }],
            dist_tags,
            readme: Some("# new".into()),
        }
    }

    #[test]
    fn a_shallow_merge_writes_what_a_full_merge_writes() {
        let name = PackageName::parse("p").unwrap();
        let now = chrono::Utc::now();
        for pretty in [true, false] {
            let doc = stored_doc();
            let bytes = if pretty {
                serde_json::to_vec_pretty(&doc).unwrap()
            } else {
                serde_json::to_vec(&doc).unwrap()
            };
            for (version, tag) in [("1.2.0", "latest"), ("2.0.0-beta.2", "beta")] {
                let p = publish_of(version, tag);
                let full = publish::merge(&name, Some(doc.clone()), &p, "http://h/", now, Some("bob".into())).unwrap();
                let (shallow, stored) = parse(&bytes).unwrap();
                let merged = publish::merge(&name, Some(shallow), &p, "http://h/", now, Some("bob".into())).unwrap();
                let written: Value = serde_json::from_slice(&stored.to_vec_pretty(&merged)).unwrap();
                assert_eq!(written, full);
                // Same order of keys too, as a full write keeps it.
                assert_eq!(
                    serde_json::to_string(&written).unwrap(),
                    serde_json::to_string(&full).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_kept_document_writes_what_reading_the_written_bytes_would() {
        let name = PackageName::parse("p").unwrap();
        let now = chrono::Utc::now();
        let bytes = serde_json::to_vec_pretty(&stored_doc()).unwrap();
        let (doc, stored) = parse(&bytes).unwrap();
        let mut stored = stored.into_owned();
        let mut doc = publish::merge(&name, Some(doc), &publish_of("1.2.0", "latest"), "http://h/", now, None).unwrap();
        let first = stored.to_vec_pretty(&doc);
        stored.absorb(&mut doc);
        assert!(doc["versions"]["1.2.0"].is_null());
        // The next publish, from the kept document and from the bytes written.
        let p = publish_of("1.3.0", "latest");
        let kept = publish::merge(&name, Some(doc), &p, "http://h/", now, None).unwrap();
        let (reread, reread_stored) = parse(&first).unwrap();
        let reread = publish::merge(&name, Some(reread), &p, "http://h/", now, None).unwrap();
        let from_kept = stored.to_vec_pretty(&kept);
        assert_eq!(from_kept, reread_stored.to_vec_pretty(&reread));
        // And a whole-document write of the same content, byte for byte.
        let whole: Value = serde_json::from_slice(&from_kept).unwrap();
        assert_eq!(from_kept, serde_json::to_vec_pretty(&whole).unwrap());
    }

    #[test]
    fn existing_versions_are_still_refused() {
        let name = PackageName::parse("p").unwrap();
        let bytes = serde_json::to_vec(&stored_doc()).unwrap();
        let (shallow, _) = parse(&bytes).unwrap();
        let again = publish::merge(
            &name,
            Some(shallow),
            &publish_of("1.1.0", "latest"),
            "http://h/",
            chrono::Utc::now(),
            None,
        );
        assert_eq!(again, Err(crate::package::PackageError::VersionExists("1.1.0".into())));
    }

    #[test]
    fn documents_that_are_not_objects_are_errors() {
        assert!(parse(b"[1, 2]").is_err());
        assert!(parse(b"{\"versions\": ").is_err());
        // A `versions` that is not an object is kept as it is.
        let (doc, _) = parse(br#"{"versions": [1]}"#).unwrap();
        assert_eq!(doc, json!({"versions": [1]}));
    }
}
