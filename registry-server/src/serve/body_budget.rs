//! The memory all request bodies may hold together. A request announcing a body reserves its
//! size (its `Content-Length`, or `max_body_size` when chunked) before the handler runs and keeps
//! it until the handler is done; when the budget is spent the request gets 503 without a byte of
//! its body read. This is what bounds memory under many slow or withheld uploads, whoever sends
//! them.

use axum::http::{HeaderMap, header};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reservations are counted in KiB (the semaphore counts in `u32`).
const UNIT: u64 = 1024;

pub struct Budget {
    units: Arc<Semaphore>,
    max_body_size: u64,
}

/// The budget is spent: the request must wait for others to finish.
#[derive(Debug)]
pub struct Spent;

/// The body size a request announces: its length, the largest allowed when chunked, else none.
pub fn announced(headers: &HeaderMap, max_body_size: u64) -> u64 {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match length {
        Some(n) => n.min(max_body_size),
        None if headers.contains_key(header::TRANSFER_ENCODING) => max_body_size,
        None => 0,
    }
}

impl Budget {
    pub fn new(bytes: u64, max_body_size: u64) -> Self {
        let units = (bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64) as usize;
        Budget {
            units: Arc::new(Semaphore::new(units)),
            max_body_size,
        }
    }

    /// Reserves room for the body `headers` announce, held until the permit is dropped.
    pub fn reserve(&self, headers: &HeaderMap) -> Result<Option<OwnedSemaphorePermit>, Spent> {
        let bytes = announced(headers, self.max_body_size);
        if bytes == 0 {
            return Ok(None);
        }
        let units = bytes.div_ceil(UNIT).min(u32::MAX as u64) as u32;
        self.units
            .clone()
            .try_acquire_many_owned(units)
            .map(Some)
            .map_err(|_| Spent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, v.parse().unwrap());
        h
    }

    #[test]
    fn bodies_reserve_what_they_announce_until_done() {
        let budget = Budget::new(10 * UNIT, 8 * UNIT);
        assert!(budget.reserve(&HeaderMap::new()).unwrap().is_none());
        let a = budget.reserve(&with(header::CONTENT_LENGTH, "4000")).unwrap();
        // Chunked: the largest body allowed (8 KiB) does not fit in the 6 KiB left.
        assert!(budget.reserve(&with(header::TRANSFER_ENCODING, "chunked")).is_err());
        let b = budget.reserve(&with(header::CONTENT_LENGTH, "6144")).unwrap();
        assert!(budget.reserve(&with(header::CONTENT_LENGTH, "1")).is_err());
        drop((a, b));
        // An announced length over the limit reserves only the limit (the handler refuses it).
        assert!(
            budget
                .reserve(&with(header::CONTENT_LENGTH, "999999999"))
                .unwrap()
                .is_some()
        );
    }
}
