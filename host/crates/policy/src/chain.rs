//! The chain: a tenant's plugins run in order on one request. Each returns continue, mutate
//! (edits applied at once to the request, through its [`Subject`], so later plugins see them —
//! the body included) or respond (the request ends here). Failures follow each plugin's
//! policy: fail-closed ends the request with [`PolicyFailure`], fail-open skips the plugin. A
//! body larger than a plugin's `body-limit` is such a failure too, decided before the call: the
//! plugin is not called, and its breaker does not count it (the client sent it; the plugin did
//! nothing wrong). Nor does a host capability that failed under the call (the quota store).
//!
//! Reservations go to the subject as they are made; whoever owns the request settles them
//! (the request's finisher), on every path, so the chain never refunds on its own.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::bindings::rate_limit::Admission;
use super::bindings::types::Decision;
use super::convert;
use super::plugin::{Bindings, FailureKind, FailurePolicy, Plugin};
use super::view::{Edit, Identity, LocalResponse, Outcome, RequestView, Usage};

/// What a chain works on: the request as the plugins before have left it. The gateway
/// implements it over its typed request.
pub trait Subject: Send {
    /// The request body as earlier plugins left it; asked for only before a plugin that
    /// declared `body`, so a chain without one never re-serializes.
    fn body(&mut self) -> Bytes;
    /// Applies one edit now, and updates `view` (model, max-tokens, headers) to match, so the
    /// next plugin sees the edited request.
    fn apply(&mut self, edit: Edit, view: &mut RequestView);
    /// A reservation to settle once the request is over.
    fn reserve(&mut self, settlement: Settlement);
}

/// A fail-closed plugin failed: the request must not go on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}` failed: {}", kind.label())]
pub struct PolicyFailure {
    pub plugin: String,
    pub kind: FailureKind,
    /// The plugin's body limit, bytes (what a `BodyTooLarge` failure exceeded).
    pub body_limit: usize,
}

/// What the chain decided.
#[derive(Debug)]
pub enum ChainOutcome {
    Continue,
    Respond(LocalResponse),
}

/// A reservation to settle once the request is over.
#[derive(Debug)]
pub struct Settlement {
    plugin: Arc<Plugin>,
    reservation: String,
    /// When `admit` reserved (ms since the epoch): the window the settlement belongs to.
    admitted_at_ms: u64,
}

impl Settlement {
    /// What the rate-limit plugin reserved (its `admission.reservation`).
    pub fn reservation(&self) -> &str {
        &self.reservation
    }

    /// Calls the plugin's `settle`. Failures are logged and counted, never surfaced.
    pub async fn settle(self, usage: Option<Usage>, outcome: Outcome) {
        let p = &self.plugin;
        let started = Instant::now();
        let Ok(mut inst) = p.checkout("settle").await else {
            p.record("error", started.elapsed());
            return;
        };
        let usage = usage.map(convert::usage);
        let outcome = convert::outcome(outcome);
        let super::plugin::Instance { store, bindings, .. } = &mut inst;
        let Bindings::RateLimit(b) = bindings else { return };
        store.data_mut().quota_origin_ms = Some(self.admitted_at_ms);
        let call = b.call_settle(&mut *store, &self.reservation, usage, outcome);
        let result = tokio::time::timeout(p.call_timeout(), call).await;
        // The instance serves `admit` next: its adjustments are for now again.
        store.data_mut().quota_origin_ms = None;
        let host_error = inst.store.data_mut().host_error.take();
        match result {
            Ok(Ok(())) if host_error.is_some() => {
                tracing::warn!(plugin = %p.id(), error = ?host_error, "settle could not reach the quota store");
                p.record(FailureKind::StoreUnavailable.label(), started.elapsed());
                p.checkin(inst);
            }
            Ok(Ok(())) => {
                p.record("ok", started.elapsed());
                p.checkin(inst);
            }
            Ok(Err(e)) => {
                let kind = p.classify(&inst, &e);
                tracing::warn!(plugin = %p.id(), failure = kind.label(), error = %format!("{e:#}"), "settle failed");
                p.record(kind.label(), started.elapsed());
            }
            Err(_) => p.record("timeout", started.elapsed()),
        }
    }
}

/// What one plugin decided.
enum Step {
    Identity(Identity),
    Continue,
    Edits(Vec<Edit>),
    Respond(LocalResponse),
    Admit(Vec<Edit>, Option<String>),
}

/// The plugins of one chain, in order.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    plugins: Vec<Arc<Plugin>>,
}

impl Chain {
    pub fn new(plugins: Vec<Arc<Plugin>>) -> Self {
        Chain { plugins }
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// Runs the plugins in `range` (clamped to the chain) on `view` and `subject`, both
    /// updated in place as each plugin decides.
    pub async fn run(
        &self,
        range: Range<usize>,
        view: &mut RequestView,
        subject: &mut dyn Subject,
    ) -> Result<ChainOutcome, PolicyFailure> {
        let end = range.end.min(self.plugins.len());
        for p in self.plugins.get(range.start.min(end)..end).unwrap_or_default() {
            let body = if p.spec.pass_body { Some(subject.body()) } else { None };
            let step = match call(p, view, body.as_deref()).await {
                Ok(step) => step,
                Err(kind) => {
                    metrics::counter!("wasmgate_plugin_failures_total", "plugin" => p.id().to_string(), "kind" => kind.label())
                        .increment(1);
                    if p.failure() == FailurePolicy::FailOpen {
                        tracing::warn!(plugin = %p.id(), request_id = %view.id, failure = kind.label(), "plugin failed open: skipped");
                        p.record("skipped", std::time::Duration::ZERO);
                        continue;
                    }
                    return Err(PolicyFailure { plugin: p.id().to_string(), kind, body_limit: p.body_limit() });
                }
            };
            match step {
                Step::Identity(id) => {
                    if view.tenant.is_none() {
                        view.tenant.clone_from(&id.tenant);
                    }
                    view.identity = Some(id);
                }
                Step::Continue => {}
                Step::Edits(edits) => edits.into_iter().for_each(|e| subject.apply(e, view)),
                Step::Admit(edits, reservation) => {
                    edits.into_iter().for_each(|e| subject.apply(e, view));
                    if let Some(r) = reservation {
                        subject.reserve(Settlement {
                            plugin: p.clone(),
                            reservation: r,
                            admitted_at_ms: super::quota::epoch_ms(),
                        });
                    }
                }
                Step::Respond(resp) => return Ok(ChainOutcome::Respond(resp)),
            }
        }
        Ok(ChainOutcome::Continue)
    }
}

fn decision_step(d: Decision) -> Result<(Step, &'static str), FailureKind> {
    Ok(match d {
        Decision::Continue => (Step::Continue, "continue"),
        Decision::Mutate(e) => (Step::Edits(convert::edits(e)?), "mutate"),
        Decision::Respond(r) => (Step::Respond(convert::response(r)?), "respond"),
    })
}

/// The tenant whose breaker a call counts against: the request's tenant once known (assigned,
/// or from an earlier auth plugin's identity), else the one its path or Host names, else none.
fn breaker_scope(view: &RequestView) -> &str {
    view.tenant.as_deref().or(view.breaker_scope.as_deref()).unwrap_or("")
}

/// One plugin call, with the body limit, the breaker, the deadline, and the instance's fate.
async fn call(p: &Plugin, view: &RequestView, body: Option<&[u8]>) -> Result<Step, FailureKind> {
    if body.is_some_and(|b| b.len() > p.body_limit()) {
        p.record(FailureKind::BodyTooLarge.label(), std::time::Duration::ZERO);
        return Err(FailureKind::BodyTooLarge);
    }
    // Held across the call: if the client goes away and this future is dropped mid-call, the
    // guard's drop releases a half-open trial instead of leaving the breaker stuck.
    let Some(guard) = p.admit(breaker_scope(view)) else {
        p.record(FailureKind::BreakerOpen.label(), std::time::Duration::ZERO);
        return Err(FailureKind::BreakerOpen);
    };
    let started = Instant::now();
    let result = call_inner(p, view, body).await;
    match &result {
        Ok((_, decision)) => {
            guard.success();
            p.record("ok", started.elapsed());
            p.record_decision(decision);
        }
        Err(kind) => {
            if !kind.is_fault() {
                drop(guard);
            } else if guard.failure(Instant::now()) {
                tracing::error!(plugin = %p.id(), tenant = breaker_scope(view), "plugin keeps failing: breaker open");
            }
            p.record(kind.label(), started.elapsed());
        }
    }
    result.map(|(s, _)| s)
}

async fn call_inner(p: &Plugin, view: &RequestView, body: Option<&[u8]>) -> Result<(Step, &'static str), FailureKind> {
    // Made after the body limit and the breaker let the call through: a refused call copies
    // nothing (the body, lossily decoded, can be megabytes).
    let req = &convert::request(view, p.kind(), p.declared(), body);
    let mut inst = p.checkout(&view.id).await?;
    let super::plugin::Instance { store, bindings, .. } = &mut inst;
    let limit = p.call_timeout();
    let out = match bindings {
        Bindings::Auth(b) => tokio::time::timeout(limit, b.call_authenticate(&mut *store, req)).await.map(|r| {
            r.map(|d| match d {
                super::bindings::auth::AuthDecision::Allow(i) => {
                    convert::identity(i).map(|i| (Step::Identity(i), "allow"))
                }
                super::bindings::auth::AuthDecision::Deny(r) => {
                    convert::response(r).map(|r| (Step::Respond(r), "deny"))
                }
            })
        }),
        Bindings::Rewrite(b) => {
            tokio::time::timeout(limit, b.call_rewrite(&mut *store, req)).await.map(|r| r.map(decision_step))
        }
        Bindings::RateLimit(b) => tokio::time::timeout(limit, b.call_admit(&mut *store, req)).await.map(|r| {
            r.map(|Admission { decision, reservation }| match decision_step(decision)? {
                (Step::Edits(e), d) => Ok((Step::Admit(e, reservation), d)),
                (Step::Continue, d) => Ok((Step::Admit(Vec::new(), reservation), d)),
                other => Ok(other),
            })
        }),
    };
    match out {
        Err(_) => Err(FailureKind::Timeout),
        Ok(Err(e)) => {
            let kind = p.classify(&inst, &e);
            tracing::warn!(plugin = %p.id(), request_id = %view.id, failure = kind.label(), error = %format!("{e:#}"), "plugin call failed; instance dropped");
            metrics::counter!("wasmgate_plugin_traps_total", "plugin" => p.id().to_string(), "kind" => kind.label())
                .increment(1);
            Err(kind)
        }
        Ok(Ok(checked)) => {
            // A clean call, even with bad output: the instance itself is fine to reuse.
            let host_error = inst.store.data_mut().host_error.take();
            p.checkin(inst);
            match host_error {
                Some(e) => {
                    tracing::warn!(plugin = %p.id(), request_id = %view.id, error = %e, "host capability failed under the plugin call");
                    Err(FailureKind::StoreUnavailable)
                }
                None => checked,
            }
        }
    }
}
