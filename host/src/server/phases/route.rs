//! **route** — the model as the chains left it → an upstream (404 `model_not_found`), swapped
//! for the tenant's own upstream when it overrides this one; the provider-account headers of
//! the chosen upstream; the upstream's model name; and, for a stream whose client did not ask
//! for usage, `stream_options.include_usage` (so tokens can be settled; stripped on the way
//! back). Fixes the exchange's [`Plan`] and its stream watchdogs.

use super::{Flow, Step};
use crate::api::ApiError;
use crate::proxy::StreamWatch;
use crate::server::exchange::{Exchange, Plan};
use crate::server::upstream_headers::for_upstream;

pub fn run(ex: &mut Exchange) -> Step {
    let snap = ex.snapshot();
    let Some(api) = ex.request.as_mut() else {
        return Err(ApiError::internal());
    };
    let Some(mut route) = snap.upstreams.route(api.model()).cloned() else {
        return Err(ApiError::model_not_found(api.model()));
    };
    if let Some(up) =
        ex.tenant.as_deref().and_then(|t| snap.tenants.get(t)).and_then(|rt| rt.upstream_for(&route.upstream.cfg.name))
    {
        route.upstream = up.clone();
    }
    // The provider account headers are the chosen upstream's to set (or to let through).
    for_upstream(&mut ex.upstream_headers, &ex.parts.headers, &route.upstream.cfg);
    let strip_usage = api.stream() && !api.wants_stream_usage();
    if strip_usage {
        api.request_stream_usage();
        ex.body_edited = true;
    }
    if let Some(m) = &route.upstream_model {
        api.set_model(m.clone());
        ex.body_edited = true;
    }
    let cfg = &route.upstream.cfg;
    let watch = StreamWatch {
        deadline: tokio::time::Instant::now() + cfg.total_timeout,
        chunk_idle: cfg.limits.chunk_idle_timeout,
        client_stall: cfg.limits.client_stall_timeout,
    };
    ex.finisher.set_upstream(&cfg.name);
    ex.plan = Some(Plan { route, strip_usage, watch });
    Ok(Flow::Next)
}
