//! CPU-heavy work (indexing, cutting and compressing large documents) runs off the async
//! workers, at most one job per core at a time: a burst of requests queues here instead of
//! starting dozens of builds that each hold a document in memory.

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
