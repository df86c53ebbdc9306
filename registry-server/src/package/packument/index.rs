//! A packument's bytes and where its parts lie in them: one borrowed pass over the JSON (no tree
//! of values is built), kept as offsets so that the index lives beside the one buffer it
//! describes and every view can be cut from that buffer.
//!
//! One file because it is one parser: the visitors below share the offsets they record, and
//! splitting them would spread one pass over the JSON across files.

use bytes::Bytes;
use indexmap::IndexMap;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Where something is in the source bytes: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A member of a JSON object: where its key's opening quote is (when the key is spelled without
/// escapes, so that the source holds it as it is) and where its value is.
#[derive(Debug, Clone)]
pub struct Member {
    pub key: Box<str>,
    pub key_at: Option<u32>,
    pub value: Span,
}

impl Member {
    /// `"key": value` as the source spells it, when it does.
    pub fn span(&self) -> Option<Span> {
        self.key_at.map(|start| Span {
            start,
            end: self.value.end,
        })
    }
}

/// The members of a version's manifest that views use, by their position in [`FIELDS`].
pub const FIELDS: &[&str] = &[
    // The abbreviated form's (npm's list, plus `libc`, harmless for npm and needed by bun).
    "name",
    "version",
    "dist",
    "deprecated",
    "dependencies",
    "acceptDependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bin",
    "directories",
    "engines",
    "_hasShrinkwrap",
    "funding",
    "cpu",
    "os",
    "libc",
    // Hoisted to the top of the full document from the `latest` version when it lacks them
    // (npm does; yarn 1 relies on `repository` and `homepage` being there).
    "description",
    "homepage",
    "repository",
    "bugs",
    "keywords",
    "license",
    "author",
    "contributors",
];

/// How many of [`FIELDS`] the abbreviated form keeps (the first ones).
pub const ABBREVIATED_FIELDS: usize = 20;
/// Where the hoisted ones start in [`FIELDS`].
pub const HOISTED_FIELDS: std::ops::Range<usize> = 20..28;
const DIST: u8 = 2;

pub(super) const INSTALL_SCRIPTS: &[&str] = &["preinstall", "install", "postinstall"];

/// A manifest member of [`FIELDS`].
#[derive(Debug, Clone)]
pub struct Field {
    pub which: u8,
    pub key_at: Option<u32>,
    pub value: Span,
}

/// A version's `dist` object: where its `tarball` value is (or where one would go).
#[derive(Debug, Clone)]
pub struct Dist {
    pub value: Span,
    pub tarball: Option<Span>,
    pub integrity: Option<Span>,
    pub shasum: Option<Span>,
    pub empty: bool,
    /// Members it has.
    pub members: u32,
    /// What to cut to drop its `signatures` member (with the comma that joins it to another),
    /// when it has exactly one and the source spells what that takes.
    pub signatures: Option<Span>,
}

impl Dist {
    /// Where a missing `tarball` member is inserted: before the closing brace.
    pub fn close(&self) -> u32 {
        self.value.end - 1
    }
}

#[derive(Debug, Clone)]
pub struct Version {
    pub key_at: Option<u32>,
    pub value: Span,
    /// Whether the manifest is an object at all.
    pub object: bool,
    pub fields: Vec<Field>,
    pub dist: Option<Dist>,
    /// `scripts` names an install script, or `hasInstallScript` is `true`.
    pub install_script: bool,
}

impl Version {
    pub fn field(&self, which: usize) -> Option<&Field> {
        self.fields.iter().find(|f| f.which as usize == which)
    }
}

/// Why bytes are not a packument.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Shape(String),
    #[error("documents of 4 GiB and more are not supported")]
    TooLarge,
}

/// A packument's bytes and its index.
#[derive(Debug)]
pub struct Source {
    bytes: Bytes,
    pub top: Vec<Member>,
    pub versions: IndexMap<Box<str>, Version>,
    /// `time` entries, by key (versions, `created`, `modified`).
    pub time: IndexMap<Box<str>, Member>,
    /// String-valued `dist-tags`.
    pub dist_tags: IndexMap<Box<str>, Box<str>>,
    /// The top-level `name`, when it is a string.
    pub name: Option<Box<str>>,
    /// Whether `versions` is present and an object.
    pub has_versions: bool,
}

/// A string borrowed from the source when it is spelled without escapes (serde's own `Cow`
/// always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// An object's members in order, keys decoded, values raw.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Text(k)) = map.next_key::<Text<'de>>()? {
                    members.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Offsets of borrowed slices within the one source buffer.
struct Offsets {
    base: usize,
}

impl Offsets {
    fn at(&self, s: &str) -> u32 {
        (s.as_ptr() as usize - self.base) as u32
    }

    fn span(&self, raw: &RawValue) -> Span {
        let start = self.at(raw.get());
        Span {
            start,
            end: start + raw.get().len() as u32,
        }
    }

    /// The opening quote of a key the source spells as it is (a borrowed key: the `Cow` itself
    /// is the answer, hence no `&str`).
    #[allow(clippy::ptr_arg)]
    fn key_at(&self, key: &Cow<str>) -> Option<u32> {
        match key {
            Cow::Borrowed(k) => Some(self.at(k) - 1),
            Cow::Owned(_) => None,
        }
    }

    #[allow(clippy::ptr_arg)]
    fn member(&self, key: &Cow<str>, raw: &RawValue) -> Member {
        Member {
            key: key.as_ref().into(),
            key_at: self.key_at(key),
            value: self.span(raw),
        }
    }
}

fn members(raw: &RawValue) -> Option<Members<'_>> {
    raw.get()
        .starts_with('{')
        .then(|| serde_json::from_str(raw.get()).ok())
        .flatten()
}

/// The string a raw JSON value holds, if it is one.
pub fn string(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.starts_with('"') {
        return None;
    }
    serde_json::from_str::<Text>(raw).ok().map(|t| t.0)
}

/// The bytes to cut to drop a `dist`'s one `signatures` member: from the end of the member before
/// it, or, when it is the first, from its key to the next member's key.
fn signatures_cut(o: &Offsets, dist: &[(Cow<str>, &RawValue)]) -> Option<Span> {
    let mut found = dist.iter().enumerate().filter(|(_, (k, _))| k == "signatures");
    let (j, (key, value)) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let end = o.span(value).end;
    match j {
        0 => Some(Span {
            start: o.key_at(key)?,
            end: match dist.get(1) {
                Some((next, _)) => o.key_at(next)?,
                None => end,
            },
        }),
        _ => Some(Span {
            start: o.span(dist[j - 1].1).end,
            end,
        }),
    }
}

#[allow(clippy::ptr_arg)]
fn version(o: &Offsets, key: &Cow<str>, raw: &RawValue) -> Version {
    let mut v = Version {
        key_at: o.key_at(key),
        value: o.span(raw),
        object: false,
        fields: Vec::new(),
        dist: None,
        install_script: false,
    };
    let Some(Members(manifest)) = members(raw) else {
        return v;
    };
    v.object = true;
    for (k, value) in &manifest {
        match k.as_ref() {
            "scripts" => {
                if let Some(Members(scripts)) = members(value) {
                    v.install_script |= scripts.iter().any(|(s, _)| INSTALL_SCRIPTS.contains(&s.as_ref()));
                }
                continue;
            }
            "hasInstallScript" => {
                v.install_script |= value.get() == "true";
                continue;
            }
            _ => {}
        }
        let Some(which) = FIELDS.iter().position(|f| *f == k.as_ref()) else {
            continue;
        };
        let field = Field {
            which: which as u8,
            key_at: o.key_at(k),
            value: o.span(value),
        };
        // A repeated key: the last one counts, as in JSON.parse.
        v.fields.retain(|f| f.which != field.which);
        v.fields.push(field);
        if which == DIST as usize {
            v.dist = members(value).map(|Members(dist)| {
                let find = |name: &str| dist.iter().rev().find(|(k, _)| k == name).map(|(_, r)| o.span(r));
                Dist {
                    value: o.span(value),
                    tarball: find("tarball"),
                    integrity: find("integrity"),
                    shasum: find("shasum"),
                    empty: dist.is_empty(),
                    members: dist.len() as u32,
                    signatures: signatures_cut(o, &dist),
                }
            });
        }
    }
    v
}

impl Source {
    /// The key ids the versions' `dist.signatures` name: the signing keys an upstream uses.
    pub fn signature_keyids(&self) -> std::collections::BTreeSet<String> {
        #[derive(serde::Deserialize)]
        struct Signature {
            keyid: Option<String>,
        }
        let mut ids = std::collections::BTreeSet::new();
        for dist in self.versions.values().filter_map(|v| v.dist.as_ref()) {
            let Some(cut) = dist.signatures else {
                continue;
            };
            // The cut is the member (and a comma): its value is the array it holds.
            let text = &self.bytes[cut.range()];
            let Some(at) = text.iter().position(|&b| b == b'[') else {
                continue;
            };
            let mut values = serde_json::Deserializer::from_slice(&text[at..]).into_iter::<Vec<Signature>>();
            if let Some(Ok(signatures)) = values.next() {
                ids.extend(signatures.into_iter().filter_map(|s| s.keyid));
            }
        }
        ids
    }

    /// Indexes `bytes`, a JSON object. Nothing is checked beyond that (see [`Source::validate`]).
    pub fn parse(bytes: Bytes) -> Result<Self, IndexError> {
        if bytes.len() >= u32::MAX as usize {
            return Err(IndexError::TooLarge);
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| IndexError::Json(e.to_string()))?;
        let o = Offsets {
            base: text.as_ptr() as usize,
        };
        let Members(top_members) =
            serde_json::from_str::<Members>(text).map_err(|e| IndexError::Json(e.to_string()))?;
        let mut top = Vec::with_capacity(top_members.len());
        let mut versions = IndexMap::new();
        let mut time = IndexMap::new();
        let mut dist_tags = IndexMap::new();
        let mut name = None;
        let mut has_versions = false;
        for (key, raw) in &top_members {
            match key.as_ref() {
                "versions" => {
                    versions.clear();
                    has_versions = false;
                    if let Some(Members(vs)) = members(raw) {
                        has_versions = true;
                        versions.reserve(vs.len());
                        for (k, m) in &vs {
                            versions.insert(k.as_ref().into(), version(&o, k, m));
                        }
                    }
                }
                "time" => {
                    time.clear();
                    for (k, t) in members(raw).map(|m| m.0).unwrap_or_default() {
                        time.insert(k.as_ref().into(), o.member(&k, t));
                    }
                }
                "dist-tags" => {
                    dist_tags.clear();
                    for (k, t) in members(raw).map(|m| m.0).unwrap_or_default() {
                        if let Some(v) = string(t.get()) {
                            dist_tags.insert(k.as_ref().into(), v.as_ref().into());
                        }
                    }
                }
                "name" => name = string(raw.get()).map(|n| n.as_ref().into()),
                _ => {}
            }
            top.retain(|m: &Member| m.key.as_ref() != key.as_ref());
            top.push(o.member(key, raw));
        }
        drop(top_members);
        Ok(Source {
            bytes,
            top,
            versions,
            time,
            dist_tags,
            name,
            has_versions,
        })
    }

    /// What an upstream registry must send to be used or kept: a packument of `name`, with a
    /// `versions` object and, if any, `dist-tags` naming versions by strings.
    pub fn validate(&self, name: &str) -> Result<(), IndexError> {
        if !self.has_versions {
            return Err(IndexError::Shape("it has no \"versions\" object".into()));
        }
        match self.name.as_deref() {
            Some(n) if n == name => {}
            Some(n) => return Err(IndexError::Shape(format!("it is the packument of {n:?}"))),
            None => return Err(IndexError::Shape("it has no \"name\"".into())),
        }
        if let Some(tags) = self.top_member("dist-tags")
            && !self.text(tags.value).starts_with('{')
        {
            return Err(IndexError::Shape("its \"dist-tags\" is not an object".into()));
        }
        Ok(())
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The source text of `span`.
    pub fn text(&self, span: Span) -> &str {
        // The whole buffer was checked to be UTF-8 and spans fall on token boundaries.
        std::str::from_utf8(&self.bytes[span.range()]).unwrap_or_default()
    }

    pub fn top_member(&self, key: &str) -> Option<&Member> {
        self.top.iter().find(|m| m.key.as_ref() == key)
    }

    /// The publish time of `version`, as the source spells it.
    pub fn published(&self, version: &str) -> Option<Cow<'_, str>> {
        self.time.get(version).and_then(|m| string(self.text(m.value)))
    }

    /// A string member of a version's `dist`.
    pub fn dist_string(&self, v: &Version, pick: impl Fn(&Dist) -> Option<Span>) -> Option<Cow<'_, str>> {
        v.dist.as_ref().and_then(pick).and_then(|s| string(self.text(s)))
    }

    /// Heap bytes this index takes beside the source bytes (an estimate close to the truth: the
    /// collections' capacities and their boxed strings).
    pub fn index_bytes(&self) -> usize {
        let member = std::mem::size_of::<Member>();
        let top: usize = self.top.iter().map(|m| member + m.key.len()).sum();
        let versions: usize = self
            .versions
            .iter()
            .map(|(k, v)| {
                std::mem::size_of::<Version>() + 16 + k.len() + v.fields.capacity() * std::mem::size_of::<Field>()
            })
            .sum();
        let time: usize = self.time.keys().map(|k| member + 16 + k.len() * 2).sum();
        let tags: usize = self.dist_tags.iter().map(|(k, v)| 48 + k.len() + v.len()).sum();
        top + versions + time + tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(json: &str) -> Source {
        Source::parse(Bytes::from(json.to_owned())).unwrap()
    }

    #[test]
    fn spans_point_into_the_source() {
        let s = src(r#"{"name": "p", "dist-tags": {"latest": "1.0.0", "n": 3},
                "versions": {"1.0.0": {"name": "p", "scripts": {"postinstall": "x"}, "dist": {"tarball": "http://u/p/-/p-1.0.0.tgz", "shasum": "ab"}, "main": "i.js"},
                             "2.0.0": "odd", "3.0.0": {"dist": {}}},
                "time": {"1.0.0": "2020-01-01T00:00:00.000Z"}}"#);
        assert_eq!(s.name.as_deref(), Some("p"));
        assert_eq!(s.dist_tags.len(), 1, "non-string tags are left out");
        let v = &s.versions["1.0.0"];
        assert!(v.object && v.install_script);
        assert_eq!(s.text(v.field(0).unwrap().value), "\"p\"");
        let d = v.dist.as_ref().unwrap();
        assert_eq!(s.text(d.tarball.unwrap()), "\"http://u/p/-/p-1.0.0.tgz\"");
        assert_eq!(s.dist_string(v, |d| d.shasum).as_deref(), Some("ab"));
        assert_eq!(
            &s.text(Span {
                start: v.key_at.unwrap(),
                end: v.value.end
            })[..8],
            "\"1.0.0\":"
        );
        assert!(!s.versions["2.0.0"].object);
        assert!(s.versions["3.0.0"].dist.as_ref().unwrap().empty);
        assert_eq!(s.published("1.0.0").as_deref(), Some("2020-01-01T00:00:00.000Z"));
        let m = s.top_member("time").unwrap();
        assert!(s.text(m.span().unwrap()).starts_with("\"time\": {"));
        s.validate("p").unwrap();
    }

    #[test]
    fn escaped_keys_have_no_source_spelling() {
        let s = src(r#"{"n\u0061me": "p", "versions": {}}"#);
        assert_eq!(s.name.as_deref(), Some("p"));
        assert_eq!(s.top_member("name").unwrap().key_at, None);
    }

    #[test]
    fn validation_refuses_what_is_not_the_packument_asked_for() {
        let err = |json: &str| match Source::parse(Bytes::from(json.to_owned())) {
            Ok(s) => s.validate("p").unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(err("\"just a string\"").contains("not valid JSON"));
        assert!(err("[1]").contains("not valid JSON"));
        assert!(err("{\"name\": \"p\"").contains("not valid JSON"));
        assert!(err(r#"{"name": "p"}"#).contains("no \"versions\""));
        assert!(err(r#"{"name": "p", "versions": []}"#).contains("no \"versions\""));
        assert!(err(r#"{"name": "q", "versions": {}}"#).contains("of \"q\""));
        assert!(err(r#"{"versions": {}}"#).contains("no \"name\""));
        assert!(err(r#"{"name": "p", "versions": {}, "dist-tags": "x"}"#).contains("dist-tags"));
    }
}
