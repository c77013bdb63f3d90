//! A crash-loop breaker per plugin: after `THRESHOLD` consecutive failures the plugin is not
//! called for a cooldown (1 s, doubling up to 30 s); then one trial call decides whether it
//! closes again. A plugin that traps on every request thus costs one failure per cooldown,
//! not one per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const THRESHOLD: u32 = 5;
const BASE_COOLDOWN: Duration = Duration::from_secs(1);
const MAX_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    consecutive: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
    trial_in_flight: bool,
}

#[derive(Debug, Default)]
pub struct Breaker(Mutex<State>);

impl Breaker {
    /// Whether a call may go ahead now.
    pub fn allow(&self) -> bool {
        let Ok(mut s) = self.0.lock() else { return true };
        match s.open_until {
            None => true,
            Some(t) if Instant::now() < t => false,
            Some(_) if s.trial_in_flight => false,
            Some(_) => {
                s.trial_in_flight = true;
                true
            }
        }
    }

    pub fn success(&self) {
        if let Ok(mut s) = self.0.lock() {
            *s = State::default();
        }
    }

    /// Records a failure; true if the breaker (re)opened.
    pub fn failure(&self) -> bool {
        let Ok(mut s) = self.0.lock() else { return false };
        s.consecutive += 1;
        s.trial_in_flight = false;
        if s.consecutive >= THRESHOLD {
            s.cooldown = if s.cooldown.is_zero() { BASE_COOLDOWN } else { (s.cooldown * 2).min(MAX_COOLDOWN) };
            s.open_until = Some(Instant::now() + s.cooldown);
            return true;
        }
        false
    }

    pub fn is_open(&self) -> bool {
        self.0.lock().map(|s| s.open_until.is_some()).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_closes_after_a_good_trial() {
        let b = Breaker::default();
        for _ in 0..THRESHOLD - 1 {
            assert!(b.allow());
            assert!(!b.failure());
        }
        assert!(b.failure(), "opens at the threshold");
        assert!(!b.allow(), "open: calls refused");
        // Pretend the cooldown passed.
        b.0.lock().unwrap_or_else(|e| e.into_inner()).open_until = Some(Instant::now());
        assert!(b.allow(), "one trial");
        assert!(!b.allow(), "only one trial at a time");
        b.success();
        assert!(b.allow() && !b.is_open());
    }

    #[test]
    fn cooldown_doubles_on_failed_trials() {
        let b = Breaker::default();
        for _ in 0..THRESHOLD {
            b.failure();
        }
        let first = b.0.lock().unwrap_or_else(|e| e.into_inner()).cooldown;
        b.failure();
        let second = b.0.lock().unwrap_or_else(|e| e.into_inner()).cooldown;
        assert_eq!(second, first * 2);
    }
}
