//! `POST /v1/chat/completions` and `POST /v1/completions`: one deterministic text generation,
//! answered as a JSON object or handed to [`super::sse`] as a stream.
//!
//! The reply is `chunks` words from a fixed list, each followed by a space ("alpha bravo ... ");
//! a stream's deltas concatenate to exactly the non-stream content. `max_completion_tokens` /
//! `max_tokens` below `chunks` truncate the reply with `finish_reason: "length"`.
//! Usage: `prompt_tokens = max(1, ceil(chars of all message contents / 4))` (a token array
//! counts its length), `completion_tokens` = words.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde::Serialize;
use serde_json::{Map, Value};

use super::controls::{Stall, invalid_request};
use super::sse::{self, StreamPlan};
use super::state::{Shared, admit, delay, unix_now};

/// `system_fingerprint` of every reply.
pub(crate) const FINGERPRINT: &str = "fp_wasmgate_mock";

/// The reply's words; chunk `i` is `WORDS[i % 16]`, trailing space included.
const WORDS: [&str; 16] = [
    "alpha ",
    "bravo ",
    "charlie ",
    "delta ",
    "echo ",
    "foxtrot ",
    "golf ",
    "hotel ",
    "india ",
    "juliett ",
    "kilo ",
    "lima ",
    "mike ",
    "november ",
    "oscar ",
    "papa ",
];

/// The text of content chunk `i`.
pub(crate) fn word(i: u32) -> &'static str {
    WORDS[usize::try_from(i).unwrap_or(0) % WORDS.len()]
}

/// Which OpenAI object family a reply belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `chat.completion` / `chat.completion.chunk`.
    Chat,
    /// Legacy `text_completion`.
    Legacy,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// `mock_echo`: what reached the upstream, as received.
#[derive(Serialize)]
pub(crate) struct Echo<'a> {
    pub headers: &'a BTreeMap<String, String>,
    pub model: &'a Value,
    pub max_tokens: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<&'a Value>,
}

impl<'a> Echo<'a> {
    pub fn new(headers: &'a BTreeMap<String, String>, request: &'a Map<String, Value>) -> Self {
        Echo {
            headers,
            model: request.get("model").unwrap_or(&Value::Null),
            max_tokens: request.get("max_tokens").unwrap_or(&Value::Null),
            messages: None,
            prompt: None,
            input: None,
        }
    }
}

pub(crate) async fn chat(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    generate(Kind::Chat, &state, &method, &uri, &headers, &body).await
}

pub(crate) async fn legacy(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    generate(Kind::Legacy, &state, &method, &uri, &headers, &body).await
}

async fn generate(
    kind: Kind,
    state: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let admitted = match admit(state, method, uri, headers, body).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let Some(request) = admitted.body.as_object() else {
        return invalid_request("The request body must be a JSON object.", None);
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return invalid_request("You must provide a model parameter.", Some("model"));
    };
    let mut echo = Echo::new(&admitted.headers, request);
    let prompt_units = match kind {
        Kind::Chat => {
            let Some(messages) = request.get("messages").and_then(Value::as_array) else {
                return invalid_request("'messages' must be an array.", Some("messages"));
            };
            echo.messages = request.get("messages");
            messages.iter().map(|m| text_units(m.get("content").unwrap_or(&Value::Null))).sum()
        }
        Kind::Legacy => {
            echo.prompt = Some(request.get("prompt").unwrap_or(&Value::Null));
            text_units(request.get("prompt").unwrap_or(&Value::Null))
        }
    };
    let controls = &admitted.controls;
    let limit = request.get("max_completion_tokens").or_else(|| request.get("max_tokens")).and_then(Value::as_u64);
    let (words, finish_reason) = match limit {
        Some(limit) if limit < u64::from(controls.chunks) => (u32::try_from(limit).unwrap_or(0), "length"),
        _ => (controls.chunks, "stop"),
    };
    let usage = Usage {
        prompt_tokens: tokens(prompt_units),
        completion_tokens: u64::from(words),
        total_tokens: tokens(prompt_units) + u64::from(words),
    };
    let id = match kind {
        Kind::Chat => format!("chatcmpl-mock-{}", state.next_id()),
        Kind::Legacy => format!("cmpl-mock-{}", state.next_id()),
    };
    let created = unix_now();

    if request.get("stream") == Some(&Value::Bool(true)) {
        let include_usage = admitted.body.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
        let plan = StreamPlan::new(
            kind,
            &id,
            created,
            model,
            words,
            finish_reason,
            include_usage.then_some(usage),
            &echo,
            controls,
        );
        return sse::stream(plan, admitted.in_flight);
    }

    delay(controls.latency).await;
    if controls.stall == Some(Stall::Body) {
        return sse::stalled(admitted.in_flight);
    }
    let mut content = String::with_capacity(usize::try_from(words).unwrap_or(0) * 10);
    for i in 0..words {
        content.push_str(word(i));
    }
    match kind {
        Kind::Chat => Json(ChatCompletion {
            id: &id,
            object: "chat.completion",
            created,
            model,
            system_fingerprint: FINGERPRINT,
            choices: [ChatChoice {
                index: 0,
                message: Message { role: "assistant", content: &content, refusal: None },
                logprobs: None,
                finish_reason,
            }],
            usage,
            mock_echo: echo,
        })
        .into_response(),
        Kind::Legacy => Json(TextCompletion {
            id: &id,
            object: "text_completion",
            created,
            model,
            system_fingerprint: FINGERPRINT,
            choices: [TextChoice { text: &content, index: 0, logprobs: None, finish_reason }],
            usage,
            mock_echo: echo,
        })
        .into_response(),
    }
}

/// Characters of text in a message content / prompt / input value. Strings count their chars,
/// content parts their `text`, and a token array (numbers) 4 per token so that
/// [`tokens`] gives back its length.
pub(crate) fn text_units(value: &Value) -> u64 {
    match value {
        Value::String(s) => u64::try_from(s.chars().count()).unwrap_or(u64::MAX),
        Value::Number(_) => 4,
        Value::Array(items) => items.iter().map(text_units).sum(),
        Value::Object(part) => part.get("text").map_or(0, text_units),
        Value::Null | Value::Bool(_) => 0,
    }
}

/// `max(1, ceil(units / 4))`.
pub(crate) fn tokens(units: u64) -> u64 {
    units.div_ceil(4).max(1)
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: [ChatChoice<'a>; 1],
    usage: Usage,
    mock_echo: Echo<'a>,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: [TextChoice<'a>; 1],
    usage: Usage,
    mock_echo: Echo<'a>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: &'static str,
}
