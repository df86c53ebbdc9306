//! Single flight: callers that ask for the same key while its work runs share that one run and
//! its outcome, instead of each doing it (64 concurrent GETs after a publish make one build).

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

pub struct Flights<T> {
    running: Mutex<HashMap<String, watch::Receiver<Option<T>>>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }
}

/// Takes the key out of the map when its leader finishes or is cancelled (its client went away):
/// then a waiter leads a new run.
struct Leading<'a, T> {
    flights: &'a Flights<T>,
    key: &'a str,
    mine: watch::Receiver<Option<T>>,
}

impl<T> Drop for Leading<'_, T> {
    fn drop(&mut self) {
        let mut running = self.flights.running.lock().expect("not poisoned");
        if running.get(self.key).is_some_and(|r| r.same_channel(&self.mine)) {
            running.remove(self.key);
        }
    }
}

impl<T: Clone + Send + Sync> Flights<T> {
    /// `work`'s outcome for `key`: run here, or by the caller already running it.
    pub async fn run<F: Future<Output = T>>(&self, key: &str, work: impl FnOnce() -> F) -> T {
        let mut work = Some(work);
        loop {
            let joined = {
                let mut running = self.running.lock().expect("not poisoned");
                match running.get(key) {
                    Some(rx) => Err(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        running.insert(key.to_owned(), rx.clone());
                        Ok((tx, rx))
                    }
                }
            };
            match joined {
                Ok((tx, mine)) => {
                    let _leading = Leading {
                        flights: self,
                        key,
                        mine,
                    };
                    let work = work.take().expect("a caller leads at most once");
                    let out = work().await;
                    let _ = tx.send(Some(out.clone()));
                    return out;
                }
                Err(mut rx) => {
                    if let Ok(done) = rx.wait_for(Option::is_some).await {
                        return done.clone().expect("waited for it");
                    }
                    // The leader was cancelled before it finished: lead a run of our own.
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights = Arc::new(Flights::<u32>::default());
        let runs = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (f, r) = (flights.clone(), runs.clone());
                tokio::spawn(async move {
                    f.run("k", || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        r.fetch_add(1, Ordering::SeqCst) + 7
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Later callers start a new run.
        assert_eq!(flights.run("k", || async { 9 }).await, 9);
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over() {
        let flights = Arc::new(Flights::<u32>::default());
        let f = flights.clone();
        let leader = tokio::spawn(async move {
            f.run("k", || async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                1
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let f = flights.clone();
        let follower = tokio::spawn(async move { f.run("k", || async { 2 }).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        assert_eq!(follower.await.unwrap(), 2);
    }
}
