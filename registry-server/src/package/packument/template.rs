//! A JSON document as a rope: slices of the source buffers it was cut from, small new pieces, and
//! holes where the registry's base URL goes (inside `dist.tarball` strings). One template serves
//! every host name a registry is reached by; [`Template::render`] makes the bytes for one.

use super::index::Span;
use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone)]
pub enum Part {
    Bytes(Bytes),
    /// The base URL (ending in `/`), JSON-escaped.
    Base,
}

#[derive(Debug, Clone, Default)]
pub struct Template {
    parts: Vec<Part>,
    fixed: usize,
    holes: usize,
    /// Bytes this template owns (new pieces), beside the sources it slices.
    owned: usize,
}

impl Template {
    /// The document's length with `base` in its holes.
    pub fn len(&self, base: &[u8]) -> usize {
        self.fixed + self.holes * base.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The document for `base`, in one buffer.
    pub fn render(&self, base: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len(base));
        for p in &self.parts {
            match p {
                Part::Bytes(b) => out.extend_from_slice(b),
                Part::Base => out.extend_from_slice(base),
            }
        }
        out.freeze()
    }

    /// Heap bytes this template takes beside its sources.
    pub fn heap_bytes(&self) -> usize {
        self.owned + self.parts.capacity() * std::mem::size_of::<Part>()
    }
}

/// JSON whitespace.
fn ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Where bytes of JSON text fall: inside a string (its quotes included) or outside.
#[derive(Default)]
struct Strings {
    in_string: bool,
    escaped: bool,
}

impl Strings {
    /// Reads `b`: whether it is whitespace outside every string, which can be dropped.
    fn droppable(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            false
        } else if b == b'"' {
            self.in_string = true;
            false
        } else {
            ws(b)
        }
    }
}

/// Whether the source bytes between two spans say what `glue` says, once whitespace outside
/// strings is dropped: then the two spans and the glue are one slice of the source.
fn same_glue(gap: &[u8], glue: &[u8]) -> bool {
    let mut g = glue.iter();
    let mut strings = Strings::default();
    for &b in gap {
        if !strings.droppable(b) && g.next() != Some(&b) {
            return false;
        }
    }
    g.next().is_none()
}

/// Assembles a template from spans of `sources`, literal bytes and holes, joining a span to the
/// previous one whenever the source between them is exactly the literal pushed in between.
pub struct Builder<'s> {
    sources: &'s [&'s Bytes],
    parts: Vec<Part>,
    /// A source slice not pushed yet (it may still grow), then the literal bytes after it.
    last: Option<(usize, u32, u32)>,
    literal: Vec<u8>,
    fixed: usize,
    holes: usize,
    owned: usize,
}

impl<'s> Builder<'s> {
    pub fn new(sources: &'s [&'s Bytes]) -> Self {
        Builder {
            sources,
            parts: Vec::new(),
            last: None,
            literal: Vec::new(),
            fixed: 0,
            holes: 0,
            owned: 0,
        }
    }

    pub fn src(&mut self, source: usize, span: Span) {
        if span.start >= span.end {
            return;
        }
        if let Some((s, a, b)) = self.last
            && s == source
            && span.start >= b
            && same_glue(&self.sources[s][b as usize..span.start as usize], &self.literal)
        {
            self.last = Some((s, a, span.end));
            self.literal.clear();
            return;
        }
        self.flush();
        self.last = Some((source, span.start, span.end));
    }

    pub fn lit(&mut self, bytes: &[u8]) {
        self.literal.extend_from_slice(bytes);
    }

    /// A JSON string literal.
    pub fn string(&mut self, s: &str) {
        let quoted = serde_json::to_string(s).expect("a string serializes");
        self.lit(quoted.as_bytes());
    }

    pub fn hole(&mut self) {
        self.flush();
        self.parts.push(Part::Base);
        self.holes += 1;
    }

    fn flush(&mut self) {
        if let Some((s, a, b)) = self.last.take() {
            self.parts
                .push(Part::Bytes(self.sources[s].slice(a as usize..b as usize)));
            self.fixed += (b - a) as usize;
        }
        if !self.literal.is_empty() {
            let bytes = Bytes::from(std::mem::take(&mut self.literal));
            self.fixed += bytes.len();
            self.owned += bytes.len();
            self.parts.push(Part::Bytes(bytes));
        }
    }

    /// The template, slicing its sources.
    pub fn finish(mut self) -> Template {
        self.flush();
        self.parts.shrink_to_fit();
        Template {
            parts: self.parts,
            fixed: self.fixed,
            holes: self.holes,
            owned: self.owned,
        }
    }

    /// The template in a buffer of its own (for views much smaller than their sources, which
    /// would otherwise be many small slices).
    pub fn finish_flat(mut self) -> Template {
        self.flush();
        let mut buf = BytesMut::with_capacity(self.fixed);
        let mut cuts = Vec::with_capacity(self.holes + 1);
        for p in &self.parts {
            match p {
                Part::Bytes(b) => buf.extend_from_slice(b),
                Part::Base => cuts.push(buf.len()),
            }
        }
        let buf = buf.freeze();
        let mut parts = Vec::with_capacity(self.holes * 2 + 1);
        let mut at = 0;
        for cut in cuts {
            if cut > at {
                parts.push(Part::Bytes(buf.slice(at..cut)));
            }
            parts.push(Part::Base);
            at = cut;
        }
        if buf.len() > at {
            parts.push(Part::Bytes(buf.slice(at..)));
        }
        Template {
            parts,
            fixed: self.fixed,
            holes: self.holes,
            owned: self.fixed,
        }
    }
}

/// `bytes` without whitespace outside strings; `None` when there is none to drop.
pub fn minify(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut strings = Strings::default();
    let first = bytes.iter().position(|&b| strings.droppable(b))?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut run = first + 1;
    for (i, &b) in bytes.iter().enumerate().skip(first + 1) {
        if strings.droppable(b) {
            out.extend_from_slice(&bytes[run..i]);
            run = i + 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u32, end: u32) -> Span {
        Span { start, end }
    }

    #[test]
    fn spans_join_across_glue_the_source_already_has() {
        let src = Bytes::from_static(br#"{"a": 1, "b": "x y", "c": 3}"#);
        let sources = [&src];
        let mut b = Builder::new(&sources);
        b.lit(b"{");
        b.src(0, span(1, 7)); // "a": 1
        b.lit(b",");
        b.src(0, span(9, 19)); // "b": "x y"
        b.lit(b",");
        b.src(0, span(21, 27)); // "c": 3
        b.lit(b"}");
        let t = b.finish();
        assert_eq!(t.parts().len(), 3, "{:?}", t.parts());
        assert_eq!(&t.render(b"")[..], br#"{"a": 1, "b": "x y", "c": 3}"#);
        // Skipping a member breaks the slice.
        let mut b = Builder::new(&sources);
        b.src(0, span(1, 7));
        b.lit(b",");
        b.src(0, span(21, 27));
        assert_eq!(&b.finish().render(b"")[..], br#""a": 1,"c": 3"#);
    }

    #[test]
    fn holes_take_the_base() {
        let src = Bytes::from_static(br#"{"t": "http://up/p/-/p.tgz"}"#);
        let sources = [&src];
        let mut b = Builder::new(&sources);
        b.src(0, span(0, 7));
        b.hole();
        b.src(0, span(17, 28));
        let t = b.finish();
        let base = b"https://me/";
        assert_eq!(&t.render(base)[..], br#"{"t": "https://me/p/-/p.tgz"}"#);
        assert_eq!(t.len(base), t.render(base).len());
        let flat = {
            let mut b = Builder::new(&sources);
            b.src(0, span(0, 7));
            b.hole();
            b.src(0, span(17, 28));
            b.finish_flat()
        };
        assert_eq!(flat.render(base), t.render(base));
    }

    #[test]
    fn glue_inside_strings_is_compared_as_it_is() {
        assert!(same_glue(b" ,\n ", b","));
        assert!(!same_glue(b",\"a b\":", b",\"ab\":"));
        assert!(same_glue(b", \"a b\" :", b",\"a b\":"));
    }

    #[test]
    fn minify_keeps_strings() {
        assert_eq!(minify(br#"{"a":1}"#), None);
        assert_eq!(
            minify(b"{\n  \"a b\": [1, \"x \\\" y\"]\n}").unwrap(),
            br#"{"a b":[1,"x \" y"]}"#.to_vec()
        );
    }
}
