//! Dialects: the three LLM APIs the gateway speaks on either side — OpenAI Chat Completions
//! (the hub), OpenAI Responses and Anthropic Messages — and what translating between them
//! shares: the error model rendered per dialect, the stream-translator contract, and usage
//! read out of each dialect's events.
//!
//! **Chat is the hub.** Every ingress reaches every egress through it: a request goes
//! `ingress → chat → egress` (a step is skipped where a side *is* chat), a response comes back
//! `egress → chat → ingress`. Where ingress and egress match, nothing is translated: the body
//! passes untouched and only its usage is read ([`anthropic::read_usage`],
//! [`responses::read_usage`]). The hub carries what plain chat cannot say in two extension
//! fields of a chat delta or message, which no OpenAI SDK rejects: `reasoning_content` (the
//! thinking text, as DeepSeek, vLLM and others send it) and `reasoning_signature` (Anthropic's
//! signature of a thinking block, so it survives a round trip).
//!
//! Pure: no IO, no tokio, no axum.

pub mod anthropic;
pub mod responses;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Usage;
use crate::error::ApiError;
use crate::events::SseEvent;

/// An API shape a client speaks (by the endpoint it calls) or an upstream speaks (by config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Dialect {
    /// `POST /chat/completions` (also the legacy `/completions` and `/embeddings`).
    #[default]
    #[serde(rename = "openai-chat")]
    OpenAiChat,
    /// `POST /responses`.
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
    /// `POST /messages` (Anthropic).
    #[serde(rename = "anthropic")]
    Anthropic,
}

impl Dialect {
    /// The config name (`openai-chat`, `openai-responses`, `anthropic`).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenAiChat => "openai-chat",
            Dialect::OpenAiResponses => "openai-responses",
            Dialect::Anthropic => "anthropic",
        }
    }

    /// Parses a config name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Dialect::OpenAiChat, Dialect::OpenAiResponses, Dialect::Anthropic].into_iter().find(|d| d.name() == name)
    }
}

/// An error as every dialect can render it: the OpenAI fields, plus the status (Anthropic's
/// error `type` is derived from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    pub status: u16,
    pub message: String,
    /// The OpenAI error `type` (`invalid_request_error`, `rate_limit_error`, `server_error`, …).
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorFields {
    pub fn from_api(e: &ApiError) -> Self {
        ErrorFields {
            status: e.status.as_u16(),
            message: e.message.clone(),
            kind: e.kind.to_string(),
            param: e.param.clone(),
            code: e.code.map(str::to_string),
        }
    }

    /// Reads an error body of any dialect: OpenAI's `{"error":{"message","type",..}}`,
    /// Anthropic's `{"type":"error","error":{"type","message"}}`, or a Responses stream's
    /// `{"type":"error","code","message"}` / `response.failed`. `None` if it is none of them.
    pub fn parse(status: u16, body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Self::from_value(status, &v)
    }

    /// [`ErrorFields::parse`] of a parsed document.
    pub fn from_value(status: u16, v: &Value) -> Option<Self> {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        if v.get("type").and_then(Value::as_str) == Some("response.failed") {
            let e = v.pointer("/response/error")?;
            return Some(ErrorFields {
                status,
                message: s(e, "message").unwrap_or_default(),
                kind: "server_error".into(),
                param: None,
                code: s(e, "code"),
            });
        }
        if let Some(e) = v.get("error").filter(|e| e.is_object()) {
            let message = s(e, "message").unwrap_or_default();
            if v.get("type").and_then(Value::as_str) == Some("error") {
                // Anthropic: the error type is Anthropic's; map it to OpenAI's.
                let anthropic_type = s(e, "type").unwrap_or_default();
                return Some(ErrorFields {
                    status,
                    message,
                    kind: openai_kind_of_anthropic(&anthropic_type).to_string(),
                    param: None,
                    code: Some(anthropic_type),
                });
            }
            return Some(ErrorFields {
                status,
                message,
                kind: s(e, "type").unwrap_or_else(|| default_kind(status).to_string()),
                param: s(e, "param"),
                code: e
                    .get("code")
                    .and_then(|c| c.as_str().map(str::to_string).or_else(|| c.as_i64().map(|n| n.to_string()))),
            });
        }
        if v.get("type").and_then(Value::as_str) == Some("error") {
            return Some(ErrorFields {
                status,
                message: s(v, "message").unwrap_or_default(),
                kind: default_kind(status).to_string(),
                param: s(v, "param"),
                code: s(v, "code"),
            });
        }
        None
    }

    /// The error body in `dialect`'s shape.
    pub fn body(&self, dialect: Dialect) -> Vec<u8> {
        let v = match dialect {
            // Responses errors are OpenAI errors.
            Dialect::OpenAiChat | Dialect::OpenAiResponses => json!({"error": {
                "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
            }}),
            Dialect::Anthropic => json!({"type": "error", "error": {
                "type": anthropic_type(self.status, &self.kind), "message": self.message,
            }}),
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// The error as the last event of a stream in `dialect` (a translator that keeps a
    /// sequence number renders its own: [`StreamTranslator::on_error`]).
    pub fn event(&self, dialect: Dialect) -> SseEvent {
        match dialect {
            Dialect::OpenAiChat => SseEvent::from_data(self.body(dialect)),
            Dialect::Anthropic => SseEvent::from_data(self.body(dialect)).with_event("error"),
            Dialect::OpenAiResponses => self.responses_event(0),
        }
    }

    /// A Responses stream's `error` event with sequence number `seq`.
    pub fn responses_event(&self, seq: u64) -> SseEvent {
        let v = json!({
            "type": "error", "code": self.code.clone().unwrap_or_else(|| self.kind.clone()),
            "message": self.message, "param": self.param, "sequence_number": seq,
        });
        SseEvent::from_data(serde_json::to_vec(&v).unwrap_or_default()).with_event("error")
    }
}

/// Anthropic's error `type` for a status (its SDKs pick the exception class by status; the
/// type says the same in words).
pub fn anthropic_type(status: u16, openai_kind: &str) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ if openai_kind == "invalid_request_error" => "invalid_request_error",
        _ => "api_error",
    }
}

fn openai_kind_of_anthropic(t: &str) -> &'static str {
    match t {
        "invalid_request_error" | "not_found_error" | "request_too_large" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "rate_limit_error" => "rate_limit_error",
        _ => "server_error",
    }
}

fn default_kind(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// Translates one response stream, event by event, from one dialect into another.
///
/// One value per stream: it keeps what it must (open blocks, indexes, ids, sequence numbers,
/// the usage seen so far). The contract:
/// - [`on_event`](Self::on_event) gets every event of the source stream in order (comments,
///   keep-alives and `[DONE]` included) and pushes what each becomes onto `out` (nothing: the
///   event is dropped). It never emits an event twice (one `message_start`, one
///   `response.created`) and never leaves a block open across a change of block kind.
/// - [`on_end`](Self::on_end) runs once, when the source ended normally; it closes what is
///   still open and emits the target's final events if the source did not carry them.
/// - [`on_error`](Self::on_error) runs instead of `on_end` when the gateway ends the stream
///   with an error; it renders the error as the target's error event. An error *event* of the
///   source goes through `on_event` and becomes the target's error event there.
pub trait StreamTranslator: Send {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<SseEvent>);
    fn on_end(&mut self, out: &mut Vec<SseEvent>);
    fn on_error(&mut self, error: &ErrorFields, out: &mut Vec<SseEvent>);
}

/// What a usage reader learned from a stream so far (in common, OpenAI-chat units: prompt
/// tokens include cached ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamUsage {
    pub usage: Option<Usage>,
    /// Bytes of model output seen (text, thinking, tool names and arguments), unescaped.
    pub output_bytes: usize,
}
