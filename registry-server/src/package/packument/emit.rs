//! The pieces every view is written with: members as the source spells them, and manifests with
//! their `dist.tarball` pointed at the registry (a hole for the base URL, then `name/-/file`).

use super::index::{Dist, Member, Source, Span, Version, string};
use super::template::Builder;
use crate::package::PackageName;

/// Writes members of one object, with the commas between them.
pub struct Object<'b, 's> {
    pub b: &'b mut Builder<'s>,
    first: bool,
}

impl<'b, 's> Object<'b, 's> {
    pub fn open(b: &'b mut Builder<'s>) -> Self {
        b.lit(b"{");
        Object { b, first: true }
    }

    /// Starts a member: the comma before it, if it is not the first.
    pub fn next(&mut self) -> &mut Builder<'s> {
        if !self.first {
            self.b.lit(b",");
        }
        self.first = false;
        self.b
    }

    /// `"key":` for a generated value.
    pub fn key(&mut self, key: &str) -> &mut Builder<'s> {
        let b = self.next();
        b.string(key);
        b.lit(b":");
        b
    }

    /// A member copied from source `i`.
    pub fn member(&mut self, i: usize, m: &Member) {
        match m.span() {
            Some(span) => self.next().src(i, span),
            None => {
                let b = self.key(&m.key);
                b.src(i, m.value);
            }
        }
    }

    /// A member whose key is spelled at `key_at` (or generated from `key`) and whose value is
    /// written by `value`.
    pub fn keyed(
        &mut self,
        i: usize,
        key: &str,
        key_at: Option<u32>,
        value_at: u32,
        value: impl FnOnce(&mut Builder<'s>),
    ) {
        let b = match key_at {
            Some(start) => {
                let b = self.next();
                b.src(i, Span { start, end: value_at });
                b
            }
            None => self.key(key),
        };
        value(b);
    }

    pub fn close(self) -> &'b mut Builder<'s> {
        self.b.lit(b"}");
        self.b
    }
}

/// The file name a version's `dist.tarball` points at (its last path segment), or the one npm
/// would give it.
pub fn tarball_file(name: &PackageName, version: &str, source: &Source, v: &Version) -> String {
    source
        .dist_string(v, |d| d.tarball)
        .and_then(|u| u.rsplit('/').next().map(str::to_owned))
        .filter(|f| PackageName::check_filename(f).is_ok())
        .unwrap_or_else(|| name.tarball_filename(version))
}

/// A version's `dist.signatures` as a view writes it.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// As stored (an upstream version's, or nothing signs).
    Stored,
    /// Ours (a JSON array), in place of any stored.
    Ours(&'a str),
    /// None: a local version with nothing to sign (no integrity) keeps no stored ones either.
    Dropped,
}

/// What goes in place of a span of the source.
enum Piece<'a> {
    Lit(&'a [u8]),
    Hole,
}

/// The JSON value at `outer` (a manifest or its `dist`) with `dist.tarball` pointed at the base
/// URL's hole and `dist.signatures` as `signed` says.
pub fn with_tarball(b: &mut Builder, i: usize, source: &Source, outer: Span, dist: &Dist, tail: &str, signed: Signed) {
    let at = |start, end| Span { start, end };
    let close = at(dist.close(), dist.close());
    // Cuts of the source, each replaced by its pieces, in source order.
    let mut edits: Vec<(Span, Vec<Piece>)> = Vec::with_capacity(3);
    let mut members = dist.members;
    let (drop, ours) = match signed {
        Signed::Stored => (false, None),
        Signed::Ours(s) => (true, Some(s)),
        Signed::Dropped => (true, None),
    };
    if let Some(cut) = dist.signatures.filter(|_| drop) {
        edits.push((cut, vec![]));
        members -= 1;
    }
    match dist.tarball {
        Some(t) if source.text(t).starts_with('"') => {
            let url = &source.bytes()[(t.start + 1) as usize..t.end as usize];
            if url.ends_with(tail.as_bytes()) {
                // The usual case: the upstream URL already ends in `name/-/file"`.
                edits.push((at(t.start + 1, t.end - tail.len() as u32), vec![Piece::Hole]));
            } else {
                edits.push((at(t.start + 1, t.end), vec![Piece::Hole, Piece::Lit(tail.as_bytes())]));
            }
        }
        Some(t) => edits.push((
            at(t.start, t.end),
            vec![Piece::Lit(b"\""), Piece::Hole, Piece::Lit(tail.as_bytes())],
        )),
        None => {
            let key: &[u8] = if members == 0 {
                b"\"tarball\":\""
            } else {
                b",\"tarball\":\""
            };
            edits.push((close, vec![Piece::Lit(key), Piece::Hole, Piece::Lit(tail.as_bytes())]));
            members += 1;
        }
    }
    if let Some(sigs) = ours {
        let key: &[u8] = if members == 0 {
            b"\"signatures\":"
        } else {
            b",\"signatures\":"
        };
        edits.push((close, vec![Piece::Lit(key), Piece::Lit(sigs.as_bytes())]));
    }
    // Stable: the insertions at the closing brace keep the order they were pushed in.
    edits.sort_by_key(|(span, _)| span.start);
    let mut cursor = outer.start;
    for (span, pieces) in edits {
        b.src(i, at(cursor, span.start));
        for p in pieces {
            match p {
                Piece::Lit(bytes) => b.lit(bytes),
                Piece::Hole => b.hole(),
            }
        }
        cursor = span.end;
    }
    b.src(i, at(cursor, outer.end));
}

/// `name/-/file"`: what follows the base URL in a tarball URL, closing quote included.
pub fn tarball_tail(name: &PackageName, file: &str) -> String {
    format!("{name}/-/{file}\"")
}

/// One version's manifest as the full document holds it (`dist.signatures` as `signed` says).
pub fn manifest(
    b: &mut Builder,
    i: usize,
    source: &Source,
    name: &PackageName,
    (version, v): (&str, &Version),
    signed: Signed,
) {
    match &v.dist {
        Some(dist) => {
            let tail = tarball_tail(name, &tarball_file(name, version, source, v));
            with_tarball(b, i, source, v.value, dist, &tail, signed);
        }
        None => b.src(i, v.value),
    }
}

/// One version as the abbreviated document holds it: install fields only.
pub fn abbreviated_manifest(
    b: &mut Builder,
    i: usize,
    source: &Source,
    name: &PackageName,
    (version, v): (&str, &Version),
    signed: Signed,
) {
    let mut o = Object::open(b);
    if v.object {
        for f in v
            .fields
            .iter()
            .filter(|f| (f.which as usize) < super::index::ABBREVIATED_FIELDS)
        {
            let key = super::index::FIELDS[f.which as usize];
            match (&v.dist, f.which == 2) {
                (Some(dist), true) => {
                    let tail = tarball_tail(name, &tarball_file(name, version, source, v));
                    o.keyed(i, key, f.key_at, f.value.start, |b| {
                        with_tarball(b, i, source, f.value, dist, &tail, signed)
                    });
                }
                _ => o.keyed(i, key, f.key_at, f.value.start, |b| b.src(i, f.value)),
            }
        }
        if v.install_script {
            o.key("hasInstallScript").lit(b"true");
        }
    }
    o.close();
}

/// A `time` entry's value as a string.
pub fn time_text<'a>(source: &'a Source, m: &Member) -> Option<std::borrow::Cow<'a, str>> {
    string(source.text(m.value))
}
