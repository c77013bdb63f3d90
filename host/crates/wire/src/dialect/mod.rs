//! Dialects: the three LLM APIs the gateway speaks on either side — OpenAI Chat Completions
//! (the hub), OpenAI Responses and Anthropic Messages — and what translating between them
//! shares: the error model rendered per dialect, the stream-translator contract, and usage
//! read out of each dialect's events.
//!
//! **Chat is the hub.** Every ingress reaches every egress through it: a request goes
//! `ingress → chat → egress` (a step is skipped where a side *is* chat), a response comes back
//! `egress → chat → ingress`. Where ingress and egress match, nothing is translated: the body
//! passes untouched and only its usage is read (each dialect module's usage reader, into a
//! [`StreamUsage`]). The hub carries what plain chat cannot say in two extension
//! fields of a chat delta or message, which no OpenAI SDK rejects: `reasoning_content` (the
//! thinking text, as DeepSeek, vLLM and others send it) and `reasoning_signature` (Anthropic's
//! signature of a thinking block, so it survives a round trip).
//!
//! Pure: no IO, no tokio, no axum.

pub mod anthropic;
pub mod responses;

use serde_json::{Value, json};

use crate::Usage;
use crate::error::{ApiError, error_body};
use crate::events::SseEvent;

/// An API shape a client speaks (by the endpoint it calls) or an upstream speaks (by config,
/// parsed with [`Dialect::from_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// `POST /chat/completions` (also the legacy `/completions` and `/embeddings`).
    #[default]
    OpenAiChat,
    /// `POST /responses`.
    OpenAiResponses,
    /// `POST /messages` (Anthropic).
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
        match dialect {
            // Responses errors are OpenAI errors.
            Dialect::OpenAiChat | Dialect::OpenAiResponses => {
                error_body(&self.message, &self.kind, self.param.as_deref(), self.code.as_deref())
            }
            Dialect::Anthropic => {
                let v = json!({"type": "error", "error": {
                    "type": anthropic_type(self.status, &self.kind), "message": self.message,
                }});
                serde_json::to_vec(&v).unwrap_or_default()
            }
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fields(status: u16, kind: &str, code: Option<&str>) -> ErrorFields {
        ErrorFields {
            status,
            message: "no".into(),
            kind: kind.into(),
            param: Some("model".into()),
            code: code.map(str::to_string),
        }
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for d in [Dialect::OpenAiChat, Dialect::OpenAiResponses, Dialect::Anthropic] {
            assert_eq!(Dialect::from_name(d.name()), Some(d));
        }
        assert_eq!(Dialect::from_name("anthropic-messages"), None);
    }

    #[test]
    fn an_api_error_renders_as_each_dialect_expects() {
        let e = ApiError::model_not_found("nope");
        let f = ErrorFields::from_api(&e);
        assert_eq!(json(&f.body(Dialect::OpenAiChat)), json(&e.body()), "the OpenAI shape is the gateway's own");
        assert_eq!(f.body(Dialect::OpenAiResponses), f.body(Dialect::OpenAiChat));
        let a = json(&f.body(Dialect::Anthropic));
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "not_found_error");
        assert_eq!(a["error"]["message"], e.message.as_str());
    }

    #[test]
    fn anthropic_types_follow_the_status() {
        let cases = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ];
        for (status, want) in cases {
            assert_eq!(anthropic_type(status, "server_error"), want, "{status}");
        }
    }

    #[test]
    fn errors_of_every_dialect_parse() {
        let openai = br#"{"error":{"message":"m","type":"rate_limit_error","param":null,"code":"rate_limited"}}"#;
        let f = ErrorFields::parse(429, openai).unwrap();
        assert_eq!(
            (f.kind.as_str(), f.code.as_deref(), f.message.as_str()),
            ("rate_limit_error", Some("rate_limited"), "m")
        );
        let numeric_code = br#"{"error":{"message":"m","type":"server_error","code":500}}"#;
        assert_eq!(ErrorFields::parse(500, numeric_code).unwrap().code.as_deref(), Some("500"));

        let anthropic = br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
        let f = ErrorFields::parse(529, anthropic).unwrap();
        assert_eq!(
            (f.kind.as_str(), f.code.as_deref(), f.message.as_str()),
            ("server_error", Some("overloaded_error"), "busy")
        );
        // Rendered back for an Anthropic client, it keeps its status's type.
        assert_eq!(json(&f.body(Dialect::Anthropic))["error"]["type"], "overloaded_error");

        let responses_event =
            br#"{"type":"error","code":"overloaded","message":"busy","param":null,"sequence_number":4}"#;
        let f = ErrorFields::parse(200, responses_event).unwrap();
        assert_eq!((f.code.as_deref(), f.message.as_str()), (Some("overloaded"), "busy"));

        let failed = br#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"down"}}}"#;
        let f = ErrorFields::parse(200, failed).unwrap();
        assert_eq!((f.code.as_deref(), f.message.as_str()), (Some("server_error"), "down"));

        for not_an_error in [&br#"{"id":"chatcmpl-1","choices":[]}"#[..], b"not json", br#"{"error":"flat string"}"#] {
            assert_eq!(ErrorFields::parse(500, not_an_error), None, "{}", String::from_utf8_lossy(not_an_error));
        }
    }

    #[test]
    fn stream_error_events_carry_the_dialects_framing() {
        let f = fields(503, "server_error", Some("upstream_unreachable"));
        let mut out = bytes::BytesMut::new();
        f.event(Dialect::OpenAiChat).encode(&mut out);
        assert!(out.starts_with(b"data: {\"error\":"), "{out:?}");
        out.clear();
        f.event(Dialect::Anthropic).encode(&mut out);
        assert!(out.starts_with(b"event: error\n"), "{out:?}");
        let ev = f.responses_event(7);
        assert_eq!(ev.event(), Some("error"));
        let v = json(ev.data().unwrap());
        assert_eq!((v["sequence_number"].as_u64(), v["code"].as_str()), (Some(7), Some("upstream_unreachable")));
    }
}
