//! The request path, top to bottom as named phases (one file each under [`phases`]). Every
//! request is one [`Exchange`]; each phase either hands it to the next (`Flow::Next`), answers
//! (`Flow::Respond`), or fails (`Err`), and short-circuiting is always a return value.
//!
//! ```text
//! intake        tenant named by a path that has none (404); breaker scope; upstream headers
//! authenticate  leading auth plugins without `body`, on the headers: 401 before any body is read
//! read          the body, up to `server.max-body-bytes` (413), within the body timeout (408)
//! parse         typed OpenAI request, validated (400 naming the field); unknown fields kept
//! policy        the rest of the global chain: auth → rewrite → rate-limit, edits applied at once
//! tenant        assignment, the tenant's chain, its model allow-list; identity headers
//! route         model → upstream (404), tenant upstream override, provider headers, stream usage
//! forward       pooled client, failover on connect errors, first-byte timeout (502 / 504)
//! respond       the response side: stream frame by frame (usage watched), or read + usage
//! ```
//!
//! `GET /v1/models` runs `intake`, the auth plugins (`authenticate::for_models`), the tenant
//! assignment, and answers from `models`.
//!
//! Whatever the path, the exchange's [`Finisher`](crate::finisher::Finisher) ends the request
//! exactly once: metrics, access log, settlement of every reservation. Errors are rendered
//! and logged once, by [`rescue`].

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;

use super::Gateway;
use super::exchange::{Exchange, Operation};
use super::phases::{Flow, authenticate, forward, intake, models, parse, policy, read, respond, route, tenant};
use crate::api::{ApiError, Blame, Endpoint, RenderError};

/// Runs one phase: on to the next, or out of the pipeline with its answer.
macro_rules! phase {
    ($step:expr) => {
        match $step? {
            Flow::Next => {}
            Flow::Respond(response) => return Ok(response),
        }
    };
}

/// `POST /v1/{chat/completions,completions,embeddings}`, and `POST /t/{tenant}/v1/...` with the
/// tenant named by the path.
pub async fn handle(gw: Arc<Gateway>, endpoint: Endpoint, req: Request, tenant: Option<String>) -> Response {
    let mut ex = Exchange::new(&gw, Operation::Api(endpoint), req, tenant);
    let resp = completion(&mut ex).await;
    finish(ex, resp)
}

/// `GET /v1/models`, and `GET /t/{tenant}/v1/models`.
pub async fn handle_models(gw: Arc<Gateway>, req: Request, tenant: Option<String>) -> Response {
    let mut ex = Exchange::new(&gw, Operation::Models, req, tenant);
    let resp = list_models(&mut ex).await;
    finish(ex, resp)
}

async fn completion(ex: &mut Exchange) -> Result<Response, ApiError> {
    phase!(intake::run(ex));
    phase!(authenticate::run(ex).await);
    phase!(read::run(ex).await);
    phase!(parse::run(ex));
    phase!(policy::run(ex).await);
    phase!(tenant::run(ex).await);
    phase!(route::run(ex));
    let upstream = forward::run(ex).await?;
    respond::run(ex, upstream).await
}

async fn list_models(ex: &mut Exchange) -> Result<Response, ApiError> {
    phase!(intake::run(ex));
    phase!(authenticate::for_models(ex).await);
    Ok(models::answer(ex))
}

/// Renders the request's answer (its error, when it failed), stamps the request id and hands
/// the status to the finisher, which runs when the exchange is dropped here, or, for a
/// relayed body, when the body ends.
fn finish(mut ex: Exchange, resp: Result<Response, ApiError>) -> Response {
    let mut resp = resp.unwrap_or_else(|e| rescue(&mut ex, e));
    resp.headers_mut().insert("x-request-id", ex.request_id.clone());
    ex.finisher.set_status(resp.status());
    resp
}

/// The one place a failed request is logged and rendered (OpenAI error shape; the cause is
/// logged, never sent).
fn rescue(ex: &mut Exchange, e: ApiError) -> Response {
    let rid = &ex.request_id;
    let cause = e.cause_chain();
    match &e.blame {
        Blame::Client => {
            tracing::debug!(request_id = ?rid, status = e.status.as_u16(), code = ?e.code, "request refused")
        }
        Blame::Gateway if e.status.is_server_error() => {
            tracing::error!(request_id = ?rid, status = e.status.as_u16(), code = ?e.code, %cause, "request failed")
        }
        blame => tracing::warn!(
            request_id = ?rid, status = e.status.as_u16(), code = ?e.code, blame = blame.label(), %cause, "request failed"
        ),
    }
    ex.finisher.set_blame(&e.blame);
    e.into_response()
}
