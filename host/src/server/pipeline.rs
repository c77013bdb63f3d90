//! The request path of the OpenAI endpoints, top to bottom as named phases. Each phase either
//! hands its result to the next or ends the request by returning a response; short-circuiting
//! is always a return value.
//!
//! ```text
//! snapshot  one ArcSwap load: the config + plugins this request will see to its end
//! auth      leading auth plugins without `body`, on the headers: 401 before any body is read
//! read      the body, up to `server.max-body-bytes` (413), within the body timeout (408)
//! parse     typed OpenAI request, validated (400 naming the field); unknown fields kept
//! policy    the rest of the chain: auth → rewrite → rate-limit (continue | mutate | respond)
//! route     model → upstream (404 model_not_found)
//! forward   pooled client, failover on connect errors, first-byte timeout (502 / 504)
//! relay     non-stream: read + usage; stream: frame by frame, usage watched, never buffered
//! complete  exactly once: settle reservations with usage, metrics
//! ```

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;

use super::Gateway;
use super::policy_phase::{self, AuthResult, PolicyResult, TenantSlot, settle_all};
use super::upstream_headers::{add_forwarded, for_upstream, forwardable, request_id};
use crate::api::{ApiError, ApiRequest, Endpoint};
use crate::metrics::status_label;
use crate::proxy::{self, Completion, Outcome, StreamWatch, UpstreamRequest, Usage};

/// Entry point of `POST /v1/{chat/completions,completions,embeddings}`.
pub async fn handle(gw: Arc<Gateway>, endpoint: Endpoint, req: Request) -> Response {
    handle_for(gw, endpoint, req, None).await
}

/// Entry point of `POST /t/{tenant}/v1/...`: the same, with the tenant named by the path.
pub async fn handle_for(gw: Arc<Gateway>, endpoint: Endpoint, req: Request, tenant: Option<String>) -> Response {
    let started = Instant::now();
    let rid = request_id(req.headers());
    // The tenant the policy phase assigned (a configured id: bounded label values).
    let mut slot = TenantSlot { from_path: tenant.as_deref(), assigned: None };
    let mut resp = match run(&gw, endpoint, req, &mut slot, &rid).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert("x-request-id", rid);
    let status = resp.status().as_u16();
    metrics::counter!("wasmgate_http_requests_total", "route" => endpoint.route(), "status" => status_label(status))
        .increment(1);
    metrics::histogram!("wasmgate_http_request_duration_seconds", "route" => endpoint.route())
        .record(started.elapsed().as_secs_f64());
    if let Some(t) = slot.assigned {
        metrics::counter!("wasmgate_tenant_requests_total", "tenant" => t.clone(), "status" => status_label(status))
            .increment(1);
        metrics::histogram!("wasmgate_tenant_request_duration_seconds", "tenant" => t)
            .record(started.elapsed().as_secs_f64());
    }
    resp
}

async fn run(
    gw: &Gateway,
    endpoint: Endpoint,
    req: Request,
    tenant: &mut TenantSlot<'_>,
    rid: &HeaderValue,
) -> Result<Response, ApiError> {
    // snapshot
    let snap = gw.snapshot.load_full();
    let (parts, body) = req.into_parts();

    // auth
    let auth = match policy_phase::authenticate(&snap, &parts, endpoint.name(), tenant, rid).await? {
        AuthResult::Continue(auth) => auth,
        AuthResult::Respond(resp) => return Ok(resp),
    };

    // read
    let raw = read_body(body, &parts.headers, &snap.config.server).await?;

    // parse
    let mut api = ApiRequest::parse(endpoint, &raw)?;

    // policy
    let mut upstream_headers = forwardable(&parts.headers);
    add_forwarded(&mut upstream_headers, &parts, &snap.config.server.trusted_proxies);
    upstream_headers.insert("x-request-id", rid.clone());
    let effects = match policy_phase::run(&snap, &parts, tenant, auth, &raw, &mut api, &mut upstream_headers).await? {
        PolicyResult::Continue(effects) => effects,
        PolicyResult::Respond(resp) => return Ok(resp),
    };

    // route
    let Some(mut route) = snap.upstreams.route(api.model()).cloned() else {
        let err = ApiError::model_not_found(api.model());
        effects.finish(None, Outcome::NotForwarded);
        return Err(err);
    };
    // From here the request is finished by its completion, a drop guard: a client that leaves
    // while the gateway waits for the upstream still settles (as client-aborted).
    let (modified_by_policy, response_headers) = (effects.modified, effects.response_headers);
    let mut completion = completion_for(effects.settlements, api.prompt_tokens_estimate());
    // A tenant may bring its own provider account or endpoint for an upstream.
    if let Some(t) = tenant.assigned.as_deref().and_then(|t| snap.config.tenants.get(t))
        && let Some(up) = t.upstream_overrides.get(&route.upstream.cfg.name).and_then(|n| snap.upstreams.by_name(n))
    {
        route.upstream = up.clone();
    }
    // The provider account headers are the chosen upstream's to set (or to let through).
    for_upstream(&mut upstream_headers, &parts.headers, &route.upstream.cfg);

    // forward
    let stream = api.stream();
    let strip_usage = stream && !api.wants_stream_usage();
    let mut modified = modified_by_policy;
    if strip_usage {
        // Ask for usage in the last chunk so tokens can be settled; the client won't see it.
        api.request_stream_usage();
        modified = true;
    }
    if let Some(m) = &route.upstream_model {
        api.set_model(m.clone());
        modified = true;
    }
    let body = if modified {
        match api.to_json() {
            Ok(json) => Bytes::from(json),
            Err(_) => {
                completion.finish(None, Outcome::NotForwarded);
                return Err(ApiError::internal());
            }
        }
    } else {
        raw
    };
    let total_deadline = tokio::time::Instant::now() + route.upstream.cfg.total_timeout;
    let sent = proxy::send(&route.upstream, UpstreamRequest { endpoint, body, headers: upstream_headers }).await;
    let upstream_resp = match sent {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(request_id = ?rid, error = %e, "forwarding failed");
            completion.finish(None, Outcome::UpstreamError);
            return Err(e.to_api());
        }
    };

    // relay + complete
    let watch = StreamWatch {
        deadline: total_deadline,
        chunk_idle: route.upstream.cfg.limits.chunk_idle_timeout,
        client_stall: route.upstream.cfg.limits.client_stall_timeout,
    };
    let upstream_name = route.upstream.cfg.name.clone();
    let plan = proxy::ResponsePlan { stream, strip_usage, watch, extra_headers: response_headers, upstream_name };
    proxy::respond(upstream_resp, plan, completion).await
}

/// The completion of a forwarded request: settles the reservations (token metrics from the
/// upstream's usage). `prompt_tokens` is the estimate an abort without usage is charged.
fn completion_for(settlements: Vec<crate::policy::Settlement>, prompt_tokens: u32) -> Completion {
    Completion::new(
        prompt_tokens,
        Box::new(move |usage: Option<Usage>, outcome: Outcome| {
            if let Some(u) = usage {
                metrics::counter!("wasmgate_tokens_total", "kind" => "prompt").increment(u64::from(u.prompt_tokens));
                metrics::counter!("wasmgate_tokens_total", "kind" => "completion")
                    .increment(u64::from(u.completion_tokens));
            }
            settle_all(settlements, usage, outcome);
        }),
    )
}

/// Reads the whole request body within the size limit and the body deadline (one total
/// deadline from the end of the headers, not reset per chunk: a trickle cannot stretch it).
async fn read_body(body: Body, headers: &HeaderMap, server: &crate::config::ServerConfig) -> Result<Bytes, ApiError> {
    let limit = server.max_body_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    let collect = http_body_util::Limited::new(body, limit).collect();
    let Ok(collected) = tokio::time::timeout(server.connections.body_timeout, collect).await else {
        return Err(ApiError::body_timeout());
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::body_too_large(limit)),
        Err(e) if is_timeout(&*e) => Err(ApiError::body_timeout()),
        Err(_) => Err(ApiError::body_unreadable()),
    }
}

fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<tower_http::timeout::TimeoutError>() || err.to_string().contains("timed out") {
            return true;
        }
        cur = err.source();
    }
    false
}
