//! Per-request control headers, which override [`MockConfig`](super::MockConfig) for one request,
//! and the OpenAI-shaped error responses the mock sends.
//!
//! | header | effect |
//! |---|---|
//! | `x-mock-latency-ms: N` | delay before the headers (non-stream) / the first chunk (stream) |
//! | `x-mock-chunks: N` | content chunks (= words = completion tokens) |
//! | `x-mock-chunk-interval-ms: N` | delay before each content chunk of a stream |
//! | `x-mock-status: 4xx/5xx` | answer that status at once with an OpenAI error (429 adds `retry-after: 1`) |
//! | `x-mock-error-body: raw` | with `x-mock-status`: send this raw body instead |
//! | `x-mock-stall: headers` | never send response headers (until the client goes away) |
//! | `x-mock-stall: body` | send headers and the first chunk, then nothing more, ever |
//!
//! An unparsable control header is a 400 naming the header.

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;

use super::MockConfig;

pub const LATENCY_MS: &str = "x-mock-latency-ms";
pub const CHUNKS: &str = "x-mock-chunks";
pub const CHUNK_INTERVAL_MS: &str = "x-mock-chunk-interval-ms";
pub const STATUS: &str = "x-mock-status";
pub const ERROR_BODY: &str = "x-mock-error-body";
pub const STALL: &str = "x-mock-stall";

/// Where a request is told to hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Never send the response headers.
    Headers,
    /// Send the headers and the first chunk, then stall the body.
    Body,
}

/// The effective settings for one request.
#[derive(Debug, Clone)]
pub struct Controls {
    pub latency: Duration,
    pub chunks: u32,
    pub chunk_interval: Duration,
    /// Injected error status and optional raw body.
    pub status: Option<(StatusCode, Option<HeaderValue>)>,
    pub stall: Option<Stall>,
}

impl Controls {
    /// The config's settings, overridden by any `x-mock-*` header; `Err` is a ready 400.
    #[allow(clippy::result_large_err)] // the error is the response itself, built once
    pub fn from_headers(cfg: &MockConfig, headers: &HeaderMap) -> Result<Self, Response> {
        let mut controls = Controls {
            latency: cfg.latency,
            chunks: cfg.chunks,
            chunk_interval: cfg.chunk_interval,
            status: None,
            stall: None,
        };
        // Fast path: most bench requests carry no control header at all.
        if !headers.keys().any(|name| name.as_str().starts_with("x-mock-")) {
            return Ok(controls);
        }
        if let Some(ms) = number(headers, LATENCY_MS)? {
            controls.latency = Duration::from_millis(ms);
        }
        if let Some(n) = number(headers, CHUNKS)? {
            controls.chunks = u32::try_from(n).map_err(|_| bad_header(CHUNKS))?;
        }
        if let Some(ms) = number(headers, CHUNK_INTERVAL_MS)? {
            controls.chunk_interval = Duration::from_millis(ms);
        }
        if let Some(code) = number(headers, STATUS)? {
            let status = u16::try_from(code)
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .filter(|s| s.is_client_error() || s.is_server_error())
                .ok_or_else(|| bad_header(STATUS))?;
            controls.status = Some((status, headers.get(ERROR_BODY).cloned()));
        }
        if let Some(stall) = headers.get(STALL) {
            controls.stall = Some(match stall.as_bytes() {
                b"headers" => Stall::Headers,
                b"body" => Stall::Body,
                _ => return Err(bad_header(STALL)),
            });
        }
        Ok(controls)
    }

    /// The response an `x-mock-status` header asks for.
    pub fn injected_error(status: StatusCode, raw_body: Option<HeaderValue>) -> Response {
        let mut response = match raw_body {
            Some(raw) => (
                status,
                [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                Body::from(raw.as_bytes().to_vec()),
            )
                .into_response(),
            None => {
                let (kind, code) = match status.as_u16() {
                    429 => ("requests", Some("rate_limit_exceeded")),
                    401 => ("invalid_request_error", Some("invalid_api_key")),
                    404 => ("invalid_request_error", Some("model_not_found")),
                    500.. => ("server_error", None),
                    _ => ("invalid_request_error", None),
                };
                let message = format!("mock upstream: injected status {status} (x-mock-status)");
                openai_error(status, &message, kind, None, code)
            }
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// `{"error":{"message","type","param","code"}}` with `status`.
pub fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    #[derive(Serialize)]
    struct Envelope<'a> {
        error: Detail<'a>,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        param: Option<&'a str>,
        code: Option<&'a str>,
    }
    let body = Envelope { error: Detail { message, kind, param, code } };
    (status, axum::Json(body)).into_response()
}

/// A 400 `invalid_request_error`, naming the offending parameter.
pub fn invalid_request(message: &str, param: Option<&str>) -> Response {
    openai_error(StatusCode::BAD_REQUEST, message, "invalid_request_error", param, None)
}

fn bad_header(name: &str) -> Response {
    invalid_request(&format!("mock upstream: invalid {name} header"), None)
}

#[allow(clippy::result_large_err)]
fn number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, Response> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).map(Some).ok_or_else(|| bad_header(name))
}
