//! **respond** — the response side ([`crate::proxy::response`]): the upstream's head plus the
//! response headers plugins set, then its body through the response filters (usage watch,
//! usage strip; next: dialect translation, budget cut, response-phase plugins). A stream is
//! relayed event by event, never buffered, and the finisher travels with it until it ends; a
//! non-streamed body is read (bounded) and finished here.

use axum::response::Response;

use crate::api::ApiError;
use crate::proxy::{self, ResponsePlan, UpstreamBody};
use crate::server::exchange::Exchange;

pub async fn run(ex: &mut Exchange, upstream: http::Response<UpstreamBody>) -> Result<Response, ApiError> {
    let (Some(plan), Some(api)) = (ex.plan.as_ref(), ex.request.as_ref()) else {
        return Err(ApiError::internal());
    };
    let response_plan = ResponsePlan {
        stream: api.stream(),
        strip_usage: plan.strip_usage,
        watch: plan.watch,
        extra_headers: std::mem::take(&mut ex.response_headers),
        upstream_name: plan.route.upstream.cfg.name.clone(),
    };
    proxy::respond(upstream, response_plan, &mut ex.finisher).await
}
