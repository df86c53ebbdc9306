//! Verdaccio's uplink health: after `max_fails` failures in a row an uplink is left alone for
//! `fail_timeout`, and stored data is served meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    failures: u32,
    down_until: Option<Instant>,
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
        *self.state.lock().expect("lock poisoned") = State::default();
    }

    pub fn failed(&self) {
        let mut s = self.state.lock().expect("lock poisoned");
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
        h.failed();
        assert!(!h.is_down());
        h.failed();
        assert!(h.is_down());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!h.is_down());
        h.failed();
        h.succeeded();
        h.failed();
        assert!(!h.is_down(), "a success resets the count");
    }
}
