//! The mock's handlers: replies, SSE streams and the control headers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{MockState, MockStats, RecordedRequest};

/// Per-request behaviour: the server's config overridden by `x-mock-*` headers.
struct Controls {
    latency: Duration,
    chunks: u32,
    interval: Duration,
    status: Option<u16>,
    error_body: Option<String>,
    stall: Option<String>,
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl Controls {
    fn from(st: &MockState, h: &HeaderMap) -> Self {
        Controls {
            latency: header_u64(h, "x-mock-latency-ms").map(Duration::from_millis).unwrap_or(st.cfg.latency),
            chunks: header_u64(h, "x-mock-chunks").map(|n| n.min(100_000) as u32).unwrap_or(st.cfg.chunks),
            interval: header_u64(h, "x-mock-chunk-interval-ms")
                .map(Duration::from_millis)
                .unwrap_or(st.cfg.chunk_interval),
            status: header_u64(h, "x-mock-status").and_then(|s| u16::try_from(s).ok()),
            error_body: h.get("x-mock-error-body").and_then(|v| v.to_str().ok()).map(str::to_string),
            stall: h.get("x-mock-stall").and_then(|v| v.to_str().ok()).map(str::to_string),
        }
    }

    /// Answers that end the request before any normal reply: forced errors, stalls.
    async fn early(&self) -> Option<Response> {
        if self.stall.as_deref() == Some("headers") {
            std::future::pending::<()>().await;
        }
        let status = self.status?;
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match &self.error_body {
            Some(b) => b.clone(),
            None if status == 429 => error_json("Rate limit reached (mock).", "requests", "rate_limit_exceeded"),
            None => error_json("The mock was asked to fail.", "server_error", "mock_error"),
        };
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if status == 429 {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Some(resp)
    }
}

fn error_json(message: &str, kind: &str, code: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

fn bad_request(message: String) -> Response {
    let mut resp =
        (StatusCode::BAD_REQUEST, error_json(&message, "invalid_request_error", "invalid_json")).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn headers_map(h: &HeaderMap) -> BTreeMap<String, String> {
    h.iter().filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string()))).collect()
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<MockStats>);

impl InFlight {
    fn new(stats: &Arc<MockStats>) -> Self {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(stats.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Common start of every POST: stats, parse, record, controls.
async fn begin(st: &MockState, path: &str, headers: &HeaderMap, body: &Bytes) -> Result<(Value, Controls), Response> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    if st.cfg.record {
        st.recorder.push(RecordedRequest {
            method: "POST".into(),
            path: path.into(),
            headers: headers_map(headers),
            body: parsed.as_ref().cloned().unwrap_or(Value::Null),
        });
    }
    let ctl = Controls::from(st, headers);
    if let Some(resp) = ctl.early().await {
        return Err(resp);
    }
    let req = parsed.map_err(|e| bad_request(format!("Invalid JSON body: {e}")))?;
    if !req.is_object() {
        return Err(bad_request("The body must be a JSON object.".into()));
    }
    Ok((req, ctl))
}

fn text_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.iter().map(text_len).sum(),
        Value::Object(o) => o.get("content").or_else(|| o.get("text")).map(text_len).unwrap_or(0),
        _ => 0,
    }
}

fn words(model: &str, n: u32) -> Vec<String> {
    (0..n).map(|i| if i == 0 { format!("Mock reply from {model}:") } else { format!(" word{i}") }).collect()
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// `POST /v1/chat/completions` and `POST /v1/completions`.
async fn generate(st: MockState, headers: HeaderMap, body: Bytes, chat: bool) -> Response {
    let guard = InFlight::new(&st.stats);
    let path = if chat { "/v1/chat/completions" } else { "/v1/completions" };
    let (req, ctl) = match begin(&st, path, &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let model = req.get("model").and_then(Value::as_str).unwrap_or("mock").to_string();
    let source = if chat { req.get("messages") } else { req.get("prompt") };
    let prompt_tokens = (source.map(text_len).unwrap_or(0).div_ceil(4) as u64).max(1);
    let id = format!("{}-mock-{}", if chat { "chatcmpl" } else { "cmpl" }, st.ids.fetch_add(1, Ordering::Relaxed));
    let echo = json!({
        "headers": headers_map(&headers),
        "model": req.get("model"),
        "max_tokens": req.get("max_completion_tokens").or_else(|| req.get("max_tokens")),
        "messages": req.get("messages"),
    });
    let parts = words(&model, ctl.chunks.max(1));
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        tokio::time::sleep(ctl.latency).await;
        let text: String = parts.concat();
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": "stop"})
        } else {
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": "stop"})
        };
        drop(guard);
        return Json(json!({
            "id": id,
            "object": if chat { "chat.completion" } else { "text_completion" },
            "created": now(),
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [choice],
            "usage": usage(prompt_tokens, parts.len() as u64),
            "mock_echo": echo,
        }))
        .into_response();
    }
    let include_usage = req.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let object = if chat { "chat.completion.chunk" } else { "text_completion" };
    let created = now();
    let chunk = |choice: Value, extra: Option<(&str, Value)>| -> Bytes {
        let mut v = json!({"id": id, "object": object, "created": created, "model": model, "system_fingerprint": "fp_mock", "choices": [choice]});
        if include_usage {
            v["usage"] = Value::Null;
        }
        if let Some((k, val)) = extra {
            v[k] = val;
        }
        Bytes::from(format!("data: {v}\n\n"))
    };
    let delta = |content: Option<&str>, role: bool, finish: Option<&str>| -> Value {
        if chat {
            let mut d = json!({});
            if role {
                d["role"] = json!("assistant");
            }
            if let Some(c) = content {
                d["content"] = json!(c);
            }
            json!({"index": 0, "delta": d, "logprobs": null, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": content.unwrap_or(""), "logprobs": null, "finish_reason": finish})
        }
    };
    let mut events = Vec::with_capacity(parts.len() + 4);
    events.push(chunk(delta(Some(""), true, None), Some(("mock_echo", echo))));
    for p in &parts {
        events.push(chunk(delta(Some(p), false, None), None));
    }
    events.push(chunk(delta(None, false, Some("stop")), None));
    if include_usage {
        let mut v = json!({"id": id, "object": object, "created": created, "model": model, "system_fingerprint": "fp_mock", "choices": [], "usage": usage(prompt_tokens, parts.len() as u64)});
        v["choices"] = json!([]);
        events.push(Bytes::from(format!("data: {v}\n\n")));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    sse(st.stats.clone(), events, ctl, guard)
}

/// Tracks one stream: completed at `[DONE]`, cancelled if dropped before.
struct StreamGuard {
    stats: Arc<MockStats>,
    completed: bool,
    _in_flight: InFlight,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.completed { &self.stats.streams_completed } else { &self.stats.streams_cancelled };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

fn sse(stats: Arc<MockStats>, events: Vec<Bytes>, ctl: Controls, in_flight: InFlight) -> Response {
    stats.streams_started.fetch_add(1, Ordering::SeqCst);
    let guard = StreamGuard { stats, completed: false, _in_flight: in_flight };
    let stall_after_first = ctl.stall.as_deref() == Some("body");
    let state = (events.into_iter(), 0usize, guard, ctl);
    let stream = futures_util::stream::unfold(state, move |(mut it, i, mut guard, ctl)| async move {
        let next = it.next()?;
        let wait = if i == 0 { ctl.latency } else { ctl.interval };
        if i == 1 && stall_after_first {
            std::future::pending::<()>().await;
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if next.as_ref() == b"data: [DONE]\n\n" {
            guard.completed = true;
        }
        Some((Ok::<_, std::convert::Infallible>(next), (it, i + 1, guard, ctl)))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub(super) async fn chat(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    generate(st, headers, body, true).await
}

pub(super) async fn completions(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    generate(st, headers, body, false).await
}

/// A deterministic vector for `input`.
fn vector(input: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..dims)
        .map(|j| {
            let x = h.wrapping_add((j as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(17);
            ((x % 2000) as f32 / 1000.0) - 1.0
        })
        .collect()
}

pub(super) async fn embeddings(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let _guard = InFlight::new(&st.stats);
    let (req, ctl) = match begin(&st, "/v1/embeddings", &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    tokio::time::sleep(ctl.latency).await;
    let dims = req.get("dimensions").and_then(Value::as_u64).unwrap_or(8).clamp(1, 4096) as usize;
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => {
            a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect()
        }
        _ => return bad_request("'input' is required.".into()),
    };
    let tokens: u64 = inputs.iter().map(|s| (s.len().div_ceil(4) as u64).max(1)).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"object": "embedding", "index": i, "embedding": vector(s, dims)}))
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": req.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}

pub(super) async fn models(State(st): State<MockState>) -> Response {
    let data: Vec<Value> = st
        .cfg
        .models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "wasmgate-mock"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

pub(super) async fn stats(State(st): State<MockState>) -> Response {
    Json(st.stats.snapshot()).into_response()
}

pub(super) async fn requests(State(st): State<MockState>) -> Response {
    Json(st.recorder.all()).into_response()
}
