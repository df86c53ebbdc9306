//! A package as clients see it, cut in one pass from the bytes of its local and upstream
//! packuments: upstream versions the rule hides left out (dist-tags that named one moved to the
//! newest visible release), local versions, times and dist-tags over upstream ones (local wins,
//! as in Verdaccio), internal fields dropped, `_attachments: {}`, fields hoisted from `latest`,
//! tarball URLs pointing here. The full and the abbreviated document are templates of slices of
//! those bytes with holes for the base URL, so one build serves every host name.
//!
//! One file because the full and the abbreviated view are cut by the same pass and share its
//! rules (hidden versions, hoisting, dist-tags); apart they would drift.

use super::INTERNAL_FIELDS;
use super::emit::{self, Object, Signed};
use super::index::{HOISTED_FIELDS, Member, Source, Version};
use super::template::{Builder, Template};
use crate::package::merge::VersionFilter;
use crate::package::{PackageName, tags};
use chrono::{DateTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use std::sync::Arc;

/// Where a visible version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    Upstream,
}

const LOCAL: usize = 0;
const UPSTREAM: usize = 1;

/// Signs a hosted version: `(name, version, integrity)` → its `dist.signatures` (a JSON array).
pub type Sign = dyn Fn(&str, &str, &str) -> serde_json::Value + Sync;

/// What the views are cut from.
pub struct Inputs<'a> {
    pub name: &'a PackageName,
    pub local: Option<Arc<Source>>,
    pub upstream: Option<Arc<Source>>,
    pub filter: &'a VersionFilter,
    pub now: DateTime<Utc>,
    /// Signs local versions (their `dist.signatures` replaced by these); upstream ones keep
    /// theirs.
    pub sign: Option<&'a Sign>,
}

/// An upstream tarball a client may download: where upstream has it and what it must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTarball {
    pub url: String,
    pub integrity: Option<String>,
    pub shasum: Option<String>,
}

/// The visible upstream versions' tarballs, compactly: file name, URL, integrity, shasum of each
/// in one text.
#[derive(Debug, Default)]
struct Tarballs {
    text: String,
    /// Where each entry's four fields start in `text`, then where it ends; an absent hash is empty.
    entries: Vec<[u32; 5]>,
}

impl Tarballs {
    fn push(&mut self, file: &str, t: &UpstreamTarball) {
        let mut at = [0u32; 5];
        let fields = [
            file,
            &t.url,
            t.integrity.as_deref().unwrap_or(""),
            t.shasum.as_deref().unwrap_or(""),
        ];
        for (i, f) in fields.iter().enumerate() {
            at[i] = self.text.len() as u32;
            self.text.push_str(f);
        }
        at[4] = self.text.len() as u32;
        self.entries.push(at);
    }

    fn find(&self, file: &str) -> Option<UpstreamTarball> {
        let field = |e: &[u32; 5], i: usize| &self.text[e[i] as usize..e[i + 1] as usize];
        let e = self.entries.iter().find(|e| field(e, 0) == file)?;
        let hash = |i| Some(field(e, i)).filter(|h| !h.is_empty()).map(str::to_owned);
        Some(UpstreamTarball {
            url: field(e, 1).to_owned(),
            integrity: hash(2),
            shasum: hash(3),
        })
    }

    fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.entries.capacity() * 20
    }
}

/// What only the full document needs: its template and what it was cut from (kept for the
/// version endpoint).
#[derive(Debug)]
pub struct Full {
    pub template: Template,
    local: Option<Arc<Source>>,
    upstream: Option<Arc<Source>>,
    /// Visible versions, in order, with where each comes from (its index in that source).
    versions: IndexMap<Box<str>, (Origin, u32)>,
    signatures: Signatures,
}

#[derive(Debug)]
pub struct Packument {
    name: PackageName,
    dist_tags: IndexMap<Box<str>, Box<str>>,
    modified: Option<DateTime<Utc>>,
    pub abbreviated: Template,
    /// `None` for a document built for installs only: the abbreviated form is a copy, so the
    /// (often ten times larger) sources need not be kept for it.
    pub full: Option<Full>,
    tarballs: Tarballs,
    versions: usize,
}

/// The `dist.signatures` of local versions, by their index in the local source (JSON text; `None`
/// for a version without integrity); empty when nothing signs.
#[derive(Debug, Default)]
struct Signatures(Vec<Option<Box<str>>>);

impl Signatures {
    fn make(name: &PackageName, local: Option<&Source>, sign: Option<&Sign>) -> Self {
        let (Some(local), Some(sign)) = (local, sign) else {
            return Signatures::default();
        };
        let signed = local
            .versions
            .iter()
            .map(|(version, v)| {
                let integrity = local.dist_string(v, |d| d.integrity)?;
                let sigs = sign(name.as_str(), version, &integrity);
                Some(
                    serde_json::to_string(&sigs)
                        .expect("a value serializes")
                        .into_boxed_str(),
                )
            })
            .collect();
        Signatures(signed)
    }

    fn of(&self, origin: Origin, index: u32) -> Signed<'_> {
        match (origin, self.0.get(index as usize)) {
            (Origin::Local, Some(Some(s))) => Signed::Ours(s),
            (Origin::Local, Some(None)) => Signed::Dropped,
            _ => Signed::Stored,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Option<Box<str>>>()
            + self.0.iter().flatten().map(|s| s.len()).sum::<usize>()
    }
}

/// The build's working state.
struct Cut {
    name: PackageName,
    /// Upstream versions the filter hides.
    hidden: std::collections::HashSet<Box<str>>,
    local: Option<Arc<Source>>,
    upstream: Option<Arc<Source>>,
    versions: IndexMap<Box<str>, (Origin, u32)>,
    dist_tags: IndexMap<Box<str>, Box<str>>,
    signatures: Signatures,
}

impl Packument {
    /// Cuts the abbreviated document, and the full one when `full`; `None` when neither source
    /// exists. CPU work proportional to the sources' size: run it off the async workers.
    pub fn build(inputs: Inputs, full: bool) -> Option<Packument> {
        if inputs.local.is_none() && inputs.upstream.is_none() {
            return None;
        }
        let Inputs {
            name,
            local,
            upstream,
            filter,
            now,
            sign,
        } = inputs;
        let mut p = Cut {
            name: name.clone(),
            hidden: Default::default(),
            signatures: Signatures::make(name, local.as_deref(), sign),
            local,
            upstream,
            versions: IndexMap::new(),
            dist_tags: IndexMap::new(),
        };
        let visible = p.merge_versions(filter, now);
        p.merge_tags(filter, &visible);
        let (modified, template, abbreviated, tarballs) = {
            let time = p.merged_time();
            let modified = modified(&p, &time);
            let empty = bytes::Bytes::new();
            let sources: [&bytes::Bytes; 2] = [
                p.local.as_ref().map_or(&empty, |s| s.bytes()),
                p.upstream.as_ref().map_or(&empty, |s| s.bytes()),
            ];
            let template = full.then(|| p.write_full(&sources, &time));
            let abbreviated = p.write_abbreviated(&sources, &time, modified);
            (modified, template, abbreviated, p.tarballs())
        };
        let versions = p.versions.len();
        let full = template.map(|template| Full {
            template,
            local: p.local,
            upstream: p.upstream,
            versions: p.versions,
            signatures: p.signatures,
        });
        Some(Packument {
            name: p.name,
            dist_tags: p.dist_tags,
            modified,
            abbreviated,
            full,
            tarballs,
            versions,
        })
    }
}

impl Cut {
    fn tarballs(&self) -> Tarballs {
        let mut t = Tarballs::default();
        let Some(up) = self.upstream.as_deref() else {
            return t;
        };
        for (version, (origin, index)) in &self.versions {
            if *origin != Origin::Upstream {
                continue;
            }
            let (_, v, _) = self.entry(*origin, *index);
            let Some(url) = up.dist_string(v, |d| d.tarball) else {
                continue;
            };
            let entry = UpstreamTarball {
                url: url.into_owned(),
                integrity: up.dist_string(v, |d| d.integrity).map(|s| s.into_owned()),
                shasum: up.dist_string(v, |d| d.shasum).map(|s| s.into_owned()),
            };
            t.push(&emit::tarball_file(&self.name, version, up, v), &entry);
        }
        t.text.shrink_to_fit();
        t.entries.shrink_to_fit();
        t
    }

    fn source(&self, origin: Origin) -> &Source {
        match origin {
            Origin::Local => self.local.as_deref(),
            Origin::Upstream => self.upstream.as_deref(),
        }
        .expect("a version's origin exists")
    }

    fn entry(&self, origin: Origin, index: u32) -> (&str, &Version, &Source) {
        let source = self.source(origin);
        let (k, v) = source.versions.get_index(index as usize).expect("indexed version");
        (k, v, source)
    }

    /// Fills the version table; returns the upstream versions the filter lets through.
    fn merge_versions(&mut self, filter: &VersionFilter, now: DateTime<Utc>) -> Vec<String> {
        let mut visible = Vec::new();
        if let Some(up) = &self.upstream {
            for (i, (v, _)) in up.versions.iter().enumerate() {
                if filter.hides(self.name.as_str(), v, up.published(v).as_deref(), now) {
                    self.hidden.insert(v.clone());
                } else {
                    self.versions.insert(v.clone(), (Origin::Upstream, i as u32));
                    visible.push(v.to_string());
                }
            }
        }
        if let Some(local) = &self.local {
            for (i, (v, _)) in local.versions.iter().enumerate() {
                self.versions.insert(v.clone(), (Origin::Local, i as u32));
            }
        }
        visible
    }

    fn merge_tags(&mut self, filter: &VersionFilter, visible: &[String]) {
        if let Some(up) = &self.upstream {
            let fallback = if filter.is_empty() {
                None
            } else {
                tags::highest(visible)
            };
            for (tag, v) in &up.dist_tags {
                let shown = filter.is_empty() || visible.iter().any(|x| x.as_str() == v.as_ref());
                match (shown, &fallback) {
                    (true, _) => {
                        self.dist_tags.insert(tag.clone(), v.clone());
                    }
                    (false, Some(f)) => {
                        self.dist_tags.insert(tag.clone(), f.as_str().into());
                    }
                    (false, None) => {}
                }
            }
        }
        if let Some(local) = &self.local {
            for (tag, v) in &local.dist_tags {
                self.dist_tags.insert(tag.clone(), v.clone());
            }
        }
    }

    /// `time` entries in order: upstream ones (not of hidden versions), then local ones over
    /// them; each with the source it is copied from.
    fn merged_time(&self) -> IndexMap<&str, (usize, &Member)> {
        let mut time = IndexMap::new();
        if let Some(up) = &self.upstream {
            for (k, m) in &up.time {
                if !self.hidden.contains(k) {
                    time.insert(k.as_ref(), (UPSTREAM, m));
                }
            }
        }
        if let Some(local) = &self.local {
            for (k, m) in &local.time {
                time.insert(k.as_ref(), (LOCAL, m));
            }
        }
        time
    }

    /// The top-level members in the order the document keeps them: upstream's (or local's),
    /// then local ones upstream lacks; each taken from local data when it has it.
    fn top_members(&self) -> Vec<(usize, &Member)> {
        let mut out: Vec<(usize, &Member)> = Vec::new();
        let sources = [(UPSTREAM, self.upstream.as_deref()), (LOCAL, self.local.as_deref())];
        for (i, s) in sources {
            for m in s.map(|s| s.top.as_slice()).unwrap_or_default() {
                match out.iter_mut().find(|(_, o)| o.key == m.key) {
                    Some(slot) => *slot = (i, m),
                    None => out.push((i, m)),
                }
            }
        }
        out
    }

    fn write_versions(&self, o: &mut Object, abbreviated: bool) {
        o.key("versions");
        let mut vs = Object::open(o.b);
        for (version, (origin, index)) in &self.versions {
            let (k, v, source) = self.entry(*origin, *index);
            let i = if *origin == Origin::Local { LOCAL } else { UPSTREAM };
            let signatures = self.signatures.of(*origin, *index);
            vs.keyed(i, k, v.key_at, v.value.start, |b| {
                if abbreviated {
                    emit::abbreviated_manifest(b, i, source, &self.name, (version, v), signatures);
                } else {
                    emit::manifest(b, i, source, &self.name, (version, v), signatures);
                }
            });
        }
        vs.close();
    }

    fn write_tags(&self, o: &mut Object) {
        let tags: serde_json::Map<String, serde_json::Value> = self
            .dist_tags
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        let json = serde_json::to_string(&tags).expect("tags serialize");
        o.key("dist-tags").lit(json.as_bytes());
    }

    fn write_time(&self, o: &mut Object, time: &IndexMap<&str, (usize, &Member)>) {
        o.key("time");
        let mut t = Object::open(o.b);
        for (i, m) in time.values() {
            t.member(*i, m);
        }
        t.close();
    }

    fn write_full(&self, sources: &[&bytes::Bytes], time: &IndexMap<&str, (usize, &Member)>) -> Template {
        let mut b = Builder::new(sources);
        let mut o = Object::open(&mut b);
        let mut seen: Vec<&str> = Vec::new();
        let top = self.top_members();
        for (i, m) in &top {
            let key = m.key.as_ref();
            seen.push(key);
            match key {
                k if INTERNAL_FIELDS.contains(&k) => {}
                "versions" => self.write_versions(&mut o, false),
                "dist-tags" => self.write_tags(&mut o),
                "time" => self.write_time(&mut o, time),
                "_attachments" => {
                    o.key("_attachments").lit(b"{}");
                }
                _ => o.member(*i, m),
            }
        }
        let missing = |k: &str| !seen.contains(&k);
        if missing("versions") {
            self.write_versions(&mut o, false);
        }
        if missing("dist-tags") {
            self.write_tags(&mut o);
        }
        if missing("time") && !time.is_empty() {
            self.write_time(&mut o, time);
        }
        if missing("_attachments") {
            o.key("_attachments").lit(b"{}");
        }
        for k in ["_id", "name"] {
            if missing(k) {
                o.key(k).string(self.name.as_str());
            }
        }
        // npm hoists these from the latest version when the document lacks them.
        if let Some((origin, index)) = self.dist_tags.get("latest").and_then(|l| self.versions.get(l.as_ref())) {
            let (_, v, _) = self.entry(*origin, *index);
            let i = if *origin == Origin::Local { LOCAL } else { UPSTREAM };
            for which in HOISTED_FIELDS {
                let key = super::index::FIELDS[which];
                if let Some(f) = v.field(which).filter(|_| missing(key)) {
                    o.keyed(i, key, f.key_at, f.value.start, |b| b.src(i, f.value));
                }
            }
        }
        o.close();
        b.finish()
    }

    fn write_abbreviated(
        &self,
        sources: &[&bytes::Bytes],
        time: &IndexMap<&str, (usize, &Member)>,
        modified: Option<DateTime<Utc>>,
    ) -> Template {
        let mut b = Builder::new(sources);
        let mut o = Object::open(&mut b);
        let named = [(LOCAL, self.local.as_deref()), (UPSTREAM, self.upstream.as_deref())]
            .into_iter()
            .find_map(|(i, s)| Some((i, s?.top_member("name")?)));
        match named {
            Some((i, m)) => o.member(i, m),
            None => {
                o.key("name").string(self.name.as_str());
            }
        }
        self.write_tags(&mut o);
        if let Some(m) = self.modified_text(time, modified) {
            o.key("modified").string(&m);
        }
        // pnpm's `minimumReleaseAge` (and yarn's age gate) need publish times.
        if !time.is_empty() {
            self.write_time(&mut o, time);
        }
        self.write_versions(&mut o, true);
        o.close();
        b.finish_flat()
    }

    fn modified_text(
        &self,
        time: &IndexMap<&str, (usize, &Member)>,
        modified: Option<DateTime<Utc>>,
    ) -> Option<String> {
        if let Some((i, m)) = time.get("modified") {
            let source = if *i == LOCAL {
                self.local.as_deref()
            } else {
                self.upstream.as_deref()
            }?;
            if let Some(t) = emit::time_text(source, m) {
                return Some(t.into_owned());
            }
        }
        modified.map(|m| m.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl Packument {
    pub fn name(&self) -> &PackageName {
        &self.name
    }

    /// `time.modified`, else the latest time the document records.
    pub fn modified(&self) -> Option<DateTime<Utc>> {
        self.modified
    }

    pub fn dist_tags(&self) -> &IndexMap<Box<str>, Box<str>> {
        &self.dist_tags
    }

    pub fn version_count(&self) -> usize {
        self.versions
    }

    /// One version by number or dist-tag, as the full document holds it; `None` also when this
    /// was built without the full document.
    pub fn version(&self, spec: &str) -> Option<Template> {
        let full = self.full.as_ref()?;
        let (version, (origin, index)) = match full.versions.get_key_value(spec) {
            Some(found) => found,
            None => full.versions.get_key_value(self.dist_tags.get(spec)?.as_ref())?,
        };
        let source = match origin {
            Origin::Local => full.local.as_deref(),
            Origin::Upstream => full.upstream.as_deref(),
        }?;
        let (_, v) = source.versions.get_index(*index as usize)?;
        let sources = [source.bytes()];
        let mut b = Builder::new(&sources);
        let signatures = full.signatures.of(*origin, *index);
        emit::manifest(&mut b, 0, source, &self.name, (version, v), signatures);
        Some(b.finish_flat())
    }

    /// The upstream tarball named `file`, if a visible upstream version has it.
    pub fn upstream_tarball(&self, file: &str) -> Option<UpstreamTarball> {
        self.tarballs.find(file)
    }

    /// The sources of the full document, to cut the next one from (after a local change)
    /// without reading them again.
    pub fn sources(&self) -> (Option<&Arc<Source>>, Option<&Arc<Source>>) {
        match &self.full {
            Some(f) => (f.local.as_ref(), f.upstream.as_ref()),
            None => (None, None),
        }
    }

    /// Heap bytes held: the templates' own pieces, the sources the full one slices (and their
    /// indexes), and the tables.
    pub fn heap_bytes(&self) -> usize {
        let source = |s: &Option<Arc<Source>>| s.as_ref().map_or(0, |s| s.bytes().len() + s.index_bytes());
        let full = self.full.as_ref().map_or(0, |f| {
            source(&f.local)
                + source(&f.upstream)
                + f.template.heap_bytes()
                + f.signatures.heap_bytes()
                + f.versions.iter().map(|(k, _)| k.len() + 40).sum::<usize>()
        });
        full + self.abbreviated.heap_bytes()
            + self.tarballs.heap_bytes()
            + self
                .dist_tags
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

/// `time.modified`, else the latest of the document's times.
fn modified(p: &Cut, time: &IndexMap<&str, (usize, &Member)>) -> Option<DateTime<Utc>> {
    let text = |i: usize, m: &Member| {
        let source = if i == LOCAL {
            p.local.as_deref()
        } else {
            p.upstream.as_deref()
        }?;
        emit::time_text(source, m).and_then(|t| parse_time(&t))
    };
    if let Some(m) = time.get("modified").and_then(|(i, m)| text(*i, m)) {
        return Some(m);
    }
    time.values().filter_map(|(i, m)| text(*i, m)).max()
}
