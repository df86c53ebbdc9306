//! Compression of prepared documents: gzip (what npm, pnpm and yarn ask for) and brotli, each
//! made once per document and base URL, only when clients ask for it (see `Prepared::body`).

use crate::package::packument::{Part, Template};
use bytes::Bytes;
use std::io::Write;

/// Below this size compression saves too little to be worth a variant.
pub const COMPRESS_MIN: usize = 1024;

/// The encodings a document can be sent in (chosen per request by `http::encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

/// `t` rendered for `base` and compressed. CPU work: run it off the async workers.
pub fn compress(t: &Template, base: &[u8], e: Encoding) -> Bytes {
    fn feed(t: &Template, base: &[u8], w: &mut impl Write) {
        for p in t.parts() {
            let bytes = match p {
                Part::Bytes(b) => &b[..],
                Part::Base => base,
            };
            w.write_all(bytes).expect("writing to a Vec cannot fail");
        }
    }
    // Packuments compress about tenfold.
    let mut out = Vec::with_capacity(t.len(base) / 8);
    match e {
        Encoding::Identity => return t.render(base),
        Encoding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(6));
            feed(t, base, &mut w);
            w.finish().expect("writing to a Vec cannot fail");
        }
        Encoding::Brotli => {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            feed(t, base, &mut w);
        }
    }
    out.shrink_to_fit();
    Bytes::from(out)
}
