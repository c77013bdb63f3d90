//! **forward** — the request goes upstream: re-serialized only when something edited it, over
//! the upstream's pooled client, failing over to the next endpoint on connect errors only,
//! within the first-byte timeout (502 / 504, blamed on the upstream). From here a client that
//! leaves is a client abort that may have cost tokens (the finisher charges the estimate).

use bytes::Bytes;

use crate::api::ApiError;
use crate::policy::Outcome;
use crate::proxy::{self, UpstreamBody, UpstreamRequest};
use crate::server::exchange::{Exchange, Operation};

pub async fn run(ex: &mut Exchange) -> Result<http::Response<UpstreamBody>, ApiError> {
    let (Some(plan), Some(api), Operation::Api(endpoint)) = (ex.plan.as_ref(), ex.request.as_ref(), ex.op) else {
        return Err(ApiError::internal());
    };
    let body = if ex.body_edited {
        Bytes::from(api.to_json().map_err(|e| ApiError::internal().caused_by(e))?)
    } else {
        ex.raw.clone()
    };
    ex.finisher.forwarding(api.prompt_tokens_estimate());
    let req = UpstreamRequest { endpoint, body, headers: std::mem::take(&mut ex.upstream_headers) };
    proxy::send(&plan.route.upstream, req).await.map_err(|e| {
        ex.finisher.set_outcome(Outcome::UpstreamError);
        ApiError::from(e)
    })
}
