//! Memory that large documents free goes back to the operating system. glibc keeps freed memory
//! in its heaps for reuse; after a burst of large packuments (indexed, cut, then dropped) that
//! leaves the process's RSS near its peak, which is what a pod limit counts. So buffers of
//! 128 KiB and more get mappings of their own (returned when freed, whatever their size: glibc's
//! own threshold would otherwise grow to 32 MiB), and once large documents have freed enough,
//! `malloc_trim` gives back the free pages inside the heaps too, at most once a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Freed bytes worth a trim.
const TRIM_AFTER: u64 = 8 * 1024 * 1024;
static FREED: AtomicU64 = AtomicU64::new(0);

/// Allocator settings; call before any thread starts.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread is started.
    unsafe {
        // Two arenas, not eight per core: tarball reads spread over the blocking pool would
        // otherwise triple the peak RSS, at no throughput cost we could measure (e2e/bench).
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Notes that a large buffer or document of `bytes` was freed.
pub fn freed(bytes: usize) {
    FREED.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Gives freed heap memory back to the system whenever enough was freed; runs forever.
pub async fn return_freed() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if FREED.load(Ordering::Relaxed) < TRIM_AFTER {
            continue;
        }
        FREED.store(0, Ordering::Relaxed);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim has no preconditions; it walks the heaps under their locks.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}
