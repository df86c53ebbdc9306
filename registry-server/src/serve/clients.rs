//! Fairness between clients: how many connections (or, behind a trusted proxy, requests) one
//! address holds at once, and which open connection gives way when all are in use.

use super::activity::{Activity, Phase};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How many of something each address holds, at most `cap`.
pub struct PerAddress {
    cap: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One held by an address, given back when dropped.
pub struct Held {
    of: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(PerAddress {
            cap: cap.max(1),
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// One more for `ip`, unless it holds its cap already.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Held> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().expect("not poisoned");
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Held { of: self.clone(), ip })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut counts = self.of.counts.lock().expect("not poisoned");
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Which connection gives way when all are in use: the one idle (between requests) the longest;
/// never one receiving, handling or answering a request (slow senders are bounded by the
/// headers timeout and the per-address cap instead). Pure.
pub fn to_reclaim(phases: impl IntoIterator<Item = (u64, Phase)>) -> Option<u64> {
    phases
        .into_iter()
        .filter_map(|(id, phase)| match phase {
            Phase::Waiting { since, head: None } => Some((since, id)),
            _ => None,
        })
        .min()
        .map(|(_, id)| id)
}

/// The open connections, so that one can be asked to give way.
#[derive(Default)]
pub struct Open {
    next: AtomicU64,
    all: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// A connection's place among the open ones, left when dropped.
pub struct Registered<'a> {
    open: &'a Open,
    id: u64,
}

impl Open {
    pub fn register(&self, activity: Arc<Activity>) -> Registered<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.all.lock().expect("not poisoned").insert(id, activity);
        Registered { open: self, id }
    }

    /// Asks the connection that should give way to close; whether there was one.
    pub fn reclaim(&self) -> bool {
        let all = self.all.lock().expect("not poisoned");
        let chosen = to_reclaim(all.iter().map(|(id, a)| (*id, a.phase())));
        match chosen.and_then(|id| all.get(&id)) {
            Some(a) => {
                a.reclaim();
                true
            }
            None => false,
        }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.open.all.lock().expect("not poisoned").remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_cap() {
        let per = PerAddress::new(2);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "::ffff:127.0.0.3".parse().unwrap());
        let a1 = per.take(a).unwrap();
        let _a2 = per.take(a).unwrap();
        assert!(per.take(a).is_none());
        let _b1 = per.take(b).unwrap();
        let _b2 = per.take("127.0.0.3".parse().unwrap()).unwrap();
        assert!(per.take(b).is_none(), "the mapped IPv6 form is the same address");
        drop(a1);
        assert!(per.take(a).is_some());
    }

    #[test]
    fn the_longest_idle_gives_way() {
        use std::time::Duration;
        use tokio::time::Instant;
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let idle = |since| Phase::Waiting { since, head: None };
        let heading = |h| Phase::Waiting {
            since: t0,
            head: Some(h),
        };
        assert_eq!(
            to_reclaim([(1, idle(t0 + s(50))), (2, idle(t0 + s(10))), (3, heading(t0))]),
            Some(2)
        );
        assert_eq!(to_reclaim([(1, Phase::Handling), (2, heading(t0))]), None);
    }
}
