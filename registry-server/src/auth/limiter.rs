//! Password guessing, limited without locking the real user out.
//!
//! - Per user *and* client address: after [`MAX_FAILURES`] failures within [`WINDOW`], that pair
//!   is refused (429) until the window since its first failure ends. Guessing from one place
//!   never locks the user out from another.
//! - Atomic: an attempt reserves its place before its password is checked, so a burst of
//!   concurrent guesses checks at most the allowed number.
//! - Per user, from everywhere: once a user has [`SLOWDOWN_AFTER`] failures in the window, checks
//!   from addresses that never logged in as them are spaced [`SLOWDOWN_STEP`] apart (a queue, not
//!   a lock); an attempt that would wait longer than [`MAX_WAIT`] gets 429 with the wait.
//!   Addresses the user logged in from are not slowed.
//! - Bearer tokens: an address that presents [`MAX_BAD_TOKENS`] unknown tokens within
//!   [`TOKEN_WINDOW`] gets 429 for unknown tokens until the window ends.
//!
//! Every table is bounded (entries expire, capacity is capped), so guessing cannot fill memory.

use moka::sync::Cache;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub const MAX_FAILURES: u32 = 9;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const SLOWDOWN_AFTER: u32 = 5;
pub const SLOWDOWN_STEP: Duration = Duration::from_secs(1);
pub const MAX_WAIT: Duration = Duration::from_secs(5);
pub const MAX_BAD_TOKENS: u32 = 30;
pub const TOKEN_WINDOW: Duration = Duration::from_secs(60);
/// How long an address that logged in as a user stays exempt from that user's slowdown.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
const CAPACITY: u64 = 100_000;

/// Failures within a window, and attempts under way (reserved, not yet judged).
#[derive(Debug)]
struct Count {
    failures: u32,
    in_flight: u32,
    since: Instant,
}

impl Count {
    fn new() -> Self {
        Count {
            failures: 0,
            in_flight: 0,
            since: Instant::now(),
        }
    }

    /// Starts a new window when the current one is over and nothing is under way.
    fn refresh(&mut self, window: Duration) {
        if self.in_flight == 0 && self.since.elapsed() >= window {
            self.failures = 0;
            self.since = Instant::now();
        }
    }

    fn retry_after(&self, window: Duration) -> Duration {
        window.saturating_sub(self.since.elapsed()).max(Duration::from_secs(1))
    }
}

/// The per-user queue of checks from unknown addresses.
#[derive(Debug)]
struct UserState {
    failures: u32,
    since: Instant,
    next_slot: Instant,
}

type Shared<T> = Cache<String, Arc<Mutex<T>>>;

fn table<T: Send + Sync + 'static>(idle: Duration) -> Shared<T> {
    Cache::builder().max_capacity(CAPACITY).time_to_idle(idle).build()
}

fn entry<T: Send + Sync + 'static>(t: &Shared<T>, key: &str, new: impl FnOnce() -> T) -> Arc<Mutex<T>> {
    t.get_with(key.to_owned(), || Arc::new(Mutex::new(new())))
}

fn pair_key(user: &str, addr: Option<IpAddr>) -> String {
    match addr {
        Some(a) => format!("{user}\0{a}"),
        None => format!("{user}\0-"),
    }
}

pub struct LoginLimiter {
    pairs: Shared<Count>,
    users: Shared<UserState>,
    known: Cache<String, ()>,
    tokens: Shared<Count>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            pairs: table(WINDOW),
            users: table(WINDOW),
            known: Cache::builder().max_capacity(CAPACITY).time_to_idle(KNOWN_FOR).build(),
            tokens: table(TOKEN_WINDOW),
        }
    }
}

/// Why an attempt is not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This user from this address failed too often: retry after this long.
    TooMany(Duration),
    /// This user is being guessed at from elsewhere: checks are queued; retry after this long.
    Slowed(Duration),
}

/// A reserved attempt; say how it went with [`Attempt::succeeded`] or [`Attempt::failed`].
/// Dropped without either (a storage error), it frees its place without counting.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    user: String,
    pair: String,
    count: Arc<Mutex<Count>>,
    open: bool,
}

impl LoginLimiter {
    /// Reserves a check of `user`'s password from `addr`, waiting for the user's slowdown slot.
    pub async fn begin(&self, user: &str, addr: Option<IpAddr>) -> Result<Attempt<'_>, Refused> {
        let pair = pair_key(user, addr);
        let count = entry(&self.pairs, &pair, Count::new);
        {
            let mut c = count.lock().expect("not poisoned");
            c.refresh(WINDOW);
            if c.failures + c.in_flight >= MAX_FAILURES {
                return Err(Refused::TooMany(c.retry_after(WINDOW)));
            }
            c.in_flight += 1;
        }
        let attempt = Attempt {
            limiter: self,
            user: user.to_owned(),
            pair: pair.clone(),
            count,
            open: true,
        };
        if !self.known.contains_key(&pair) {
            let wait = self.slot(user)?;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        Ok(attempt)
    }

    /// The wait before a check of `user` from an unknown address may run.
    fn slot(&self, user: &str) -> Result<Duration, Refused> {
        let state = entry(&self.users, user, || UserState {
            failures: 0,
            since: Instant::now(),
            next_slot: Instant::now(),
        });
        let mut s = state.lock().expect("not poisoned");
        if s.since.elapsed() >= WINDOW {
            s.failures = 0;
            s.since = Instant::now();
        }
        if s.failures < SLOWDOWN_AFTER {
            return Ok(Duration::ZERO);
        }
        let now = Instant::now();
        let slot = s.next_slot.max(now);
        let wait = slot - now;
        if wait > MAX_WAIT {
            return Err(Refused::Slowed(wait));
        }
        s.next_slot = slot + SLOWDOWN_STEP;
        Ok(wait)
    }

    /// Whether `addr` may look up another unknown bearer token.
    pub fn check_token(&self, addr: Option<IpAddr>) -> Result<(), Duration> {
        let Some(addr) = addr else {
            return Ok(());
        };
        let Some(count) = self.tokens.get(&addr.to_string()) else {
            return Ok(());
        };
        let mut c = count.lock().expect("not poisoned");
        c.refresh(TOKEN_WINDOW);
        if c.failures >= MAX_BAD_TOKENS {
            Err(c.retry_after(TOKEN_WINDOW))
        } else {
            Ok(())
        }
    }

    /// `addr` presented a token that does not exist.
    pub fn bad_token(&self, addr: Option<IpAddr>) {
        if let Some(addr) = addr {
            let count = entry(&self.tokens, &addr.to_string(), Count::new);
            let mut c = count.lock().expect("not poisoned");
            c.refresh(TOKEN_WINDOW);
            c.failures += 1;
        }
    }
}

impl Attempt<'_> {
    pub fn succeeded(mut self) {
        self.open = false;
        self.limiter.pairs.invalidate(&self.pair);
        self.limiter.known.insert(self.pair.clone(), ());
    }

    pub fn failed(mut self) {
        self.open = false;
        {
            let mut c = self.count.lock().expect("not poisoned");
            c.in_flight -= 1;
            c.failures += 1;
        }
        let state = entry(&self.limiter.users, &self.user, || UserState {
            failures: 0,
            since: Instant::now(),
            next_slot: Instant::now(),
        });
        state.lock().expect("not poisoned").failures += 1;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            self.count.lock().expect("not poisoned").in_flight -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_pair_is_limited_and_other_addresses_are_not_locked_out() {
        let l = LoginLimiter::default();
        for _ in 0..MAX_FAILURES {
            l.begin("u", ip("1.2.3.4")).await.unwrap().failed();
        }
        assert!(matches!(l.begin("u", ip("1.2.3.4")).await, Err(Refused::TooMany(_))));
        // Another user from that address, and that user from elsewhere, are still checked.
        l.begin("other", ip("1.2.3.4")).await.unwrap().succeeded();
        let started = Instant::now();
        l.begin("u", ip("5.6.7.8")).await.unwrap().succeeded();
        assert!(started.elapsed() <= MAX_WAIT, "slowed at most MAX_WAIT");
        // Having logged in from there, that address is no longer slowed.
        let started = Instant::now();
        l.begin("u", ip("5.6.7.8")).await.unwrap().failed();
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn reservations_are_counted_before_the_check() {
        let l = LoginLimiter::default();
        let mut held = Vec::new();
        for _ in 0..MAX_FAILURES {
            held.push(l.begin("u", ip("1.2.3.4")).await.unwrap());
        }
        assert!(l.begin("u", ip("1.2.3.4")).await.is_err(), "nine under way: no tenth");
        drop(held.pop()); // a storage error: the place is free again, nothing counted
        let last = l.begin("u", ip("1.2.3.4")).await.unwrap();
        drop(last);
        drop(held);
        assert!(l.begin("u", ip("1.2.3.4")).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn guessing_from_many_addresses_queues_checks_of_unknown_addresses() {
        let l = LoginLimiter::default();
        for i in 0..SLOWDOWN_AFTER {
            l.begin("u", ip(&format!("10.0.0.{i}"))).await.unwrap().failed();
        }
        let started = Instant::now();
        for i in 0..3 {
            l.begin("u", ip(&format!("10.1.0.{i}"))).await.unwrap().failed();
        }
        assert!(started.elapsed() >= SLOWDOWN_STEP * 2, "{:?}", started.elapsed());
        // Reserve slots far ahead: past MAX_WAIT an attempt is told to come back.
        let mut refused = None;
        for i in 0..20 {
            if let Err(e) = l.slot("u") {
                refused = Some((i, e));
                break;
            }
        }
        assert!(matches!(refused, Some((_, Refused::Slowed(_)))), "{refused:?}");
    }

    #[test]
    fn unknown_tokens_are_limited_per_address() {
        let l = LoginLimiter::default();
        for _ in 0..MAX_BAD_TOKENS {
            assert!(l.check_token(ip("1.2.3.4")).is_ok());
            l.bad_token(ip("1.2.3.4"));
        }
        assert!(l.check_token(ip("1.2.3.4")).is_err());
        assert!(l.check_token(ip("5.6.7.8")).is_ok());
    }
}
