//! **policy** — after parsing: the rest of the global chain (auth → rewrite → rate-limit; the
//! header-only auth prefix already ran in `authenticate`). Also what every chain run shares:
//! the [`Edits`] subject that applies each plugin's edits to the typed request at once (so the
//! next plugin sees the request, body included, as the previous one left it), and the mapping
//! of a chain's outcome to a [`Flow`].
//!
//! - continue: the next phase runs;
//! - respond: a plugin answered itself (with the response headers earlier plugins set);
//! - a fail-closed plugin failure: 503 `policy_unavailable` naming the plugin (its blame), a
//!   store failure under it 503 `quota_store_unavailable` (the store's), a body over its
//!   `body-limit` 413 naming it. Nothing is forwarded; reservations are refunded by the finisher.
//!
//! Plugins may not set framing or hop-by-hop headers (`content-length`, `host`, ...) on the
//! upstream request or the client's response: such edits are dropped with a log line.

use std::ops::Range;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::{Flow, Step};
use crate::api::{ApiError, ApiRequest};
use crate::finisher::Finisher;
use crate::policy::{
    Chain, ChainOutcome, Edit, FailureKind, LocalResponse, PolicyFailure, RequestView, Settlement, Subject,
};
use crate::server::exchange::Exchange;
use crate::server::upstream_headers::plugin_may_set;

pub async fn run(ex: &mut Exchange) -> Step {
    let snap = ex.snapshot();
    let from = ex.progress.global;
    ex.progress.global = snap.chain.plugins().len();
    run_chain(ex, &snap.chain, from..usize::MAX).await
}

/// Runs `range` of `chain` on the exchange.
pub async fn run_chain(ex: &mut Exchange, chain: &Chain, range: Range<usize>) -> Step {
    if chain.is_empty() || range.start >= chain.plugins().len() {
        return Ok(Flow::Next);
    }
    let mut subject = Edits {
        request: ex.request.as_mut(),
        raw: &ex.raw,
        serialized: None,
        body_edited: &mut ex.body_edited,
        upstream_headers: &mut ex.upstream_headers,
        response_headers: &mut ex.response_headers,
        finisher: &mut ex.finisher,
    };
    match chain.run(range, &mut ex.view, &mut subject).await {
        Ok(ChainOutcome::Continue) => Ok(Flow::Next),
        Ok(ChainOutcome::Respond(local)) => Ok(Flow::Respond(local_response(local, &ex.response_headers, &ex.view.id))),
        Err(failure) => Err(policy_error(failure)),
    }
}

/// The client-facing error of a fail-closed plugin failure.
pub fn policy_error(f: PolicyFailure) -> ApiError {
    let e = match f.kind {
        FailureKind::BodyTooLarge => ApiError::plugin_body_too_large(&f.plugin, f.body_limit),
        FailureKind::StoreUnavailable => ApiError::quota_store_unavailable(&f.plugin),
        _ => ApiError::policy_unavailable(&f.plugin, f.kind.label()),
    };
    e.caused_by(f)
}

/// The request as the chain edits it (see the module doc).
struct Edits<'a> {
    /// `None` before the body is parsed (header-only auth: auth plugins do not edit).
    request: Option<&'a mut ApiRequest>,
    raw: &'a Bytes,
    /// The edited request as JSON, kept until the next edit.
    serialized: Option<Bytes>,
    body_edited: &'a mut bool,
    upstream_headers: &'a mut HeaderMap,
    response_headers: &'a mut Vec<(String, String)>,
    finisher: &'a mut Finisher,
}

impl Subject for Edits<'_> {
    fn body(&mut self) -> Bytes {
        if !*self.body_edited {
            return self.raw.clone();
        }
        if let Some(b) = &self.serialized {
            return b.clone();
        }
        let json = self.request.as_deref().and_then(|r| r.to_json().ok()).map(Bytes::from);
        // Serializing our own typed request cannot fail; fall back to the original rather than
        // hand a plugin nothing.
        let body = json.unwrap_or_else(|| self.raw.clone());
        self.serialized = Some(body.clone());
        body
    }

    fn apply(&mut self, edit: Edit, view: &mut RequestView) {
        let rid = view.id.as_str();
        match edit {
            Edit::SetHeader(name, value) => {
                if plugin_may_set("set-header", &name, rid)
                    && let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
                {
                    self.upstream_headers.insert(n, v);
                    view.headers.retain(|(k, _)| *k != name);
                    view.headers.push((name, value));
                }
            }
            Edit::RemoveHeader(name) => {
                if plugin_may_set("remove-header", &name, rid) {
                    self.upstream_headers.remove(name.as_str());
                    view.headers.retain(|(k, _)| *k != name);
                }
            }
            Edit::SetResponseHeader(name, value) => {
                if plugin_may_set("set-response-header", &name, rid) {
                    self.response_headers.retain(|(k, _)| *k != name);
                    self.response_headers.push((name, value));
                }
            }
            body_edit => self.edit_body(body_edit, view),
        }
    }

    fn reserve(&mut self, settlement: Settlement) {
        self.finisher.reserve(settlement);
    }
}

impl Edits<'_> {
    fn edit_body(&mut self, edit: Edit, view: &mut RequestView) {
        let Some(req) = self.request.as_deref_mut() else {
            tracing::warn!(request_id = %view.id, "a body edit before the body was read: dropped");
            return;
        };
        match edit {
            Edit::SetModel(m) => req.set_model(m),
            Edit::SetMaxTokens(n) => req.set_max_tokens(n),
            Edit::PrependSystem(text) => req.prepend_system(text),
            Edit::SetBodyField(name, json) => {
                let value = match serde_json::from_str(&json) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(request_id = %view.id, field = %name, error = %e, "plugin set-body-field value is not JSON");
                        return;
                    }
                };
                if let Err(e) = req.set_field(&name, value) {
                    tracing::warn!(request_id = %view.id, field = %name, error = %e, "plugin edit refused");
                    return;
                }
            }
            Edit::SetHeader(..) | Edit::RemoveHeader(..) | Edit::SetResponseHeader(..) => return,
        }
        *self.body_edited = true;
        self.serialized = None;
        // What later plugins (and the reservation) see follows the edited request.
        view.model = req.model().to_string();
        view.stream = req.stream();
        view.max_tokens = req.max_tokens();
        view.prompt_tokens_estimate = req.prompt_tokens_estimate();
    }
}

/// A plugin's own response, plus the response headers earlier plugins set.
fn local_response(local: LocalResponse, extra: &[(String, String)], request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(local.body));
    *resp.status_mut() = StatusCode::from_u16(local.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in extra.iter().chain(local.headers.iter()) {
        if !plugin_may_set("response", name, request_id) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            h.insert(n, v);
        }
    }
    resp
}
