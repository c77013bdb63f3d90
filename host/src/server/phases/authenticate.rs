//! **authenticate** — before the body is read: the chain's *leading* auth plugins that do not
//! ask for the body run on the header-only view (`model` empty, no token counts), so an
//! anonymous caller gets its 401 before the gateway buffers or parses a byte of the body. When
//! the whole global chain is such plugins, the tenant is assigned here too and the tenant
//! chain's leading header-only auth plugins run as well. Auth plugins neither edit nor
//! reserve, so running them first changes no outcome: the chain's order is kept.
//!
//! For `GET /v1/models` ([`for_models`]), every auth plugin of the global chain runs on the
//! headers, then the tenant is assigned and its auth plugins run: an unauthenticated caller
//! cannot probe which models exist.

use super::{Flow, Step, policy, tenant};
use crate::policy::{Chain, PluginKind};
use crate::server::exchange::Exchange;

/// How many plugins at the head of `chain` can run on headers alone (auth, no body).
fn header_auth_prefix(chain: &Chain) -> usize {
    chain.plugins().iter().take_while(|p| p.kind() == PluginKind::Auth && !p.spec.pass_body).count()
}

pub async fn run(ex: &mut Exchange) -> Step {
    let snap = ex.snapshot();
    let global = header_auth_prefix(&snap.chain);
    if let Flow::Respond(r) = policy::run_chain(ex, &snap.chain, 0..global).await? {
        return Ok(Flow::Respond(r));
    }
    ex.progress.global = global;
    if global == snap.chain.plugins().len() && !snap.tenants.is_empty() {
        tenant::assign(ex)?;
        let Some(rt) = ex.tenant.as_deref().and_then(|t| snap.tenants.get(t)) else {
            return Ok(Flow::Next);
        };
        let done = header_auth_prefix(&rt.chain);
        if let Flow::Respond(r) = tenant::run_chain(ex, rt, 0..done).await? {
            return Ok(Flow::Respond(r));
        }
        ex.progress.tenant = done;
    }
    Ok(Flow::Next)
}

/// Every auth plugin of the global chain, then (with tenants) the tenant's, on the headers.
pub async fn for_models(ex: &mut Exchange) -> Step {
    let snap = ex.snapshot();
    for i in auth_positions(&snap.chain) {
        if let Flow::Respond(r) = policy::run_chain(ex, &snap.chain, i..i + 1).await? {
            return Ok(Flow::Respond(r));
        }
    }
    if snap.tenants.is_empty() {
        return Ok(Flow::Next);
    }
    tenant::assign(ex)?;
    let Some(rt) = ex.tenant.as_deref().and_then(|t| snap.tenants.get(t)) else {
        return Ok(Flow::Next);
    };
    for i in auth_positions(&rt.chain) {
        if let Flow::Respond(r) = tenant::run_chain(ex, rt, i..i + 1).await? {
            return Ok(Flow::Respond(r));
        }
    }
    Ok(Flow::Next)
}

fn auth_positions(chain: &Chain) -> impl Iterator<Item = usize> + '_ {
    chain.plugins().iter().enumerate().filter(|(_, p)| p.kind() == PluginKind::Auth).map(|(i, _)| i)
}
