//! Quotas live in the host, never in guest memory: they are shared by every instance of a
//! plugin, survive plugin reloads and config changes, and (with a shared backend such as Redis,
//! to come) by several gateway replicas. Plugins reach them through the `quota-consume` and
//! `quota-adjust` imports; keys arrive here already namespaced by tenant and plugin.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state of a quota after `consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaStatus {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Milliseconds until the window ends.
    pub reset_ms: u64,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An atomic quota backend. Fixed windows aligned to multiples of `window` since the Unix epoch,
/// so every replica sharing a backend agrees on window boundaries.
pub trait QuotaStore: Send + Sync + 'static {
    /// Takes `cost` from `key` if it fits under `limit` in the current window; otherwise takes
    /// nothing.
    fn consume<'a>(&'a self, key: &'a str, cost: u64, limit: u64, window: Duration) -> BoxFuture<'a, QuotaStatus>;
    /// Adds `delta` (negative refunds) to `key`, clamped at zero, on behalf of a cost taken at
    /// `origin_ms` (ms since the epoch; the settled reservation's admission time, or now).
    /// A refund applies only while the window of `origin_ms` is current: giving it to a later
    /// window would hand out tokens that window never took. A charge for an ended window goes
    /// to the current one, so the excess of a request that spans a boundary is never lost.
    fn adjust<'a>(&'a self, key: &'a str, delta: i64, window: Duration, origin_ms: u64) -> BoxFuture<'a, ()>;
}

/// Now, in ms since the Unix epoch (the clock of quota windows).
pub fn epoch_ms() -> u64 {
    now_ms()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// Window start and time left for `window` at `now`.
fn window_of(now: u64, window: Duration) -> (u64, u64) {
    let w = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    let start = now - now % w;
    (start, start + w - now)
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    window_start: u64,
    window_ms: u64,
    used: u64,
}

const SHARDS: usize = 64;

/// The in-process store: 64 shards of `Mutex<HashMap>`, so unrelated keys rarely contend.
/// Expired windows are swept from a shard when it grows past a threshold.
pub struct InMemoryQuotaStore {
    shards: Vec<Mutex<HashMap<String, Counter>>>,
    hasher: RandomState,
}

impl Default for InMemoryQuotaStore {
    fn default() -> Self {
        InMemoryQuotaStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl InMemoryQuotaStore {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Counter>> {
        let i = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    /// Synchronous core of `consume` (also used by tests).
    pub fn consume_at(&self, key: &str, cost: u64, limit: u64, window: Duration, now: u64) -> QuotaStatus {
        let (start, left) = window_of(now, window);
        let w = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let Ok(mut map) = self.shard(key).lock() else {
            // A poisoned shard means a panic elsewhere; refuse rather than grant unlimited.
            return QuotaStatus { allowed: false, limit, remaining: 0, reset_ms: left };
        };
        if map.len() > 4096 {
            map.retain(|_, c| c.window_start + c.window_ms > now);
        }
        let c = map.entry(key.to_string()).or_insert(Counter { window_start: start, window_ms: w, used: 0 });
        if c.window_start != start || c.window_ms != w {
            *c = Counter { window_start: start, window_ms: w, used: 0 };
        }
        let allowed = c.used.saturating_add(cost) <= limit;
        if allowed {
            c.used += cost;
        }
        QuotaStatus { allowed, limit, remaining: limit.saturating_sub(c.used), reset_ms: left }
    }

    /// Synchronous core of `adjust`: `delta` for a cost taken at `origin`, applied at `now`.
    pub fn adjust_at(&self, key: &str, delta: i64, window: Duration, origin: u64, now: u64) {
        let (start, _) = window_of(now, window);
        if delta < 0 && window_of(origin, window).0 < start {
            return; // a refund for a window that is over
        }
        let w = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let Ok(mut map) = self.shard(key).lock() else { return };
        let c = map.entry(key.to_string()).or_insert(Counter { window_start: start, window_ms: w, used: 0 });
        if c.window_start != start || c.window_ms != w {
            *c = Counter { window_start: start, window_ms: w, used: 0 };
        }
        c.used = if delta >= 0 {
            c.used.saturating_add(delta.unsigned_abs())
        } else {
            c.used.saturating_sub(delta.unsigned_abs())
        };
    }
}

impl QuotaStore for InMemoryQuotaStore {
    fn consume<'a>(&'a self, key: &'a str, cost: u64, limit: u64, window: Duration) -> BoxFuture<'a, QuotaStatus> {
        let status = self.consume_at(key, cost, limit, window, now_ms());
        Box::pin(std::future::ready(status))
    }

    fn adjust<'a>(&'a self, key: &'a str, delta: i64, window: Duration, origin_ms: u64) -> BoxFuture<'a, ()> {
        self.adjust_at(key, delta, window, origin_ms, now_ms());
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn takes_only_what_fits_and_resets_with_the_window() {
        let s = InMemoryQuotaStore::default();
        let t = 120_000; // window start
        assert_eq!(s.consume_at("k", 3, 5, MIN, t).remaining, 2);
        let st = s.consume_at("k", 3, 5, MIN, t + 10);
        assert!(!st.allowed);
        assert_eq!(st.remaining, 2, "a refused consume takes nothing");
        assert_eq!(st.reset_ms, 60_000 - 10);
        assert!(s.consume_at("k", 2, 5, MIN, t + 20).allowed);
        assert!(s.consume_at("k", 5, 5, MIN, t + 60_000).allowed, "new window");
    }

    #[test]
    fn adjust_never_goes_below_zero_and_keys_are_separate() {
        let s = InMemoryQuotaStore::default();
        s.consume_at("a", 4, 10, MIN, 0);
        s.adjust_at("a", -100, MIN, 1, 1);
        assert_eq!(s.consume_at("a", 0, 10, MIN, 2).remaining, 10);
        s.adjust_at("a", 7, MIN, 3, 3);
        assert_eq!(s.consume_at("a", 0, 10, MIN, 4).remaining, 3);
        assert_eq!(s.consume_at("b", 0, 10, MIN, 4).remaining, 10);
    }

    #[test]
    fn settling_after_a_window_rollover_refunds_nothing_and_charges_the_new_window() {
        let s = InMemoryQuotaStore::default();
        let (w0, w1) = (120_000, 180_000);
        s.consume_at("k", 1000, 5000, MIN, w0 + 59_000); // reserved late in window 0
        s.consume_at("k", 300, 5000, MIN, w1 + 10); // another request in window 1
        s.adjust_at("k", -900, MIN, w0 + 59_000, w1 + 20); // the first one settles in window 1
        assert_eq!(s.consume_at("k", 0, 5000, MIN, w1 + 30).remaining, 4700, "refund must not land in window 1");
        s.adjust_at("k", 200, MIN, w0 + 59_000, w1 + 40); // an excess is still charged
        assert_eq!(s.consume_at("k", 0, 5000, MIN, w1 + 50).remaining, 4500);
        s.adjust_at("k", -100, MIN, w1 + 10, w1 + 60); // same window: refunded as before
        assert_eq!(s.consume_at("k", 0, 5000, MIN, w1 + 70).remaining, 4600);
    }

    #[test]
    fn concurrent_consumers_never_exceed_the_limit() {
        let s = Arc::new(InMemoryQuotaStore::default());
        let granted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (s, g) = (s.clone(), granted.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        if s.consume_at("shared", 1, 1000, MIN, 5).allowed {
                            g.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(granted.load(std::sync::atomic::Ordering::Relaxed), 1000);
    }
}
