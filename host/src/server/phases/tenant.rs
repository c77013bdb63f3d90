//! **tenant** — everything about tenancy, after the global chain: the tenant is assigned (the
//! `/t/{tenant}` path prefix, else the `Host` header, else the tenant of the caller's identity;
//! never a default), the rest of its chain runs within its concurrency bound, and its model
//! allow-list is checked on the model as the chains left it (404 `model_not_found`). Then, with
//! or without tenants, the identity headers for the upstream (`policy.forward-identity`). The
//! tenant's upstream overrides are applied by the route phase from the same runtime.

use std::ops::Range;
use std::time::Duration;

use http::{HeaderValue, header};

use super::{Flow, Step, intake::host_name, policy};
use crate::api::ApiError;
use crate::server::TenantRuntime;
use crate::server::exchange::Exchange;

/// How long a request waits for its tenant's plugin concurrency.
const TENANT_QUEUE_WAIT: Duration = Duration::from_millis(100);

pub async fn run(ex: &mut Exchange) -> Step {
    let snap = ex.snapshot();
    if !snap.tenants.is_empty() {
        if ex.tenant.is_none() {
            assign(ex)?;
        }
        let Some(rt) = ex.tenant.as_deref().and_then(|t| snap.tenants.get(t)) else {
            return Err(ApiError::internal());
        };
        let from = ex.progress.tenant;
        ex.progress.tenant = rt.chain.plugins().len();
        if let Flow::Respond(r) = run_chain(ex, rt, from..usize::MAX).await? {
            return Ok(Flow::Respond(r));
        }
        if !rt.models.is_empty() && !rt.models.iter().any(|m| m.matches(&ex.view.model)) {
            return Err(ApiError::model_not_found(&ex.view.model));
        }
    }
    identity_headers(ex);
    Ok(Flow::Next)
}

/// Runs part of a tenant's chain within the tenant's concurrency bound.
pub async fn run_chain(ex: &mut Exchange, rt: &TenantRuntime, range: Range<usize>) -> Step {
    if range.start >= rt.chain.plugins().len() {
        return Ok(Flow::Next);
    }
    let Ok(Ok(permit)) = tokio::time::timeout(TENANT_QUEUE_WAIT, rt.concurrency.acquire()).await else {
        return Err(ApiError::tenant_busy(ex.tenant.as_deref().unwrap_or_default()));
    };
    let flow = policy::run_chain(ex, &rt.chain, range).await;
    drop(permit);
    flow
}

/// Assigns the request's tenant (see the module doc) and records it in the view and the
/// finisher.
pub fn assign(ex: &mut Exchange) -> Result<(), ApiError> {
    let snap = ex.snapshot();
    let named = ex
        .path_tenant
        .clone()
        .or_else(|| {
            let host = ex.parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| ex.parts.uri.host());
            host.and_then(|h| snap.tenant_hosts.get(&host_name(h)).cloned())
        })
        .or_else(|| ex.view.tenant.clone());
    let Some(name) = named else {
        return Err(ApiError::tenant_not_identified());
    };
    let Some((id, _)) = snap.tenants.get_key_value(name.as_str()) else {
        return Err(ApiError::tenant_not_found(&name));
    };
    match ex.view.identity.as_ref().map(|i| i.tenant.as_deref()) {
        // A caller whose identity belongs to another tenant cannot use this one.
        Some(Some(own)) if own != id.as_str() => return Err(ApiError::tenant_mismatch(id)),
        // A caller the global chain knows but binds to no tenant picks one only where the
        // tenant allows it: else any global key could choose any tenant (and its upstreams).
        Some(None) if !snap.config.tenants.get(id.as_str()).is_some_and(|t| t.allow_global_identities) => {
            return Err(ApiError::tenant_mismatch(id));
        }
        _ => {}
    }
    ex.view.tenant = Some(id.clone());
    ex.finisher.set_tenant(id);
    ex.tenant = Some(id.clone());
    Ok(())
}

/// `x-wasmgate-subject` and `x-wasmgate-tenant` for the upstream, when configured.
fn identity_headers(ex: &mut Exchange) {
    if !ex.snap.config.policy.forward_identity {
        return;
    }
    if let Some(id) = &ex.view.identity
        && let Ok(v) = HeaderValue::try_from(id.subject.as_str())
    {
        ex.upstream_headers.insert("x-wasmgate-subject", v);
    }
    if let Some(t) = ex.view.tenant.as_deref().and_then(|t| HeaderValue::try_from(t).ok()) {
        ex.upstream_headers.insert("x-wasmgate-tenant", t);
    }
}
