//! How an upstream packument is stored: a one-line JSON header (which uplink, its ETag, when it
//! was received), a newline, then the upstream's bytes exactly as they arrived. Nothing is
//! serialized again, and reading it parses only the header.
//!
//! Records of the earlier format (one JSON object `{"uplink", "etag", "fetched", "doc"}`) are
//! still read, their `doc` taken as a slice of the stored bytes; they are replaced by the new
//! format with the next change upstream.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub uplink: String,
    pub etag: Option<String>,
    /// Milliseconds since the epoch.
    pub fetched: i64,
}

/// The header line as written before the document's bytes.
pub fn header_line(h: &Header) -> Vec<u8> {
    let mut line = serde_json::to_vec(h).expect("a header serializes");
    line.push(b'\n');
    line
}

#[derive(Deserialize)]
struct Earlier<'a> {
    uplink: String,
    etag: Option<String>,
    fetched: i64,
    #[serde(borrow)]
    doc: &'a RawValue,
}

/// The header and the document's bytes (a slice of `stored`).
pub fn read(stored: &Bytes) -> Option<(Header, Bytes)> {
    if let Some(nl) = stored.iter().position(|&b| b == b'\n')
        && let Ok(h) = serde_json::from_slice::<Header>(&stored[..nl])
    {
        return Some((h, stored.slice(nl + 1..)));
    }
    // The earlier format: compact JSON, so without a newline before its end.
    let text = std::str::from_utf8(stored).ok()?;
    let e: Earlier = serde_json::from_str(text).ok()?;
    let start = e.doc.get().as_ptr() as usize - text.as_ptr() as usize;
    let doc = stored.slice(start..start + e.doc.get().len());
    Some((
        Header {
            uplink: e.uplink,
            etag: e.etag,
            fetched: e.fetched,
        },
        doc,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats() {
        let h = Header {
            uplink: "up".into(),
            etag: Some("\"e\"".into()),
            fetched: 7,
        };
        let doc = br#"{"name": "p", "versions": {}}"#;
        let mut stored = header_line(&h);
        stored.extend_from_slice(doc);
        let (got, body) = read(&Bytes::from(stored)).unwrap();
        assert_eq!((got, &body[..]), (h.clone(), &doc[..]));
        let earlier = serde_json::to_vec(&serde_json::json!({"uplink": "up", "etag": "\"e\"", "fetched": 7,
            "doc": {"name": "p", "readme": "a\nb", "versions": {}}}))
        .unwrap();
        let (got, body) = read(&Bytes::from(earlier)).unwrap();
        assert_eq!(got, h);
        assert_eq!(&body[..], br#"{"name":"p","readme":"a\nb","versions":{}}"#);
        assert!(read(&Bytes::from_static(b"garbage")).is_none());
    }
}
