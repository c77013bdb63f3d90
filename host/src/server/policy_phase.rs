//! The policy phase: builds the typed request view, runs the snapshot's plugin chain, and
//! applies what it decided to the request (edits), the upstream headers, and the response.
//!
//! - `Continue`: the edits are applied in order; identity headers are added for the upstream.
//! - `Respond`: a plugin answered itself; reservations made earlier in the chain are settled
//!   as `not-forwarded` (so rate-limit plugins refund them).
//! - A fail-closed plugin failure: 503 `policy_unavailable` naming the plugin, nothing forwarded;
//!   a body over a fail-closed plugin's `body-limit`: 413 naming the plugin.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::Snapshot;
use crate::api::{ApiError, ApiRequest};
use crate::policy::{ChainOutcome, Edit, LocalResponse, RequestView, Settlement};
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
    tokio::spawn(async move {
        for s in settlements {
            s.settle(usage, outcome).await;
        }
    });
}

/// The tenant a request names by its path, and the one it was assigned.
#[derive(Debug, Default)]
pub(super) struct TenantSlot<'a> {
    pub from_path: Option<&'a str>,
    pub assigned: Option<String>,
}

/// How long a request waits for its tenant's plugin concurrency.
const TENANT_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs the chains for one request: the global chain, then (when tenants are configured) the
/// chain of the request's tenant.
pub(super) async fn run(
    snap: &Snapshot,
    parts: &http::request::Parts,
    tenant_slot: &mut TenantSlot<'_>,
    raw: &Bytes,
    api: &mut ApiRequest,
    upstream_headers: &mut HeaderMap,
    request_id: &HeaderValue,
) -> Result<PolicyResult, ApiError> {
    let path_tenant = tenant_slot.from_path;
    if snap.chain.is_empty() && snap.tenants.is_empty() {
        return Ok(PolicyResult::Continue(Effects::default()));
    }
    let mut view = RequestView::new(
        api,
        request_id.to_str().unwrap_or_default().to_string(),
        parts.method.as_str().to_string(),
        parts.uri.path().to_string(),
        parts
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
            .collect(),
        parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|ci| ci.0.ip().to_canonical().to_string())
            .unwrap_or_default(),
    );
    view.breaker_scope = named_tenant(snap, parts, path_tenant);
    let mut effects = match run_chain(&snap.chain, &mut view, raw, ChainEffects::default()).await? {
        Step::Respond(resp) => return Ok(PolicyResult::Respond(resp)),
        Step::Continue(e) => e,
    };
    if !snap.tenants.is_empty() {
        let tenant = match assign_tenant(snap, parts, path_tenant, &view) {
            Ok(t) => t,
            Err(e) => {
                settle_all(std::mem::take(&mut effects.settlements), None, Outcome::NotForwarded);
                return Err(e);
            }
        };
        view.tenant = Some(tenant.to_string());
        tenant_slot.assigned = Some(tenant.to_string());
        let Some(rt) = snap.tenants.get(tenant) else { return Err(ApiError::internal()) };
        let permit = match tokio::time::timeout(TENANT_QUEUE_WAIT, rt.concurrency.acquire()).await {
            Ok(Ok(p)) => p,
            _ => {
                settle_all(std::mem::take(&mut effects.settlements), None, Outcome::NotForwarded);
                return Err(ApiError::tenant_busy(tenant));
            }
        };
        let step = run_chain(&rt.chain, &mut view, raw, effects).await;
        drop(permit);
        effects = match step? {
            Step::Respond(resp) => return Ok(PolicyResult::Respond(resp)),
            Step::Continue(e) => e,
        };
        if !rt.models.is_empty() && !rt.models.iter().any(|m| m.matches(&view.model)) {
            settle_all(effects.settlements, None, Outcome::NotForwarded);
            return Err(ApiError::model_not_found(&view.model));
        }
    }
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

/// Chain effects accumulated over the global and the tenant chain.
#[derive(Default)]
struct ChainEffects {
    edits: Vec<Edit>,
    response_headers: Vec<(String, String)>,
    settlements: Vec<Settlement>,
}

enum Step {
    Continue(ChainEffects),
    Respond(Response),
}

async fn run_chain(
    chain: &crate::policy::Chain,
    view: &mut RequestView,
    raw: &Bytes,
    mut acc: ChainEffects,
) -> Result<Step, ApiError> {
    if chain.is_empty() {
        return Ok(Step::Continue(acc));
    }
    let outcome = match chain.run(view, raw).await {
        Ok(o) => o,
        Err(f) => {
            tracing::warn!(request_id = %view.id, plugin = %f.plugin, failure = %f, "policy plugin failed closed");
            settle_all(acc.settlements, None, Outcome::NotForwarded);
            return Err(match f.kind {
                crate::policy::FailureKind::BodyTooLarge => ApiError::plugin_body_too_large(&f.plugin, f.body_limit),
                _ => ApiError::policy_unavailable(&f.plugin, f.kind.label()),
            });
        }
    };
    let (effects, respond) = match outcome {
        ChainOutcome::Continue(e) => (e, None),
        ChainOutcome::Respond(local, e) => (e, Some(local)),
    };
    acc.edits.extend(effects.edits);
    for (n, v) in effects.response_headers {
        acc.response_headers.retain(|(k, _)| *k != n);
        acc.response_headers.push((n, v));
    }
    acc.settlements.extend(effects.settlements);
    match respond {
        None => Ok(Step::Continue(acc)),
        Some(local) => {
            settle_all(acc.settlements, None, Outcome::NotForwarded);
            Ok(Step::Respond(local_response(local, &acc.response_headers)))
        }
    }
}

/// The request's tenant: the `/t/{tenant}` path prefix, else the `Host` header, else the tenant
/// of the caller's identity. Never a default: no match is an error.
fn assign_tenant<'a>(
    snap: &'a Snapshot,
    parts: &http::request::Parts,
    path_tenant: Option<&str>,
    view: &RequestView,
) -> Result<&'a str, ApiError> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_ascii_lowercase());
    let named = path_tenant
        .map(str::to_string)
        .or_else(|| host.and_then(|h| snap.tenant_hosts.get(&h).cloned()))
        .or_else(|| view.tenant.clone());
    let Some(name) = named else {
        return Err(ApiError::tenant_not_identified());
    };
    let Some((id, _)) = snap.tenants.get_key_value(name.as_str()) else {
        return Err(ApiError::tenant_not_found(&name));
    };
    // A caller whose identity belongs to another tenant cannot use this one.
    if let Some(own) = view.identity.as_ref().and_then(|i| i.tenant.as_deref())
        && own != id.as_str()
    {
        return Err(ApiError::tenant_mismatch(id));
    }
    Ok(id.as_str())
}

/// The configured tenant the path or Host names, before any plugin ran (the breaker scope of
/// global plugins). Only configured tenants: a client cannot mint new breakers.
fn named_tenant(snap: &Snapshot, parts: &http::request::Parts, path_tenant: Option<&str>) -> Option<String> {
    if let Some(t) = path_tenant.filter(|t| snap.tenants.contains_key(*t)) {
        return Some(t.to_string());
    }
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok())?;
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name).to_ascii_lowercase();
    snap.tenant_hosts.get(&name).cloned()
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
