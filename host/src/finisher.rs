//! The finisher: the one place a request ends. Created when the request arrives, it travels
//! with the request (in its [`Exchange`](crate::server), then inside the relayed body of a
//! stream) and runs **exactly once**, on every path — answered, refused, failed, or dropped
//! because the client left at any await — when it is finished or simply dropped.
//!
//! What it does then, and nowhere else on the request path:
//! - **settles** every reservation the policy chain made (in the background, on the gateway's
//!   [`Supervisor`], so shutdown drains it): with the upstream's usage, else the gateway's own
//!   count (below), else none; as `not-forwarded` when nothing reached the upstream;
//! - records the request **metrics** (`wasmgate_http_requests_total{route,status}`, the time
//!   to the response headers, per-tenant counters, tokens);
//! - writes the **access log** line (target `wasmgate::access`, level debug: enable it with
//!   `RUST_LOG=info,wasmgate::access=debug`).
//!
//! When the upstream reported no usage, the settlement still gets a count: on an abort, or when
//! output was relayed before the exchange broke, the prompt estimate plus the output relayed so
//! far (the same 4-bytes-a-token estimator as the reservation, [`crate::api::tokens`]).

use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};

use crate::api::Blame;
use crate::api::tokens::tokens_for_bytes;
use crate::metrics::status_label;
use crate::policy::{Outcome, Settlement, Usage};
use crate::supervisor::Supervisor;

/// How a request ended, as the finisher's observers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub usage: Option<Usage>,
    pub outcome: Outcome,
    /// The status the client got; `None` when it left before any.
    pub status: Option<StatusCode>,
}

type Observer = Box<dyn FnOnce(&Ending) + Send>;

/// Runs the end of one request exactly once (see the module doc).
pub struct Finisher {
    ledger: Option<Box<Ledger>>,
}

struct Ledger {
    supervisor: Supervisor,
    started: Instant,
    route: &'static str,
    request_id: HeaderValue,
    tenant: Option<String>,
    model: Option<String>,
    upstream: Option<String>,
    status: Option<StatusCode>,
    /// Time to the response headers.
    headers_after: Option<Duration>,
    blame: Option<Blame>,
    settlements: Vec<Settlement>,
    /// The request went to an upstream: a drop from now on is a client abort that may have
    /// cost tokens.
    forwarded: bool,
    /// How the request ends when dropped, if a phase already knows (an upstream failure whose
    /// error response is still being written).
    pending: Option<Outcome>,
    prompt_tokens: u32,
    /// Bytes of output text relayed to the client so far.
    output_bytes: usize,
    observers: Vec<Observer>,
}

impl std::fmt::Debug for Finisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finisher").field("finished", &self.ledger.is_none()).finish_non_exhaustive()
    }
}

impl Finisher {
    /// The finisher of a request on `route` (a bounded label such as `chat`).
    pub fn new(supervisor: Supervisor, route: &'static str, request_id: HeaderValue) -> Self {
        Finisher {
            ledger: Some(Box::new(Ledger {
                supervisor,
                started: Instant::now(),
                route,
                request_id,
                tenant: None,
                model: None,
                upstream: None,
                status: None,
                headers_after: None,
                blame: None,
                settlements: Vec::new(),
                forwarded: false,
                pending: None,
                prompt_tokens: 0,
                output_bytes: 0,
                observers: Vec::new(),
            })),
        }
    }

    fn with(&mut self, f: impl FnOnce(&mut Ledger)) {
        if let Some(l) = self.ledger.as_deref_mut() {
            f(l);
        }
    }

    /// The tenant the request was assigned (a configured id: bounded label values).
    pub fn set_tenant(&mut self, tenant: &str) {
        self.with(|l| l.tenant = Some(tenant.to_string()));
    }

    pub fn set_model(&mut self, model: &str) {
        self.with(|l| l.model = Some(model.to_string()));
    }

    pub fn set_upstream(&mut self, upstream: &str) {
        self.with(|l| l.upstream = Some(upstream.to_string()));
    }

    /// The status the client gets (the first call wins: it is the head that was sent).
    pub fn set_status(&mut self, status: StatusCode) {
        self.with(|l| {
            if l.status.is_none() {
                l.status = Some(status);
                l.headers_after = Some(l.started.elapsed());
            }
        });
    }

    /// Who is to blame for the error the request ended with.
    pub fn set_blame(&mut self, blame: &Blame) {
        self.with(|l| l.blame = Some(blame.clone()));
    }

    /// A reservation to settle when the request is over.
    pub fn reserve(&mut self, settlement: Settlement) {
        match self.ledger.as_deref_mut() {
            Some(l) => l.settlements.push(settlement),
            // Finished already (cannot happen on the request path): refund it right away.
            None => Supervisor::new().spawn(settlement.settle(None, Outcome::NotForwarded)),
        }
    }

    /// The request is being sent upstream with a prompt of about `prompt_tokens`.
    pub fn forwarding(&mut self, prompt_tokens: u32) {
        self.with(|l| {
            l.forwarded = true;
            l.prompt_tokens = prompt_tokens;
        });
    }

    /// The request will end with `outcome` (when it is finished by its drop, after the error
    /// response's status is known).
    pub fn set_outcome(&mut self, outcome: Outcome) {
        self.with(|l| l.pending = Some(outcome));
    }

    /// Moves the ledger into a new finisher (one that travels with a relayed body); this one
    /// is left finished.
    pub fn take(&mut self) -> Finisher {
        Finisher { ledger: self.ledger.take() }
    }

    /// Counts `bytes` of output text as relayed.
    pub fn add_output(&mut self, bytes: usize) {
        self.with(|l| l.output_bytes = l.output_bytes.saturating_add(bytes));
    }

    /// Runs `f` when the request ends, before the metrics and settlement (per-phase
    /// bookkeeping such as the active-streams gauge; tests).
    pub fn on_end(&mut self, f: impl FnOnce(&Ending) + Send + 'static) {
        self.with(|l| l.observers.push(Box::new(f)));
    }

    pub fn is_finished(&self) -> bool {
        self.ledger.is_none()
    }

    /// Ends the request with `usage` (the upstream's, if it reported any) and `outcome`.
    /// Later calls, and the drop, do nothing.
    pub fn finish(&mut self, usage: Option<Usage>, outcome: Outcome) {
        if let Some(l) = self.ledger.take() {
            l.close(usage, outcome);
        }
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        let outcome = match self.ledger.as_deref() {
            None => return,
            Some(Ledger { pending: Some(o), .. }) => *o,
            Some(l) if l.forwarded => Outcome::ClientAborted,
            // Nothing reached an upstream: whatever the reason, nothing was spent there.
            Some(_) => Outcome::NotForwarded,
        };
        self.finish(None, outcome);
    }
}

impl Ledger {
    /// The gateway's own count, when it is the best there is.
    fn counted(&self, outcome: Outcome) -> Option<Usage> {
        if outcome == Outcome::NotForwarded || (outcome != Outcome::ClientAborted && self.output_bytes == 0) {
            return None; // nothing reached the client: settle on the outcome alone
        }
        let completion_tokens = tokens_for_bytes(self.output_bytes);
        Some(Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens,
            total_tokens: self.prompt_tokens.saturating_add(completion_tokens),
        })
    }

    fn close(mut self: Box<Self>, reported: Option<Usage>, outcome: Outcome) {
        let usage = reported.or_else(|| self.counted(outcome));
        let ending = Ending { usage, outcome, status: self.status };
        for f in std::mem::take(&mut self.observers) {
            f(&ending);
        }
        self.record(&ending, reported);
        self.log(&ending);
        let settlements = std::mem::take(&mut self.settlements);
        if !settlements.is_empty() {
            self.supervisor.spawn(async move {
                for s in settlements {
                    s.settle(usage, outcome).await;
                }
            });
        }
    }

    fn record(&self, ending: &Ending, reported: Option<Usage>) {
        // A client that left before any head was sent is nginx's 499.
        let status = ending.status.map_or(499, |s| s.as_u16());
        let until_headers = self.headers_after.unwrap_or_else(|| self.started.elapsed()).as_secs_f64();
        metrics::counter!("wasmgate_http_requests_total", "route" => self.route, "status" => status_label(status))
            .increment(1);
        metrics::histogram!("wasmgate_http_request_duration_seconds", "route" => self.route).record(until_headers);
        if let Some(t) = &self.tenant {
            metrics::counter!("wasmgate_tenant_requests_total", "tenant" => t.clone(), "status" => status_label(status))
                .increment(1);
            metrics::histogram!("wasmgate_tenant_request_duration_seconds", "tenant" => t.clone())
                .record(until_headers);
        }
        if let Some(b) = &self.blame {
            metrics::counter!("wasmgate_request_errors_total", "route" => self.route, "blame" => b.label())
                .increment(1);
        }
        if let Some(u) = reported {
            metrics::counter!("wasmgate_tokens_total", "kind" => "prompt").increment(u64::from(u.prompt_tokens));
            metrics::counter!("wasmgate_tokens_total", "kind" => "completion")
                .increment(u64::from(u.completion_tokens));
        }
    }

    fn log(&self, ending: &Ending) {
        tracing::debug!(
            target: "wasmgate::access",
            request_id = ?self.request_id,
            route = self.route,
            status = ending.status.map_or(499, |s| s.as_u16()),
            outcome = ?ending.outcome,
            tenant = self.tenant.as_deref().unwrap_or("-"),
            model = ?self.model.as_deref().unwrap_or("-"),
            upstream = self.upstream.as_deref().unwrap_or("-"),
            prompt_tokens = ending.usage.map_or(0, |u| u.prompt_tokens),
            completion_tokens = ending.usage.map_or(0, |u| u.completion_tokens),
            blame = self.blame.as_ref().map_or("-", Blame::label),
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex};

    use super::*;

    fn finisher() -> (Arc<Mutex<Vec<Ending>>>, Finisher) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut f = Finisher::new(Supervisor::new(), "chat", HeaderValue::from_static("req-1"));
        f.on_end(move |e| s.lock().unwrap().push(*e));
        (seen, f)
    }

    #[test]
    fn a_dropped_forwarded_request_ends_once_as_aborted_with_the_relayed_count() {
        let (seen, mut f) = finisher();
        f.forwarding(4);
        f.add_output(4 * 2900);
        drop(f);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].outcome, Outcome::ClientAborted);
        assert_eq!(seen[0].usage, Some(Usage { prompt_tokens: 4, completion_tokens: 2900, total_tokens: 2904 }));
        assert_eq!(seen[0].status, None);
    }

    #[test]
    fn a_dropped_request_that_never_left_is_not_forwarded() {
        let (seen, mut f) = finisher();
        f.set_status(StatusCode::UNAUTHORIZED);
        drop(f);
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            vec![Ending { usage: None, outcome: Outcome::NotForwarded, status: Some(StatusCode::UNAUTHORIZED) }]
        );
    }

    #[test]
    fn reported_usage_wins_and_later_endings_are_ignored() {
        let (seen, mut f) = finisher();
        f.forwarding(4);
        f.add_output(400);
        f.set_status(StatusCode::OK);
        f.set_status(StatusCode::BAD_GATEWAY); // the head already sent stays
        let reported = Usage { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 };
        f.finish(Some(reported), Outcome::Completed);
        f.finish(None, Outcome::UpstreamError);
        assert!(f.is_finished());
        drop(f);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![Ending { usage: Some(reported), outcome: Outcome::Completed, status: Some(StatusCode::OK) }]
        );
    }

    #[test]
    fn an_upstream_error_without_output_settles_without_usage() {
        let (seen, mut f) = finisher();
        f.forwarding(4);
        f.finish(None, Outcome::UpstreamError);
        assert_eq!(seen.lock().unwrap()[0].usage, None);
        let (seen, mut f) = finisher();
        f.forwarding(4);
        drop(f); // the client left while the gateway waited for headers
        assert_eq!(
            seen.lock().unwrap()[0].usage,
            Some(Usage { prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 })
        );
    }
}
