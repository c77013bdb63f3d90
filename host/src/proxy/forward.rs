//! Sending one request upstream: endpoint rotation, connect-failure failover (only before any
//! byte was sent, so a retry can never duplicate a generation), and the first-byte timeout.

use std::sync::atomic::Ordering;
use std::time::Instant;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;

use super::Upstream;
use super::pool::LaneGuard;
use crate::api::{ApiError, Endpoint};

pin_project_lite::pin_project! {
    /// An upstream response body, holding its connection slot until it is finished or dropped.
    pub struct UpstreamBody {
        #[pin]
        inner: Incoming,
        _slot: LaneGuard,
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What goes upstream: the path kind, the final body and the headers (auth is added here).
pub struct UpstreamRequest {
    pub endpoint: Endpoint,
    pub body: Bytes,
    pub headers: HeaderMap,
}

/// Why forwarding failed. Mapped to client errors by [`ForwardError::to_api`].
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Every endpoint refused the connection (or DNS/TLS failed).
    #[error("upstream `{upstream}` unreachable after {attempts} attempt(s): {last}")]
    Unreachable { upstream: String, attempts: usize, last: String },
    /// The response headers did not arrive in time.
    #[error("upstream `{upstream}` sent no response headers within {after:?}")]
    FirstByteTimeout { upstream: String, after: std::time::Duration },
    /// The exchange failed after the request was sent.
    #[error("upstream `{upstream}` failed mid-exchange: {cause}")]
    Broken { upstream: String, cause: String },
    /// The request could not be built (bad header value from a plugin, etc.).
    #[error("cannot build the upstream request: {0}")]
    BadRequest(String),
}

impl ForwardError {
    pub fn to_api(&self) -> ApiError {
        match self {
            ForwardError::Unreachable { upstream, .. } => ApiError::upstream_unreachable(upstream),
            ForwardError::FirstByteTimeout { upstream, .. } => ApiError::upstream_timeout(upstream, "first byte"),
            ForwardError::Broken { upstream, .. } => ApiError::upstream_bad_response(upstream),
            ForwardError::BadRequest(_) => ApiError::internal(),
        }
    }
}

/// Sends `req` to `up`, failing over to the next endpoint on connect errors only. Waiting for
/// a free connection slot counts against the first-byte timeout.
pub async fn send(up: &Upstream, req: UpstreamRequest) -> Result<Response<UpstreamBody>, ForwardError> {
    let n = up.cfg.endpoints.len();
    let start = up.next.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + up.cfg.first_byte_timeout;
    let mut last = String::from("no endpoint configured");
    for attempt in 0..n {
        let ep = &up.cfg.endpoints[(start + attempt) % n];
        let uri = http::Uri::builder()
            .scheme(ep.scheme.clone())
            .authority(ep.authority.clone())
            .path_and_query(format!("{}{}", ep.base_path, req.endpoint.upstream_path()))
            .build()
            .map_err(|e| ForwardError::BadRequest(e.to_string()))?;
        let mut builder = Request::builder().method(Method::POST).uri(uri);
        if let Some(h) = builder.headers_mut() {
            h.clone_from(&req.headers);
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(auth) = &up.auth_header {
                h.insert(header::AUTHORIZATION, auth.clone());
            }
        }
        let request = builder.body(Full::new(req.body.clone())).map_err(|e| ForwardError::BadRequest(e.to_string()))?;
        let started = Instant::now();
        let exchange = async {
            let slot = up.pools[(start + attempt) % n].acquire().await?;
            let resp = slot.client().request(request).await;
            Some(resp.map(|r| r.map(|inner| UpstreamBody { inner, _slot: slot })))
        };
        match tokio::time::timeout_at(deadline.into(), exchange).await {
            Err(_) | Ok(None) => {
                metrics::counter!("wasmgate_upstream_errors_total", "upstream" => up.cfg.name.clone(), "kind" => "timeout").increment(1);
                return Err(ForwardError::FirstByteTimeout {
                    upstream: up.cfg.name.clone(),
                    after: up.cfg.first_byte_timeout,
                });
            }
            Ok(Some(Ok(resp))) => {
                up.duration.record(started.elapsed().as_secs_f64());
                return Ok(resp);
            }
            Ok(Some(Err(e))) if e.is_connect() => {
                tracing::warn!(upstream = %up.cfg.name, endpoint = %ep, error = %e, "connect failed; trying next endpoint");
                metrics::counter!("wasmgate_upstream_errors_total", "upstream" => up.cfg.name.clone(), "kind" => "connect").increment(1);
                last = e.to_string();
            }
            Ok(Some(Err(e))) => {
                metrics::counter!("wasmgate_upstream_errors_total", "upstream" => up.cfg.name.clone(), "kind" => "broken").increment(1);
                return Err(ForwardError::Broken { upstream: up.cfg.name.clone(), cause: error_chain(&e) });
            }
        }
    }
    Err(ForwardError::Unreachable { upstream: up.cfg.name.clone(), attempts: n, last })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
