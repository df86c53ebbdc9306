//! CPU-heavy work (indexing, cutting and compressing large documents) runs off the async
//! workers, at most one job per core at a time: a burst of requests queues here instead of
//! starting dozens of builds that each hold a document in memory. Work that a shutdown need not
//! finish (rendering a page) runs [`detached`], on threads of its own.

use std::sync::LazyLock;
use tokio::sync::Semaphore;

static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Semaphore::new(cores)
});

/// Runs `f` on the blocking pool once a slot is free; `Err` when it panicked.
pub async fn cpu<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let _slot = SLOTS.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())
}

/// Runs `f` on a thread of its own once a slot of the same pool is free; `Err` when it panicked.
/// Unlike tokio's blocking pool, which the runtime waits for when it shuts down, nothing waits
/// for this thread: a shutdown does not wait for work whose result nobody will read. The slot is
/// held until `f` returns, even when the caller stopped waiting, so the pool stays bounded.
pub async fn detached<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let slot = SLOTS.acquire().await.map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("detached-work".into())
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            drop(slot);
            let _ = tx.send(out);
        })
        .map_err(|e| e.to_string())?;
    match rx.await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(_)) => Err("the work panicked".to_owned()),
        Err(_) => Err("the work was lost".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn detached_work_answers_and_reports_panics() {
        assert_eq!(super::detached(|| 6 * 7).await, Ok(42));
        assert!(super::detached(|| -> u8 { panic!("boom") }).await.is_err());
    }
}
