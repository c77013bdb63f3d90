//! A crash-loop breaker per plugin and tenant: after `THRESHOLD` consecutive failures the
//! plugin is not called for that tenant for a cooldown (1 s, doubling up to 30 s); then one
//! trial call decides whether it closes again. A plugin that traps on every request thus costs
//! one failure per cooldown, not one per request.
//!
//! Invariant: at most one trial runs at a time, and every trial ends. A call holds a
//! [`CallGuard`]; `success` closes the breaker, `failure` counts (and reopens it with a longer
//! cooldown after a failed trial), and a guard dropped without either (the client went away
//! and the call's future was dropped, or the call never ran for lack of an instance) is
//! neither: a trial hands its turn to the next caller instead of keeping the breaker open.
//!
//! Breakers are kept per tenant ([`Breakers`]) so that one tenant's traffic, sent through a
//! global plugin shared by every tenant, never opens the breaker of another. The clock is
//! passed in, so the state machine is tested without sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const THRESHOLD: u32 = 5;
const BASE_COOLDOWN: Duration = Duration::from_secs(1);
const MAX_COOLDOWN: Duration = Duration::from_secs(30);
/// Tenants with their own breaker per plugin; later ones share one (the scope comes from the
/// path, Host or identity, so the map must stay bounded).
const MAX_SCOPES: usize = 256;
/// The scope of tenants beyond [`MAX_SCOPES`].
const OVERFLOW_SCOPE: &str = "*";

#[derive(Debug, Default)]
struct State {
    consecutive: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
    trial_in_flight: bool,
}

/// One breaker (one plugin, one tenant).
#[derive(Debug, Default)]
pub struct Breaker(Mutex<State>);

/// What `/admin/plugins` shows of one breaker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BreakerState {
    /// The tenant this breaker counts for (`""`: not known when the plugin ran).
    pub tenant: String,
    /// `closed`, `open` (calls refused) or `half-open` (the next call is a trial).
    pub state: &'static str,
    pub consecutive_failures: u32,
    /// When an open breaker lets a trial through (Unix ms); none when closed.
    pub open_until_unix_ms: Option<u64>,
}

/// A call the breaker let through. Settle it with [`success`](CallGuard::success) or
/// [`failure`](CallGuard::failure); dropping it counts as neither.
#[derive(Debug)]
#[must_use = "a call guard must be settled; dropping it counts as neither success nor failure"]
pub struct CallGuard {
    breaker: Arc<Breaker>,
    trial: bool,
}

impl Breaker {
    /// Lets a call through now, or refuses it (open, or a trial already running).
    pub fn admit(self: &Arc<Self>, now: Instant) -> Option<CallGuard> {
        let Ok(mut s) = self.0.lock() else { return Some(CallGuard { breaker: self.clone(), trial: false }) };
        let trial = match s.open_until {
            None => false,
            Some(t) if now < t => return None,
            Some(_) if s.trial_in_flight => return None,
            Some(_) => {
                s.trial_in_flight = true;
                true
            }
        };
        Some(CallGuard { breaker: self.clone(), trial })
    }

    fn state(&self, tenant: &str, now: Instant, wall: SystemTime) -> BreakerState {
        let s = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (state, until) = match s.open_until {
            None => ("closed", None),
            Some(t) if now < t => ("open", Some(t)),
            Some(t) => ("half-open", Some(t)),
        };
        let open_until_unix_ms = until.map(|t| {
            let at = wall + t.saturating_duration_since(now);
            at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        });
        BreakerState { tenant: tenant.to_string(), state, consecutive_failures: s.consecutive, open_until_unix_ms }
    }

    fn is_open(&self) -> bool {
        self.0.lock().map(|s| s.open_until.is_some()).unwrap_or(false)
    }
}

impl CallGuard {
    /// The call succeeded: the breaker closes.
    pub fn success(self) {
        if let Ok(mut s) = self.breaker.0.lock() {
            *s = State::default();
        }
        // `Drop` finds nothing left to release.
    }

    /// The call failed; true if the breaker (re)opened.
    pub fn failure(self, now: Instant) -> bool {
        let Ok(mut s) = self.breaker.0.lock() else { return false };
        s.consecutive += 1;
        if self.trial {
            s.trial_in_flight = false;
        }
        // A call admitted before the breaker opened that fails while a trial runs only counts:
        // the trial decides.
        if s.consecutive >= THRESHOLD && (s.open_until.is_none() || self.trial) {
            s.cooldown = if s.cooldown.is_zero() { BASE_COOLDOWN } else { (s.cooldown * 2).min(MAX_COOLDOWN) };
            s.open_until = Some(now + s.cooldown);
            return true;
        }
        false
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        // A trial that ended without a verdict (cancelled, no instance): the next caller may
        // try. Harmless after `success`/`failure`, which already cleared the flag.
        if self.trial
            && let Ok(mut s) = self.breaker.0.lock()
        {
            s.trial_in_flight = false;
        }
    }
}

/// The breakers of one loaded plugin, one per tenant. A new plugin version starts with none
/// (all closed): a reload that swaps in a new version resets them.
#[derive(Debug, Default)]
pub struct Breakers(Mutex<HashMap<String, Arc<Breaker>>>);

impl Breakers {
    /// The breaker of `tenant` (created closed on first use).
    pub fn get(&self, tenant: &str) -> Arc<Breaker> {
        let Ok(mut m) = self.0.lock() else { return Arc::new(Breaker::default()) };
        if let Some(b) = m.get(tenant) {
            return b.clone();
        }
        let key = if m.len() < MAX_SCOPES { tenant } else { OVERFLOW_SCOPE };
        m.entry(key.to_string()).or_default().clone()
    }

    /// Whether any tenant's breaker is open or half-open.
    pub fn any_open(&self) -> bool {
        self.0.lock().map(|m| m.values().any(|b| b.is_open())).unwrap_or(false)
    }

    /// Every tenant's breaker, sorted by tenant.
    pub fn states(&self, now: Instant, wall: SystemTime) -> Vec<BreakerState> {
        let list: Vec<(String, Arc<Breaker>)> =
            self.0.lock().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        let mut out: Vec<BreakerState> = list.iter().map(|(t, b)| b.state(t, now, wall)).collect();
        out.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(b: &Arc<Breaker>, now: Instant) {
        for _ in 0..THRESHOLD {
            if let Some(g) = b.admit(now) {
                g.failure(now);
            }
        }
        assert!(b.admit(now).is_none(), "open after {THRESHOLD} failures");
    }

    #[test]
    fn opens_after_consecutive_failures_and_closes_after_a_good_trial() {
        let b = Arc::new(Breaker::default());
        let t0 = Instant::now();
        for _ in 0..THRESHOLD - 1 {
            let g = b.admit(t0);
            assert!(g.is_some_and(|g| !g.failure(t0)));
        }
        assert!(b.admit(t0).is_some_and(|g| g.failure(t0)), "opens at the threshold");
        assert!(b.admit(t0).is_none(), "open: calls refused");
        let later = t0 + BASE_COOLDOWN;
        let trial = b.admit(later);
        assert!(trial.is_some(), "one trial after the cooldown");
        assert!(b.admit(later).is_none(), "only one trial at a time");
        if let Some(g) = trial {
            g.success();
        }
        assert!(b.admit(later).is_some() && !b.is_open());
    }

    #[test]
    fn cooldown_doubles_on_failed_trials() {
        let b = Arc::new(Breaker::default());
        let t0 = Instant::now();
        open(&b, t0);
        let first = b.0.lock().unwrap_or_else(|e| e.into_inner()).cooldown;
        let t1 = t0 + first;
        assert!(b.admit(t1).is_some_and(|g| g.failure(t1)), "a failed trial reopens");
        let second = b.0.lock().unwrap_or_else(|e| e.into_inner()).cooldown;
        assert_eq!(second, first * 2);
        assert!(b.admit(t1 + first).is_none(), "still open after the first cooldown");
        assert!(b.admit(t1 + second).is_some(), "a trial after the doubled one");
    }

    #[test]
    fn a_cancelled_trial_is_neither_success_nor_failure() {
        let b = Arc::new(Breaker::default());
        let t0 = Instant::now();
        open(&b, t0);
        let t1 = t0 + BASE_COOLDOWN;
        let trial = b.admit(t1);
        assert!(trial.is_some());
        drop(trial); // the client went away while the plugin ran
        let s = b.state("", t1, SystemTime::now());
        assert_eq!((s.state, s.consecutive_failures), ("half-open", THRESHOLD), "not counted, not closed");
        let next = b.admit(t1);
        assert!(next.is_some(), "the next caller gets the trial");
        if let Some(g) = next {
            g.success();
        }
        assert_eq!(b.state("", t1, SystemTime::now()).state, "closed");
    }

    #[test]
    fn a_late_failure_from_before_the_opening_does_not_steal_the_trial() {
        let b = Arc::new(Breaker::default());
        let t0 = Instant::now();
        let early = b.admit(t0); // admitted while closed, still running
        open(&b, t0);
        let t1 = t0 + BASE_COOLDOWN;
        let trial = b.admit(t1);
        assert!(trial.is_some());
        assert!(early.is_some_and(|g| !g.failure(t1)), "counts, does not reopen");
        assert!(b.admit(t1).is_none(), "the trial still runs: no second one");
        if let Some(g) = trial {
            g.success();
        }
        assert!(!b.is_open());
    }

    #[test]
    fn tenants_have_their_own_breakers_and_the_map_stays_bounded() {
        let all = Breakers::default();
        let t0 = Instant::now();
        open(&all.get("a"), t0);
        assert!(all.get("a").admit(t0).is_none());
        assert!(all.get("b").admit(t0).is_some(), "tenant b is not affected by a's failures");
        for i in 0..MAX_SCOPES * 2 {
            let _ = all.get(&format!("t{i}"));
        }
        assert!(all.states(t0, SystemTime::now()).len() <= MAX_SCOPES + 1);
        let states = all.states(t0, SystemTime::now());
        let a = states.iter().find(|s| s.tenant == "a");
        assert!(a.is_some_and(|s| s.state == "open" && s.open_until_unix_ms.is_some()), "{states:?}");
    }

    #[test]
    fn exactly_one_trial_under_concurrency_and_cancellation_never_sticks() {
        // Many threads race for the trial; the winner drops it (cancelled). Repeated, the
        // breaker must always hand the trial on: never two at once, never none forever.
        let b = Arc::new(Breaker::default());
        let t0 = Instant::now();
        open(&b, t0);
        let t1 = t0 + BASE_COOLDOWN;
        for round in 0..50 {
            use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
            let (winners, running) = (AtomicUsize::new(0), AtomicUsize::new(0));
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        if let Some(g) = b.admit(t1) {
                            winners.fetch_add(1, SeqCst);
                            assert_eq!(running.fetch_add(1, SeqCst), 0, "two trials at once");
                            std::thread::yield_now();
                            running.fetch_sub(1, SeqCst);
                            drop(g);
                        }
                    });
                }
            });
            assert!(winners.into_inner() >= 1, "round {round}: the trial got stuck");
            assert!(!b.0.lock().unwrap_or_else(|e| e.into_inner()).trial_in_flight, "round {round}");
        }
    }
}
