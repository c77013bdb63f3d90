//! From the upstream's response to the client's: headers, the stream-or-read-whole choice,
//! the filter chain, and the hand-over of the request's [`Finisher`] (taken into the body of a
//! stream; finished here, with the status, for a body read whole).

use std::time::Instant;

use axum::body::Body as AxumBody;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, header};
use http_body::Body;

use super::filter::{FilterChain, ResponseFilter, ResponseHead};
use super::{UsageStrip, UsageWatch};
use crate::api::ApiError;
use crate::finisher::Finisher;
use crate::proxy::Outcome;
use crate::proxy::relay::{BoxError, RelayBody, StreamWatch, collect_bounded};
use crate::server::upstream_headers::relayable;

/// Largest non-streamed upstream body read whole (to find its usage, and for `on_body`);
/// larger ones stream on without the filters.
pub const MAX_COLLECTED_RESPONSE: usize = 16 << 20;

/// What the request decided about its response.
#[derive(Debug)]
pub struct ResponsePlan {
    /// The client asked for a stream.
    pub stream: bool,
    /// The gateway injected `stream_options.include_usage` and the client did not ask for it.
    pub strip_usage: bool,
    pub watch: StreamWatch,
    /// Response headers the policy chain set (added after the upstream's, replacing them).
    pub extra_headers: Vec<(String, String)>,
    /// The upstream's configured name, for error messages.
    pub upstream_name: String,
}

impl ResponsePlan {
    /// Today's chain: the usage watch first (it must see every upstream chunk, the usage-only
    /// one too), then the usage strip when asked for.
    pub fn filters(&self) -> FilterChain {
        let mut filters: Vec<Box<dyn ResponseFilter>> = vec![Box::new(UsageWatch)];
        if self.strip_usage {
            filters.push(Box::new(UsageStrip));
        }
        FilterChain::new(filters)
    }
}

/// Relays `upstream` to the client through the plan's filters ([`ResponsePlan::filters`]); the
/// request's finisher goes with the body of a stream.
pub async fn respond<B>(
    upstream: http::Response<B>,
    plan: ResponsePlan,
    finisher: &mut Finisher,
) -> Result<Response, ApiError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + Send,
{
    let chain = plan.filters();
    respond_with(upstream, plan, chain, finisher).await
}

/// [`respond`] with a chain of the caller's.
///
/// A successful `text/event-stream` answer to a streamed request is relayed event by event
/// by [`RelayBody`]'s pump; anything else (a JSON answer, an error status) is read whole within
/// the total deadline, run through `on_body`, and settled before it is sent.
pub async fn respond_with<B>(
    upstream: http::Response<B>,
    plan: ResponsePlan,
    mut chain: FilterChain,
    finisher: &mut Finisher,
) -> Result<Response, ApiError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + Send,
{
    let (parts, body) = upstream.into_parts();
    let status = parts.status;
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let mut headers = relayable(&parts.headers);
    for (name, value) in &plan.extra_headers {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            headers.insert(n, v);
        }
    }
    let streaming = plan.stream && is_sse && status.is_success();
    let mut head = ResponseHead { status, headers, streaming };

    if streaming {
        head.headers.remove(header::CONTENT_LENGTH);
        chain.on_head(&mut head);
        metrics::gauge!("wasmgate_active_streams").increment(1.0);
        let stream_started = Instant::now();
        finisher.set_status(status);
        finisher.on_end(move |_| {
            metrics::gauge!("wasmgate_active_streams").decrement(1.0);
            metrics::histogram!("wasmgate_stream_duration_seconds").record(stream_started.elapsed().as_secs_f64());
        });
        let body = RelayBody::spawn(body, chain, plan.watch, plan.upstream_name, finisher.take());
        return Ok(response(head, AxumBody::new(body)));
    }

    // Read whole (bounded) to learn the usage, then answer.
    chain.on_head(&mut head);
    let collected = tokio::time::timeout_at(plan.watch.deadline, collect_bounded(body, MAX_COLLECTED_RESPONSE)).await;
    let (mut bytes, rest) = match collected {
        Err(_) => {
            finisher.set_outcome(Outcome::UpstreamError);
            return Err(ApiError::upstream_timeout(&plan.upstream_name, "total"));
        }
        Ok(Err(e)) => {
            finisher.set_outcome(Outcome::UpstreamError);
            return Err(ApiError::upstream_bad_response(&plan.upstream_name).caused_by(BrokenBody(e.to_string())));
        }
        Ok(Ok(x)) => x,
    };
    let outcome = if status.is_success() { Outcome::Completed } else { Outcome::UpstreamError };
    finisher.set_status(status);
    let body = match rest {
        None => {
            if chain.on_body(&mut bytes) {
                head.headers.remove(header::CONTENT_LENGTH); // recomputed from the new body
            }
            finisher.finish(chain.tally.usage, outcome);
            AxumBody::from(bytes)
        }
        Some(rest) => {
            // Too large to hold: send what we have, then the rest as it comes; settled (without
            // usage) when the last byte is out.
            let first = futures_util::stream::once(async move { Ok::<_, BoxError>(bytes) });
            let tail = http_body_util::BodyDataStream::new(rest).map(|r| r.map_err(Into::into));
            let mut finisher = finisher.take();
            let chained = first.chain(tail).chain(futures_util::stream::once(async move {
                finisher.finish(None, outcome);
                Ok(Bytes::new())
            }));
            head.headers.remove(header::CONTENT_LENGTH);
            AxumBody::from_stream(chained)
        }
    };
    Ok(response(head, body))
}

fn response(head: ResponseHead, body: AxumBody) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = head.status;
    *resp.headers_mut() = head.headers;
    resp
}

/// An upstream body that broke while it was read whole (the cause of a 502).
#[derive(Debug, thiserror::Error)]
#[error("the upstream body broke: {0}")]
struct BrokenBody(String);
