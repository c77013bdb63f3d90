//! **respond** — the response side: the upstream's head (status, relayable headers, plus the
//! response headers plugins set) and its body. A stream is relayed frame by frame, never
//! buffered, its usage watched; a non-streamed body is read (bounded) to learn its usage. The
//! finisher travels with the body until it ends.

use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, header};

use crate::api::ApiError;
use crate::policy::Outcome;
use crate::proxy::{self, RelayBody, UpstreamBody};
use crate::server::exchange::Exchange;
use crate::server::upstream_headers::relayable;

/// Largest non-streamed upstream body read whole (to find its usage); larger ones stream on.
const MAX_COLLECTED_RESPONSE: usize = 16 << 20;

pub async fn run(ex: &mut Exchange, upstream: http::Response<UpstreamBody>) -> Result<Response, ApiError> {
    let (Some(plan), Some(api)) = (ex.plan.as_ref(), ex.request.as_ref()) else {
        return Err(ApiError::internal());
    };
    let (parts, body) = upstream.into_parts();
    let status = parts.status;
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let mut headers = relayable(&parts.headers);
    for (name, value) in &ex.response_headers {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            headers.insert(n, v);
        }
    }
    let upstream_name = plan.route.upstream.cfg.name.clone();
    let watch = plan.watch;

    if api.stream() && is_sse && status.is_success() {
        headers.remove(header::CONTENT_LENGTH);
        ex.finisher.set_status(status);
        metrics::gauge!("wasmgate_active_streams").increment(1.0);
        let stream_started = Instant::now();
        ex.finisher.on_end(move |_| {
            metrics::gauge!("wasmgate_active_streams").decrement(1.0);
            metrics::histogram!("wasmgate_stream_duration_seconds").record(stream_started.elapsed().as_secs_f64());
        });
        let body = RelayBody::spawn(body, plan.strip_usage, watch, ex.finisher.take());
        let mut resp = Response::new(Body::new(body));
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        return Ok(resp);
    }

    // Non-streamed: read it (bounded) to learn the usage, then answer.
    let collected =
        tokio::time::timeout_at(watch.deadline, proxy::collect_with_usage(body, MAX_COLLECTED_RESPONSE)).await;
    let (bytes, usage, rest) = match collected {
        Err(_) => {
            ex.finisher.set_outcome(Outcome::UpstreamError);
            return Err(ApiError::upstream_timeout(&upstream_name, "total"));
        }
        Ok(Err(e)) => {
            ex.finisher.set_outcome(Outcome::UpstreamError);
            return Err(ApiError::upstream_bad_response(&upstream_name).caused_by(e));
        }
        Ok(Ok(x)) => x,
    };
    let outcome = if status.is_success() { Outcome::Completed } else { Outcome::UpstreamError };
    ex.finisher.set_status(status);
    let body = match rest {
        None => {
            ex.finisher.finish(usage, outcome);
            Body::from(bytes)
        }
        Some(rest) => {
            // Too large to hold: send what we have, then the rest as it comes.
            use futures_util::StreamExt;
            let head = futures_util::stream::once(async move { Ok::<_, hyper::Error>(bytes) });
            let tail = http_body_util::BodyDataStream::new(rest);
            let mut finisher = ex.finisher.take();
            let chained = head.chain(tail).chain(futures_util::stream::once(async move {
                finisher.finish(None, outcome);
                Ok(Bytes::new())
            }));
            headers.remove(header::CONTENT_LENGTH);
            Body::from_stream(chained)
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    Ok(resp)
}
