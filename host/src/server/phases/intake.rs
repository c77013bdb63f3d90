//! **intake** — runs first, before anything is read: refuses a path that names a tenant on a
//! gateway without tenants (404), notes the tenant the path or `Host` names (the breaker scope
//! of global plugins until the tenant is assigned), and starts the upstream headers from the
//! client's forwardable ones plus `X-Forwarded-*` and the request id.

use http::header;

use super::{Flow, Step};
use crate::api::ApiError;
use crate::server::exchange::{Exchange, Operation};
use crate::server::upstream_headers::{add_forwarded, forwardable};

pub fn run(ex: &mut Exchange) -> Step {
    if let Some(t) = ex.path_tenant.as_deref()
        && ex.snap.tenants.is_empty()
    {
        return Err(ApiError::tenant_not_found(t));
    }
    ex.view.breaker_scope = named_tenant(ex);
    if let Operation::Api(_) = ex.op {
        let mut headers = forwardable(&ex.parts.headers);
        add_forwarded(&mut headers, &ex.parts, &ex.snap.config.server.trusted_proxies);
        headers.insert("x-request-id", ex.request_id.clone());
        ex.upstream_headers = headers;
    }
    Ok(Flow::Next)
}

/// The configured tenant the path or Host names, before any plugin ran. Only configured
/// tenants: a client cannot mint new breakers.
fn named_tenant(ex: &Exchange) -> Option<String> {
    if let Some(t) = ex.path_tenant.as_deref().filter(|t| ex.snap.tenants.contains_key(*t)) {
        return Some(t.to_string());
    }
    let host = ex.parts.headers.get(header::HOST).and_then(|h| h.to_str().ok())?;
    ex.snap.tenant_hosts.get(&host_name(host)).cloned()
}

/// `Host` without its port, lower-cased.
pub fn host_name(host: &str) -> String {
    host.rsplit_once(':').map_or(host, |(name, _)| name).to_ascii_lowercase()
}
