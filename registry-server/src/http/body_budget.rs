//! The memory all request bodies may hold together. A handler that is about to buffer a body
//! (after it authorized the request: see `http::body::read`) reserves its size (its
//! `Content-Length`, or `max_body_size` when chunked) with [`reserve_body`], and keeps it until
//! the handler is done; when the budget is spent the request gets 503 without a byte of its body
//! read (and the connection closes rather than drain it). A request refused before its body is
//! read (401, 403) never reserves anything, so anonymous uploads cannot crowd out the
//! authenticated ones. This is what bounds memory under many slow or withheld uploads, whoever
//! sends them.

use axum::http::{HeaderMap, header};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    /// The budget of the request being handled (set by the connection loop, `serve`, around the
    /// handler: it owns the budget; handlers only reserve from it).
    static REQUEST: Request;
}

/// One request's view of the budget: what it may reserve, and what it holds.
pub struct Request {
    units: Arc<Semaphore>,
    max_body_size: u64,
    held: Mutex<Option<OwnedSemaphorePermit>>,
}

/// Runs `handler` with its request's reservations, released when it is done.
pub async fn scope<F: Future>(budget: &Budget, handler: F) -> F::Output {
    let request = Request {
        units: budget.units.clone(),
        max_body_size: budget.max_body_size,
        held: Mutex::new(None),
    };
    REQUEST.scope(request, handler).await
}

/// Reserves room for the body `headers` announce (at most `limit`, the most the handler reads),
/// for the rest of the current request. Outside a served request (a handler called directly)
/// there is no budget to reserve from.
pub fn reserve_body(headers: &HeaderMap, limit: u64) -> Result<(), Spent> {
    REQUEST
        .try_with(|r| {
            let bytes = announced(headers, limit.min(r.max_body_size));
            if bytes == 0 {
                return Ok(());
            }
            let permit = r
                .units
                .clone()
                .try_acquire_many_owned(units(bytes))
                .map_err(|_| Spent)?;
            *r.held.lock().expect("not poisoned") = Some(permit);
            Ok(())
        })
        .unwrap_or(Ok(()))
}

/// Gives back what the current request reserved (its body is no longer kept).
pub fn release_body() {
    let _ = REQUEST.try_with(|r| r.held.lock().expect("not poisoned").take());
}

fn units(bytes: u64) -> u32 {
    bytes.div_ceil(UNIT).min(u32::MAX as u64) as u32
}

/// Reservations are counted in KiB (the semaphore counts in `u32`).
const UNIT: u64 = 1024;

pub struct Budget {
    units: Arc<Semaphore>,
    max_body_size: u64,
}

/// The budget is spent: the request must wait for others to finish.
#[derive(Debug, thiserror::Error)]
#[error("the registry is receiving too many uploads right now; retry in a moment")]
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
    #[cfg(test)]
    fn reserve(&self, headers: &HeaderMap) -> Result<Option<OwnedSemaphorePermit>, Spent> {
        let bytes = announced(headers, self.max_body_size);
        if bytes == 0 {
            return Ok(None);
        }
        self.units
            .clone()
            .try_acquire_many_owned(units(bytes))
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

    #[tokio::test]
    async fn a_request_holds_what_it_reserved_until_its_scope_ends() {
        let budget = Budget::new(10 * UNIT, 8 * UNIT);
        let big = with(header::CONTENT_LENGTH, "6144");
        assert!(
            reserve_body(&big, u64::MAX).is_ok(),
            "outside a request there is nothing to reserve"
        );
        scope(&budget, async {
            reserve_body(&big, u64::MAX).unwrap();
            assert!(budget.reserve(&big).is_err(), "held by the request");
            release_body();
            assert!(budget.reserve(&big).is_ok(), "given back");
            reserve_body(&big, u64::MAX).unwrap();
        })
        .await;
        assert!(budget.reserve(&big).is_ok(), "the scope's end gives it back");
    }
}
