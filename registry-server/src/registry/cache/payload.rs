//! A prepared document's body: one buffer, or the slices of a large document's source with the
//! base URL between them, sent without copying the document.

use super::document::{Document, Kind};
use crate::package::packument::Part;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// Pieces smaller than this are gathered into buffers of [`BATCH`] bytes before they are sent:
/// fewer, larger writes.
const SMALL: usize = 16 * 1024;
const BATCH: usize = 64 * 1024;

pub enum Payload {
    Whole(Bytes),
    Rope(Rope),
}

impl Payload {
    pub fn len(&self) -> usize {
        match self {
            Payload::Whole(b) => b.len(),
            Payload::Rope(r) => r.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A large document's template for one base URL; holds the document while it is sent.
pub struct Rope {
    pub(super) doc: Arc<Document>,
    pub(super) kind: Kind,
    pub(super) base: Bytes,
    pub(super) len: usize,
}

impl Rope {
    /// The body's bytes, in order.
    pub fn chunks(self) -> impl Iterator<Item = Bytes> + Send + 'static {
        let mut at = 0;
        std::iter::from_fn(move || {
            let parts = self.doc.template(self.kind).map_or(&[][..], |t| t.parts());
            let piece = |p: &Part| match p {
                Part::Bytes(b) => b.clone(),
                Part::Base => self.base.clone(),
            };
            let first = piece(parts.get(at)?);
            at += 1;
            if first.len() >= SMALL {
                return Some(first);
            }
            let mut batch = BytesMut::with_capacity(BATCH);
            batch.extend_from_slice(&first);
            while let Some(p) = parts.get(at) {
                let next = piece(p);
                if next.len() >= SMALL || batch.len() + next.len() > BATCH {
                    break;
                }
                batch.extend_from_slice(&next);
                at += 1;
            }
            Some(batch.freeze())
        })
    }
}
