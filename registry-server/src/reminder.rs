//! A failure that keeps happening (storage down for long, e.g. S3 without credentials) is logged
//! once, then once a minute with a count of the lines left out, instead of a long SDK error at
//! every retry of every background loop.

use std::time::{Duration, Instant};

/// How often a failure that keeps happening is logged again.
pub const REMIND_EVERY: Duration = Duration::from_secs(60);

/// When a repeated failure is worth a log line: the first one, then one per [`REMIND_EVERY`]
/// saying how many were left out. Pure, given the time.
#[derive(Debug, Default)]
pub struct Reminder {
    last: Option<Instant>,
    quiet: u32,
}

impl Reminder {
    /// `Some(n)`: log now, `n` failures were not logged since the last line.
    pub fn failed(&mut self, now: Instant) -> Option<u32> {
        if self.last.is_some_and(|t| now.duration_since(t) < REMIND_EVERY) {
            self.quiet += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.quiet))
    }

    /// The failures ended: whether any were logged.
    pub fn succeeded(&mut self) -> bool {
        let had = self.last.is_some();
        *self = Reminder::default();
        had
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_failure_is_logged_once_per_reminder_period() {
        let every = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut r = Reminder::default();
        assert_eq!(r.failed(t0), Some(0));
        let logged = (1..30).filter(|i| r.failed(t0 + every * *i).is_some()).count();
        assert_eq!(logged, 0, "58 s of retries: no new line");
        assert_eq!(r.failed(t0 + REMIND_EVERY), Some(29));
        assert!(r.succeeded());
        assert!(!r.succeeded());
        assert_eq!(
            r.failed(t0 + REMIND_EVERY),
            Some(0),
            "a new failure after a success is logged"
        );
    }
}
