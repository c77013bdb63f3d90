//! The policy phase, in two steps around reading the body:
//!
//! - **auth** (before the body is read): the chain's *leading* auth plugins that do not ask for
//!   the body run on a header-only view (`model` empty, no token counts), so an anonymous caller
//!   gets its 401 before the gateway buffers or parses a byte of the body. When the whole global
//!   chain is such plugins, the tenant is assigned here too and the tenant chain's leading
//!   header-only auth plugins run as well. Auth plugins neither edit nor reserve, so running
//!   them first changes no outcome: the chain's order is kept.
//! - **policy** (after parsing): the rest of the chains, in order, on the full view.
//!
//! What the chain decides:
//! - `Continue`: the edits are applied in order; identity headers are added for the upstream.
//! - `Respond`: a plugin answered itself; reservations made earlier in the chain are settled
//!   as `not-forwarded` (so rate-limit plugins refund them).
//! - A fail-closed plugin failure: 503 `policy_unavailable` naming the plugin, nothing forwarded;
//!   a body over a fail-closed plugin's `body-limit`: 413 naming the plugin.
//!
//! Plugins may not set framing or hop-by-hop headers (`content-length`, `host`, ...) on the
//! upstream request or the client's response: such edits are dropped with a log line.

use std::borrow::Cow;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::Snapshot;
use super::upstream_headers::plugin_may_set;
use crate::api::{ApiError, ApiRequest};
use crate::policy::{Chain, ChainOutcome, Edit, LocalResponse, PluginKind, RequestView, Settlement};
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

/// What the auth step leaves for the policy step.
pub(super) struct Authenticated {
    /// The header-only view with the identity found so far; none when there is no chain and
    /// no tenant (nothing to run).
    view: Option<RequestView>,
    /// Plugins of the global chain already run.
    global_done: usize,
    /// Plugins of the tenant chain already run, when the tenant was assigned before the body.
    tenant_done: Option<usize>,
    acc: ChainEffects,
}

/// What the auth step decided.
#[allow(clippy::large_enum_variant, reason = "made and moved once per request; boxing would add an allocation")]
pub(super) enum AuthResult {
    Continue(Authenticated),
    Respond(Response),
}

/// The view of a request before its body was read: headers, path, peer; no model yet.
fn header_view(parts: &http::request::Parts, request_id: &HeaderValue, endpoint: &'static str) -> RequestView {
    RequestView {
        id: request_id.to_str().unwrap_or_default().to_string(),
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
            .collect(),
        client_ip: parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|ci| ci.0.ip().to_canonical().to_string())
            .unwrap_or_default(),
        endpoint,
        ..RequestView::default()
    }
}

/// How many plugins at the head of `chain` can run on headers alone (auth, no body).
fn header_auth_prefix(chain: &Chain) -> usize {
    chain.plugins().iter().take_while(|p| p.kind() == PluginKind::Auth && !p.spec.pass_body).count()
}

/// The plugins of `chain` from `from` on (the chain itself when that is all of it).
fn tail(chain: &Chain, from: usize) -> Cow<'_, Chain> {
    match from {
        0 => Cow::Borrowed(chain),
        n => Cow::Owned(Chain::new(chain.plugins().get(n..).unwrap_or_default().to_vec())),
    }
}

/// A path that names a tenant on a gateway without tenants names nothing that exists.
fn check_path_tenant(snap: &Snapshot, slot: &TenantSlot<'_>) -> Result<(), ApiError> {
    match slot.from_path {
        Some(t) if snap.tenants.is_empty() => Err(ApiError::tenant_not_found(t)),
        _ => Ok(()),
    }
}

/// The auth step, before the body is read (see the module doc).
pub(super) async fn authenticate(
    snap: &Snapshot,
    parts: &http::request::Parts,
    endpoint: &'static str,
    tenant_slot: &mut TenantSlot<'_>,
    request_id: &HeaderValue,
) -> Result<AuthResult, ApiError> {
    check_path_tenant(snap, tenant_slot)?;
    let mut auth = Authenticated { view: None, global_done: 0, tenant_done: None, acc: ChainEffects::default() };
    if snap.chain.is_empty() && snap.tenants.is_empty() {
        return Ok(AuthResult::Continue(auth));
    }
    let mut view = header_view(parts, request_id, endpoint);
    view.breaker_scope = named_tenant(snap, parts, tenant_slot.from_path);
    let global = header_auth_prefix(&snap.chain);
    if global > 0 {
        let head = Chain::new(snap.chain.plugins().get(..global).unwrap_or_default().to_vec());
        auth.acc = match run_chain(&head, &mut view, &Bytes::new(), auth.acc).await? {
            Step::Respond(resp) => return Ok(AuthResult::Respond(resp)),
            Step::Continue(e) => e,
        };
    }
    auth.global_done = global;
    if global == snap.chain.plugins().len() && !snap.tenants.is_empty() {
        let tenant = assign(snap, parts, tenant_slot, &mut view, &mut auth.acc)?;
        let done = snap.tenants.get(&tenant).map_or(0, |rt| header_auth_prefix(&rt.chain));
        if done > 0 {
            let Some(rt) = snap.tenants.get(&tenant) else { return Err(ApiError::internal()) };
            let head = Chain::new(rt.chain.plugins().get(..done).unwrap_or_default().to_vec());
            auth.acc = match run_tenant_chain(rt, &tenant, &head, &mut view, &Bytes::new(), auth.acc).await? {
                Step::Respond(resp) => return Ok(AuthResult::Respond(resp)),
                Step::Continue(e) => e,
            };
        }
        auth.tenant_done = Some(done);
    }
    auth.view = Some(view);
    Ok(AuthResult::Continue(auth))
}

/// Who may list models (`GET /v1/models`, `/t/{tenant}/v1/models`): every auth plugin of the
/// global chain, then (with tenants) the tenant is assigned as for any request and its auth
/// plugins run. `Ok(Ok(tenant))` to list the tenant's models (all with no tenants);
/// `Ok(Err(resp))` when an auth plugin answered.
pub(super) async fn authorize_models(
    snap: &Snapshot,
    parts: &http::request::Parts,
    tenant_slot: &mut TenantSlot<'_>,
    request_id: &HeaderValue,
) -> Result<Result<Option<String>, Response>, ApiError> {
    check_path_tenant(snap, tenant_slot)?;
    if snap.chain.is_empty() && snap.tenants.is_empty() {
        return Ok(Ok(None));
    }
    let auth_only =
        |c: &Chain| Chain::new(c.plugins().iter().filter(|p| p.kind() == PluginKind::Auth).cloned().collect());
    let mut view = header_view(parts, request_id, "models");
    view.breaker_scope = named_tenant(snap, parts, tenant_slot.from_path);
    let mut acc = match run_chain(&auth_only(&snap.chain), &mut view, &Bytes::new(), ChainEffects::default()).await? {
        Step::Respond(resp) => return Ok(Err(resp)),
        Step::Continue(e) => e,
    };
    if snap.tenants.is_empty() {
        return Ok(Ok(None));
    }
    let tenant = assign(snap, parts, tenant_slot, &mut view, &mut acc)?;
    let Some(rt) = snap.tenants.get(&tenant) else { return Err(ApiError::internal()) };
    match run_tenant_chain(rt, &tenant, &auth_only(&rt.chain), &mut view, &Bytes::new(), acc).await? {
        Step::Respond(resp) => Ok(Err(resp)),
        Step::Continue(acc) => {
            settle_all(acc.settlements, None, Outcome::NotForwarded);
            Ok(Ok(Some(tenant)))
        }
    }
}

/// The tenant of a request (see [`assign_tenant`]), recorded in the view and the slot. On an
/// error, what the chain reserved so far is refunded.
fn assign(
    snap: &Snapshot,
    parts: &http::request::Parts,
    tenant_slot: &mut TenantSlot<'_>,
    view: &mut RequestView,
    acc: &mut ChainEffects,
) -> Result<String, ApiError> {
    match assign_tenant(snap, parts, tenant_slot.from_path, view) {
        Ok(t) => {
            view.tenant = Some(t.to_string());
            tenant_slot.assigned = Some(t.to_string());
            Ok(t.to_string())
        }
        Err(e) => {
            settle_all(std::mem::take(&mut acc.settlements), None, Outcome::NotForwarded);
            Err(e)
        }
    }
}

/// Runs (part of) a tenant's chain within the tenant's concurrency bound.
async fn run_tenant_chain(
    rt: &super::TenantRuntime,
    tenant: &str,
    chain: &Chain,
    view: &mut RequestView,
    raw: &Bytes,
    mut acc: ChainEffects,
) -> Result<Step, ApiError> {
    if chain.is_empty() {
        return Ok(Step::Continue(acc));
    }
    let permit = match tokio::time::timeout(TENANT_QUEUE_WAIT, rt.concurrency.acquire()).await {
        Ok(Ok(p)) => p,
        _ => {
            settle_all(std::mem::take(&mut acc.settlements), None, Outcome::NotForwarded);
            return Err(ApiError::tenant_busy(tenant));
        }
    };
    let step = run_chain(chain, view, raw, acc).await;
    drop(permit);
    step
}

/// The policy step, after parsing: the rest of the chains for one request — the global chain,
/// then (when tenants are configured) the chain of the request's tenant.
pub(super) async fn run(
    snap: &Snapshot,
    parts: &http::request::Parts,
    tenant_slot: &mut TenantSlot<'_>,
    auth: Authenticated,
    raw: &Bytes,
    api: &mut ApiRequest,
    upstream_headers: &mut HeaderMap,
) -> Result<PolicyResult, ApiError> {
    let Authenticated { view, global_done, tenant_done, acc } = auth;
    let Some(pre) = view else {
        return Ok(PolicyResult::Continue(Effects::default()));
    };
    let mut view = RequestView::new(api, pre.id, pre.method, pre.path, pre.headers, pre.client_ip);
    view.identity = pre.identity;
    view.tenant = pre.tenant;
    view.breaker_scope = pre.breaker_scope;
    let mut effects = match run_chain(&tail(&snap.chain, global_done), &mut view, raw, acc).await? {
        Step::Respond(resp) => return Ok(PolicyResult::Respond(resp)),
        Step::Continue(e) => e,
    };
    if !snap.tenants.is_empty() {
        let (tenant, done) = match (tenant_done, tenant_slot.assigned.clone()) {
            (Some(done), Some(t)) => (t, done),
            _ => (assign(snap, parts, tenant_slot, &mut view, &mut effects)?, 0),
        };
        let Some(rt) = snap.tenants.get(&tenant) else { return Err(ApiError::internal()) };
        effects = match run_tenant_chain(rt, &tenant, &tail(&rt.chain, done), &mut view, raw, effects).await? {
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
    for edit in effects.edits {
        let name = match &edit {
            Edit::SetHeader(n, _) => Some(("set-header", n)),
            Edit::RemoveHeader(n) => Some(("remove-header", n)),
            _ => None,
        };
        if name.is_none_or(|(kind, n)| plugin_may_set(kind, n, &view.id)) {
            acc.edits.push(edit);
        }
    }
    for (n, v) in effects.response_headers {
        if !plugin_may_set("set-response-header", &n, &view.id) {
            continue;
        }
        acc.response_headers.retain(|(k, _)| *k != n);
        acc.response_headers.push((n, v));
    }
    acc.settlements.extend(effects.settlements);
    match respond {
        None => Ok(Step::Continue(acc)),
        Some(local) => {
            settle_all(acc.settlements, None, Outcome::NotForwarded);
            Ok(Step::Respond(local_response(local, &acc.response_headers, &view.id)))
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
    match view.identity.as_ref().map(|i| i.tenant.as_deref()) {
        // A caller whose identity belongs to another tenant cannot use this one.
        Some(Some(own)) if own != id.as_str() => Err(ApiError::tenant_mismatch(id)),
        // A caller the global chain knows but binds to no tenant picks one only where the
        // tenant allows it: else any global key could choose any tenant (and its upstreams).
        Some(None) if !snap.config.tenants.get(id.as_str()).is_some_and(|t| t.allow_global_identities) => {
            Err(ApiError::tenant_mismatch(id))
        }
        _ => Ok(id.as_str()),
    }
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
