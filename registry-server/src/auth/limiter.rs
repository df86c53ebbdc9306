//! Password guessing, limited without locking the real user out: every failed guess is charged
//! to the address that made it, never to the user from everywhere.
//!
//! - Per user *and* client address: after [`MAX_FAILURES`] failures within [`WINDOW`], that pair
//!   is refused (429) until the window since its first failure ends. Guessing from one place
//!   never locks the user out from another.
//! - Per client address, over all users: after [`MAX_ADDRESS_FAILURES`] failures within
//!   [`WINDOW`], that address is refused for every user it never logged in as.
//! - Atomic: an attempt reserves its place before its password is checked, so a burst of
//!   concurrent guesses checks at most the allowed number.
//! - Per user, from everywhere: once a user has [`SLOWDOWN_AFTER`] failures in the window, each
//!   check from an address that never logged in as them first waits [`SLOWDOWN_STEP`]: slowed,
//!   never refused, so guesses from elsewhere cost the real user a second at a new address and
//!   never a 429. Addresses the user logged in from are not slowed.
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
pub const MAX_ADDRESS_FAILURES: u32 = 30;
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

/// A user's failures from everywhere: whether checks from unknown addresses are slowed.
#[derive(Debug)]
struct UserState {
    failures: u32,
    since: Instant,
}

impl UserState {
    fn new() -> Self {
        UserState {
            failures: 0,
            since: Instant::now(),
        }
    }
}

type Shared<T> = Cache<String, Arc<Mutex<T>>>;

fn table<T: Send + Sync + 'static>(idle: Duration) -> Shared<T> {
    Cache::builder().max_capacity(CAPACITY).time_to_idle(idle).build()
}

fn entry<T: Send + Sync + 'static>(t: &Shared<T>, key: &str, new: impl FnOnce() -> T) -> Arc<Mutex<T>> {
    t.get_with(key.to_owned(), || Arc::new(Mutex::new(new())))
}

/// The client an address counts for: an IPv6 address by its /64 (one host usually holds a whole
/// /64, so counting its addresses one by one would give it billions of fresh starts).
pub fn client_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

fn pair_key(user: &str, addr: Option<IpAddr>) -> String {
    match addr.map(client_of) {
        Some(a) => format!("{user}\0{a}"),
        None => format!("{user}\0-"),
    }
}

pub struct LoginLimiter {
    pairs: Shared<Count>,
    addresses: Shared<Count>,
    users: Shared<UserState>,
    known: Cache<String, ()>,
    tokens: Shared<Count>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            pairs: table(WINDOW),
            addresses: table(WINDOW),
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
    /// This address failed too often for any user: retry after this long.
    Address(Duration),
}

/// A reserved attempt; say how it went with [`Attempt::succeeded`] or [`Attempt::failed`].
/// Dropped without either (a storage error), it frees its place without counting.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    user: String,
    pair: String,
    count: Arc<Mutex<Count>>,
    address: Option<Arc<Mutex<Count>>>,
    open: bool,
}

impl LoginLimiter {
    /// Reserves a check of `user`'s password from `addr`, after the user's slowdown if any.
    pub async fn begin(&self, user: &str, addr: Option<IpAddr>) -> Result<Attempt<'_>, Refused> {
        let pair = pair_key(user, addr);
        let known = self.known.contains_key(&pair);
        let count = entry(&self.pairs, &pair, Count::new);
        {
            let mut c = count.lock().expect("not poisoned");
            c.refresh(WINDOW);
            if c.failures + c.in_flight >= MAX_FAILURES {
                return Err(Refused::TooMany(c.retry_after(WINDOW)));
            }
            c.in_flight += 1;
        }
        let mut attempt = Attempt {
            limiter: self,
            user: user.to_owned(),
            pair,
            count,
            address: None,
            open: true,
        };
        if let Some(a) = addr.filter(|_| !known) {
            let address = entry(&self.addresses, &client_of(a).to_string(), Count::new);
            {
                let mut c = address.lock().expect("not poisoned");
                c.refresh(WINDOW);
                if c.failures + c.in_flight >= MAX_ADDRESS_FAILURES {
                    return Err(Refused::Address(c.retry_after(WINDOW)));
                }
                c.in_flight += 1;
            }
            attempt.address = Some(address);
        }
        if !known && self.slowed(user) {
            tokio::time::sleep(SLOWDOWN_STEP).await;
        }
        Ok(attempt)
    }

    /// Whether checks of `user` from unknown addresses wait first (others are guessing).
    fn slowed(&self, user: &str) -> bool {
        let Some(state) = self.users.get(user) else {
            return false;
        };
        let mut s = state.lock().expect("not poisoned");
        if s.since.elapsed() >= WINDOW {
            *s = UserState::new();
        }
        s.failures >= SLOWDOWN_AFTER
    }

    /// Whether `addr` may look up another unknown bearer token.
    pub fn check_token(&self, addr: Option<IpAddr>) -> Result<(), Duration> {
        let Some(addr) = addr else {
            return Ok(());
        };
        let Some(count) = self.tokens.get(&client_of(addr).to_string()) else {
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
            let count = entry(&self.tokens, &client_of(addr).to_string(), Count::new);
            let mut c = count.lock().expect("not poisoned");
            c.refresh(TOKEN_WINDOW);
            c.failures += 1;
        }
    }
}

impl Attempt<'_> {
    pub fn succeeded(mut self) {
        self.open = false;
        self.release_address(false);
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
        self.release_address(true);
        let state = entry(&self.limiter.users, &self.user, UserState::new);
        state.lock().expect("not poisoned").failures += 1;
    }

    fn release_address(&mut self, failed: bool) {
        if let Some(a) = self.address.take() {
            let mut c = a.lock().expect("not poisoned");
            c.in_flight -= 1;
            c.failures += u32::from(failed);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            self.count.lock().expect("not poisoned").in_flight -= 1;
            self.release_address(false);
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
        assert!(started.elapsed() <= SLOWDOWN_STEP, "slowed, not refused");
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
    async fn guessing_from_many_addresses_slows_the_user_at_new_addresses_and_never_refuses() {
        let l = LoginLimiter::default();
        for i in 0..200 {
            if let Ok(a) = l.begin("u", ip(&format!("10.0.{}.{}", i / 250, i % 250))).await {
                a.failed();
            }
        }
        for i in 0..12 {
            let started = Instant::now();
            let a = l.begin("u", ip(&format!("10.1.0.{i}"))).await;
            assert!(a.is_ok(), "a new address is never refused for others' guesses");
            assert_eq!(started.elapsed(), SLOWDOWN_STEP, "but slowed");
            a.unwrap().succeeded();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_guessing_many_users_is_refused_for_users_it_does_not_know() {
        let l = LoginLimiter::default();
        l.begin("mine", ip("1.2.3.4")).await.unwrap().succeeded();
        for i in 0..MAX_ADDRESS_FAILURES {
            l.begin(&format!("user{i}"), ip("1.2.3.4")).await.unwrap().failed();
        }
        assert!(matches!(
            l.begin("other", ip("1.2.3.4")).await,
            Err(Refused::Address(_))
        ));
        assert!(l.begin("other", ip("5.6.7.8")).await.is_ok(), "only that address");
        assert!(l.begin("mine", ip("1.2.3.4")).await.is_ok(), "a user it logged in as");
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
