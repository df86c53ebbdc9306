//! Verdaccio's uplink health: after `max_fails` failures in a row an uplink is left alone for
//! `fail_timeout`, and stored data is served meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    failures: u32,
    down_until: Option<Instant>,
    /// The last failure's cause, as clients may be told it (kept after a success is forgotten:
    /// it only explains a later "down").
    last_cause: String,
}

#[derive(Debug)]
pub struct Health {
    max_fails: u32,
    fail_timeout: Duration,
    state: Mutex<State>,
}

impl Health {
    pub fn new(max_fails: u32, fail_timeout: Duration) -> Self {
        Health {
            max_fails: max_fails.max(1),
            fail_timeout,
            state: Mutex::default(),
        }
    }

    pub fn is_down(&self) -> bool {
        let s = self.state.lock().expect("lock poisoned");
        s.down_until.is_some_and(|t| Instant::now() < t)
    }

    pub fn succeeded(&self) {
        let mut s = self.state.lock().expect("lock poisoned");
        s.failures = 0;
        s.down_until = None;
    }

    /// What made the uplink fail last.
    pub fn last_cause(&self) -> String {
        let s = self.state.lock().expect("lock poisoned");
        if s.last_cause.is_empty() {
            "unknown".to_owned()
        } else {
            s.last_cause.clone()
        }
    }

    pub fn failed(&self, cause: &str) {
        let mut s = self.state.lock().expect("lock poisoned");
        cause.clone_into(&mut s.last_cause);
        s.failures += 1;
        if s.failures >= self.max_fails {
            s.down_until = Some(Instant::now() + self.fail_timeout);
            s.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_max_fails_for_fail_timeout() {
        let h = Health::new(2, Duration::from_millis(50));
        h.failed("x");
        assert!(!h.is_down());
        h.failed("x");
        assert!(h.is_down());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!h.is_down());
        h.failed("x");
        h.succeeded();
        h.failed("x");
        assert!(!h.is_down(), "a success resets the count");
        assert_eq!(h.last_cause(), "x");
    }
}
