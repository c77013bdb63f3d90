//! The policy phase: builds the typed request view, runs the snapshot's plugin chain, and
//! applies what it decided to the request (edits), the upstream headers, and the response.
//!
//! - `Continue`: the edits are applied in order; identity headers are added for the upstream.
//! - `Respond`: a plugin answered itself; reservations made earlier in the chain are settled
//!   as not forwarded (`upstream-error`, so rate-limit plugins refund them).
//! - A fail-closed plugin failure: 503 `policy_unavailable` naming the plugin, nothing forwarded.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::Snapshot;
use crate::api::{ApiError, ApiRequest};
use crate::policy::{
    ChainOutcome, Edit, LocalResponse, Outcome as PolicyOutcome, RequestView, Settlement, Usage as PolicyUsage,
};
use crate::proxy::{Outcome, Usage};

/// What the policy phase decided.
pub(super) enum PolicyResult {
    Continue(Effects),
    Respond(Response),
}

/// What the policy chain left for later phases.
#[derive(Default)]
pub(super) struct Effects {
    /// The request body was edited and must be re-serialized.
    pub modified: bool,
    /// Headers plugins add to the client's response.
    pub response_headers: Vec<(String, String)>,
    /// Reservations to settle once the request is over.
    pub settlements: Vec<Settlement>,
}

impl Effects {
    /// Settles every reservation (in the background: settling never delays the response).
    pub fn finish(self, usage: Option<Usage>, outcome: Outcome) {
        settle_all(self.settlements, usage, outcome);
    }
}

pub(super) fn settle_all(settlements: Vec<Settlement>, usage: Option<Usage>, outcome: Outcome) {
    if settlements.is_empty() {
        return;
    }
    let usage = usage.map(|u| PolicyUsage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.total_tokens,
    });
    let outcome = match outcome {
        Outcome::Completed => PolicyOutcome::Completed,
        Outcome::UpstreamError => PolicyOutcome::UpstreamError,
        Outcome::ClientAborted => PolicyOutcome::ClientAborted,
    };
    tokio::spawn(async move {
        for s in settlements {
            s.settle(usage, outcome).await;
        }
    });
}

/// Runs the chain for one request.
pub(super) async fn run(
    snap: &Snapshot,
    parts: &http::request::Parts,
    raw: &Bytes,
    api: &mut ApiRequest,
    upstream_headers: &mut HeaderMap,
    request_id: &HeaderValue,
) -> Result<PolicyResult, ApiError> {
    if snap.chain.is_empty() {
        return Ok(PolicyResult::Continue(Effects::default()));
    }
    let mut view = RequestView {
        id: request_id.to_str().unwrap_or_default().to_string(),
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
            .collect(),
        tenant: None,
        identity: None,
        model: api.model().to_string(),
        endpoint: api.endpoint().name(),
        stream: api.stream(),
        max_tokens: api.max_tokens(),
        prompt_tokens_estimate: api.prompt_tokens_estimate(),
    };
    let outcome = snap.chain.run(&mut view, raw).await.map_err(|f| {
        tracing::warn!(request_id = %view.id, plugin = %f.plugin, failure = %f, "policy plugin failed closed");
        ApiError::policy_unavailable(&f.plugin, f.kind.label())
    })?;
    match outcome {
        ChainOutcome::Respond(local, effects) => {
            settle_all(effects.settlements, None, Outcome::UpstreamError);
            Ok(PolicyResult::Respond(local_response(local, &effects.response_headers)))
        }
        ChainOutcome::Continue(effects) => {
            let mut modified = false;
            for edit in effects.edits {
                modified |= apply(edit, api, upstream_headers);
            }
            if snap.config.policy.forward_identity {
                if let Some(id) = &view.identity
                    && let Ok(v) = HeaderValue::try_from(id.subject.as_str())
                {
                    upstream_headers.insert("x-wasmgate-subject", v);
                }
                if let Some(t) = view.tenant.as_deref().and_then(|t| HeaderValue::try_from(t).ok()) {
                    upstream_headers.insert("x-wasmgate-tenant", t);
                }
            }
            Ok(PolicyResult::Continue(Effects {
                modified,
                response_headers: effects.response_headers,
                settlements: effects.settlements,
            }))
        }
    }
}

/// Applies one edit; true if the body changed.
fn apply(edit: Edit, api: &mut ApiRequest, headers: &mut HeaderMap) -> bool {
    match edit {
        Edit::SetHeader(name, value) => {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
                headers.insert(n, v);
            }
            false
        }
        Edit::RemoveHeader(name) => {
            headers.remove(name.as_str());
            false
        }
        Edit::SetModel(m) => {
            api.set_model(m);
            true
        }
        Edit::SetMaxTokens(n) => {
            api.set_max_tokens(n);
            true
        }
        Edit::PrependSystem(text) => {
            api.prepend_system(text);
            true
        }
        Edit::SetBodyField(name, json) => match serde_json::from_str(&json) {
            Ok(value) => match api.set_field(&name, value) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(field = %name, error = %e, "plugin edit refused");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(field = %name, error = %e, "plugin set-body-field value is not JSON");
                false
            }
        },
        Edit::SetResponseHeader(..) => false,
    }
}

/// A plugin's own response, plus the response headers earlier plugins set.
fn local_response(local: LocalResponse, extra: &[(String, String)]) -> Response {
    let mut resp = Response::new(Body::from(local.body));
    *resp.status_mut() = StatusCode::from_u16(local.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in extra.iter().chain(local.headers.iter()) {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            h.insert(n, v);
        }
    }
    resp
}
