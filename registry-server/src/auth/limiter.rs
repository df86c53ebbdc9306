//! Failed-login rate limiting, per user name and per client address: after `MAX_FAILURES`
//! failures in a row within the window, further attempts are refused until the window passes.

use moka::sync::Cache;
use std::time::Duration;

pub const MAX_FAILURES: u32 = 9;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

pub struct LoginLimiter {
    failures: Cache<String, u32>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            failures: Cache::builder().max_capacity(100_000).time_to_live(WINDOW).build(),
        }
    }
}

fn keys(user: &str, addr: Option<&str>) -> Vec<String> {
    let mut k = vec![format!("user:{user}")];
    if let Some(a) = addr {
        k.push(format!("addr:{a}"));
    }
    k
}

impl LoginLimiter {
    /// `Err(retry_after)` when this user or address must wait.
    pub fn check(&self, user: &str, addr: Option<&str>) -> Result<(), Duration> {
        let blocked = keys(user, addr)
            .iter()
            .any(|k| self.failures.get(k).is_some_and(|n| n >= MAX_FAILURES));
        if blocked { Err(WINDOW) } else { Ok(()) }
    }

    pub fn failed(&self, user: &str, addr: Option<&str>) {
        for k in keys(user, addr) {
            let n = self.failures.get(&k).unwrap_or(0);
            self.failures.insert(k, n + 1);
        }
    }

    pub fn succeeded(&self, user: &str, addr: Option<&str>) {
        for k in keys(user, addr) {
            self.failures.invalidate(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenth_attempt_is_refused() {
        let l = LoginLimiter::default();
        for _ in 0..MAX_FAILURES {
            assert!(l.check("u", Some("1.2.3.4")).is_ok());
            l.failed("u", Some("1.2.3.4"));
        }
        assert!(l.check("u", Some("5.6.7.8")).is_err(), "per user");
        assert!(l.check("other", Some("1.2.3.4")).is_err(), "per address");
        assert!(l.check("other", Some("5.6.7.8")).is_ok());
        l.succeeded("u", Some("1.2.3.4"));
        assert!(l.check("u", Some("1.2.3.4")).is_ok());
    }
}
