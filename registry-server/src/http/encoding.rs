//! Content negotiation of packument bodies: which of the registry's prepared encodings a client's
//! `Accept-Encoding` allows, and its `Content-Encoding` name.

use crate::registry::Encoding;

/// The best encoding a client's `Accept-Encoding` allows.
pub fn negotiate(accept_encoding: Option<&str>) -> Encoding {
    let accepts = |name: &str| {
        accept_encoding.is_some_and(|a| {
            a.split(',').any(|part| {
                let mut it = part.split(';');
                let coding = it.next().unwrap_or("").trim();
                let q_zero = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                coding.eq_ignore_ascii_case(name) && !q_zero
            })
        })
    };
    if accepts("br") {
        Encoding::Brotli
    } else if accepts("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The `Content-Encoding` of a body in `encoding`; `None` for identity.
pub fn content_encoding(encoding: Encoding) -> Option<&'static str> {
    match encoding {
        Encoding::Identity => None,
        Encoding::Gzip => Some("gzip"),
        Encoding::Brotli => Some("br"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_encodings() {
        assert_eq!(negotiate(None), Encoding::Identity);
        assert_eq!(negotiate(Some("gzip, deflate")), Encoding::Gzip);
        assert_eq!(negotiate(Some("gzip, deflate, br")), Encoding::Brotli);
        assert_eq!(negotiate(Some("br;q=0, gzip")), Encoding::Gzip);
        assert_eq!(negotiate(Some("identity")), Encoding::Identity);
    }
}
