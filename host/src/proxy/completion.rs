//! The finisher of a forwarded request: created before the upstream send, it ends the request
//! exactly once, whatever path it takes (answered, upstream error, timeout, or the client gone
//! while the gateway waited for headers or relayed the body, when it is simply dropped).
//!
//! When the upstream reported no usage, the settlement still gets a count: on an abort, or when
//! output was relayed before the exchange broke, the prompt estimate plus the output relayed so
//! far (the same 4-bytes-a-token estimator as the reservation, [`crate::api::tokens`]).

use super::usage::Usage;
use crate::api::tokens::tokens_for_bytes;
use crate::policy::Outcome;

/// Called once when a request is over, with the usage to settle: the upstream's, else the
/// gateway's count (see the module doc), else none.
pub type OnComplete = Box<dyn FnOnce(Option<Usage>, Outcome) + Send>;

/// Guarantees the completion callback runs exactly once, even if it is dropped unfinished
/// (then as `ClientAborted`).
pub struct Completion {
    on_complete: Option<OnComplete>,
    /// The request's prompt estimate, in tokens.
    prompt_tokens: u32,
    /// Bytes of output text relayed to the client so far.
    output_bytes: usize,
}

impl Completion {
    pub fn new(prompt_tokens: u32, on_complete: OnComplete) -> Self {
        Completion { on_complete: Some(on_complete), prompt_tokens, output_bytes: 0 }
    }

    /// Runs `first` before the callback already set (for per-phase bookkeeping such as the
    /// active-streams gauge).
    pub fn before(&mut self, first: impl FnOnce() + Send + 'static) {
        if let Some(then) = self.on_complete.take() {
            self.on_complete = Some(Box::new(move |usage, outcome| {
                first();
                then(usage, outcome);
            }));
        }
    }

    /// Counts `bytes` of output text as relayed.
    pub fn add_output(&mut self, bytes: usize) {
        self.output_bytes = self.output_bytes.saturating_add(bytes);
    }

    pub fn finish(&mut self, usage: Option<Usage>, outcome: Outcome) {
        if let Some(f) = self.on_complete.take() {
            let usage = usage.or_else(|| self.counted(outcome));
            f(usage, outcome);
        }
    }

    /// The gateway's own count, when it is the best there is.
    fn counted(&self, outcome: Outcome) -> Option<Usage> {
        if outcome != Outcome::ClientAborted && self.output_bytes == 0 {
            return None; // nothing reached the client: settle on the outcome alone
        }
        if outcome == Outcome::NotForwarded {
            return None;
        }
        let completion_tokens = tokens_for_bytes(self.output_bytes);
        Some(Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens,
            total_tokens: self.prompt_tokens.saturating_add(completion_tokens),
        })
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.finish(None, Outcome::ClientAborted);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex};

    use super::*;

    type Seen = Arc<Mutex<Vec<(Option<Usage>, Outcome)>>>;

    fn recorder() -> (Seen, OnComplete) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (seen, Box::new(move |u, o| s.lock().unwrap().push((u, o))))
    }

    #[test]
    fn a_dropped_completion_settles_once_with_the_relayed_count() {
        let (seen, f) = recorder();
        let mut c = Completion::new(4, f);
        c.add_output(4 * 2900);
        drop(c);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (usage, outcome) = seen[0];
        assert_eq!(outcome, Outcome::ClientAborted);
        assert_eq!(usage, Some(Usage { prompt_tokens: 4, completion_tokens: 2900, total_tokens: 2904 }));
    }

    #[test]
    fn reported_usage_wins_and_errors_without_output_settle_without_usage() {
        let (seen, f) = recorder();
        let mut c = Completion::new(4, f);
        c.add_output(400);
        let reported = Usage { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 };
        c.finish(Some(reported), Outcome::Completed);
        c.finish(None, Outcome::UpstreamError);
        drop(c);
        assert_eq!(*seen.lock().unwrap(), vec![(Some(reported), Outcome::Completed)]);

        let (seen, f) = recorder();
        Completion::new(4, f).finish(None, Outcome::UpstreamError);
        assert_eq!(*seen.lock().unwrap(), vec![(None, Outcome::UpstreamError)]);

        let (seen, f) = recorder();
        drop(Completion::new(4, f)); // the client left while the gateway waited for headers
        let prompt_only = Usage { prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 };
        assert_eq!(*seen.lock().unwrap(), vec![(Some(prompt_only), Outcome::ClientAborted)]);
    }

    #[test]
    fn before_runs_first_and_once() {
        let (seen, f) = recorder();
        let order = Arc::new(Mutex::new(Vec::new()));
        let o = order.clone();
        let mut c = Completion::new(1, f);
        c.before(move || o.lock().unwrap().push("gauge"));
        c.finish(None, Outcome::Completed);
        drop(c);
        assert_eq!(*order.lock().unwrap(), vec!["gauge"]);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
