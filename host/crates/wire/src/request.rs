//! Typed OpenAI request bodies: parsed once, validated, edited by policies, re-serialized only
//! when something changed.
//!
//! Every struct keeps the fields it does not know in `extra` (`#[serde(flatten)]`), so a new
//! OpenAI parameter reaches the upstream untouched; the gateway only needs to understand the
//! fields it routes, validates or edits.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;

/// Which OpenAI endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
}

impl Endpoint {
    /// The name policies see (`request.endpoint` in the WIT).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
        }
    }

    /// Path below the upstream's base URL.
    pub fn upstream_path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }

    /// The route label used in metrics.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
        }
    }
}

/// Roles a chat message may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// One chat message. Content is a string or an array of parts (text, images, audio...).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `stream_options` of a streamed request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Sampling parameters shared by chat and completions, range-checked by [`Sampling::validate`].
///
/// They are fields of each request struct, not a `#[serde(flatten)]`ed struct: serde
/// deserializes flattened fields from a buffer that loses the field path, so a wrong type
/// (`"temperature":"hot"`) could not name its field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub n: Option<u32>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
}

impl Sampling {
    fn validate(&self) -> Result<(), ApiError> {
        range("temperature", self.temperature, 0.0, 2.0)?;
        range("top_p", self.top_p, 0.0, 1.0)?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        if let Some(n) = self.n.filter(|n| !(1..=128).contains(n)) {
            return Err(ApiError::invalid_param("n", format!("{n} is not in [1, 128] - 'n'")));
        }
        Ok(())
    }
}

fn range(name: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<(), ApiError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => {
            Err(ApiError::invalid_param(name, format!("{x} is not in [{lo}, {hi}] - '{name}'")))
        }
        _ => Ok(()),
    }
}

fn positive(name: &str, v: Option<u32>) -> Result<(), ApiError> {
    match v {
        Some(0) => Err(ApiError::invalid_param(name, format!("0 is less than the minimum of 1 - '{name}'"))),
        _ => Ok(()),
    }
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

macro_rules! sampling_accessor {
    ($t:ty) => {
        impl $t {
            /// The sampling parameters, for validation.
            pub fn sampling(&self) -> Sampling {
                Sampling {
                    temperature: self.temperature,
                    top_p: self.top_p,
                    n: self.n,
                    presence_penalty: self.presence_penalty,
                    frequency_penalty: self.frequency_penalty,
                }
            }
        }
    };
}
sampling_accessor!(ChatRequest);
sampling_accessor!(CompletionRequest);

/// `POST /v1/embeddings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A parsed, validated request of any endpoint.
#[derive(Debug, Clone)]
pub enum ApiRequest {
    Chat(ChatRequest),
    Completions(CompletionRequest),
    Embeddings(EmbeddingRequest),
}

/// Parses `body` as JSON of type `T`, with errors that say where (line, column, field path).
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed_json("The request body is empty; expected a JSON object."));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::malformed_json(format!(
                "We could not parse the JSON body of your request: {inner}. (HINT: check line {}, column {}.)",
                inner.line(),
                inner.column()
            ))
        } else if let Some(key) = duplicate_key(&inner.to_string()) {
            // serde reports a repeated field at the object holding it: name the key itself.
            let param = if path == "." { key.to_string() } else { format!("{path}.{key}") };
            ApiError::invalid_param(param.clone(), format!("Duplicate key '{param}' in the request body."))
        } else if path == "." {
            ApiError::malformed_json(format!("The request body must be a JSON object: {inner}."))
        } else {
            // serde's message names the expected type; strip its position suffix for clarity.
            let msg = inner.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            ApiError::invalid_param(path.clone(), format!("Invalid value for '{path}': {msg}."))
        }
    })?;
    // Nothing but whitespace may follow the document: an unedited body goes upstream as sent, so
    // bytes after it would reach the upstream (and body plugins) unchecked.
    de.end().map_err(|inner| {
        ApiError::malformed_json(format!(
            "We could not parse the JSON body of your request: {inner}. (HINT: check line {}, column {}.)",
            inner.line(),
            inner.column()
        ))
    })?;
    Ok(parsed)
}

/// The key of serde's "duplicate field `key`" error.
fn duplicate_key(msg: &str) -> Option<&str> {
    msg.strip_prefix("duplicate field `")?.split('`').next()
}

fn require_model(model: &str) -> Result<(), ApiError> {
    if model.trim().is_empty() { Err(ApiError::missing_param("model")) } else { Ok(()) }
}

impl ApiRequest {
    /// Parses and validates a body for `endpoint`. The only JSON parse of the request.
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<Self, ApiError> {
        match endpoint {
            Endpoint::Chat => {
                let r: ChatRequest = parse(body)?;
                validate_chat(&r)?;
                Ok(ApiRequest::Chat(r))
            }
            Endpoint::Completions => {
                let r: CompletionRequest = parse(body)?;
                require_model(&r.model)?;
                match &r.prompt {
                    None | Some(Value::Null) => return Err(ApiError::missing_param("prompt")),
                    Some(Value::String(_)) => {}
                    Some(Value::Array(a)) if !a.is_empty() => {}
                    Some(_) => {
                        return Err(ApiError::invalid_param(
                            "prompt",
                            "'prompt' must be a string, an array of strings, or an array of tokens.",
                        ));
                    }
                }
                positive("max_tokens", r.max_tokens)?;
                r.sampling().validate()?;
                Ok(ApiRequest::Completions(r))
            }
            Endpoint::Embeddings => {
                let r: EmbeddingRequest = parse(body)?;
                require_model(&r.model)?;
                match &r.input {
                    None | Some(Value::Null) => return Err(ApiError::missing_param("input")),
                    Some(Value::String(s)) if !s.is_empty() => {}
                    Some(Value::Array(a)) if !a.is_empty() => {}
                    Some(_) => {
                        return Err(ApiError::invalid_param(
                            "input",
                            "'input' must be a non-empty string or a non-empty array.",
                        ));
                    }
                }
                positive("dimensions", r.dimensions)?;
                Ok(ApiRequest::Embeddings(r))
            }
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        match self {
            ApiRequest::Chat(_) => Endpoint::Chat,
            ApiRequest::Completions(_) => Endpoint::Completions,
            ApiRequest::Embeddings(_) => Endpoint::Embeddings,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            ApiRequest::Chat(r) => &r.model,
            ApiRequest::Completions(r) => &r.model,
            ApiRequest::Embeddings(r) => &r.model,
        }
    }

    pub fn set_model(&mut self, model: String) {
        match self {
            ApiRequest::Chat(r) => r.model = model,
            ApiRequest::Completions(r) => r.model = model,
            ApiRequest::Embeddings(r) => r.model = model,
        }
    }

    pub fn stream(&self) -> bool {
        match self {
            ApiRequest::Chat(r) => r.stream.unwrap_or(false),
            ApiRequest::Completions(r) => r.stream.unwrap_or(false),
            ApiRequest::Embeddings(_) => false,
        }
    }

    /// The effective output-token cap: for chat the smaller of `max_tokens` and
    /// `max_completion_tokens` when both are set (an upstream honours either), so the cap and
    /// the token reservation see the tighter one.
    pub fn max_tokens(&self) -> Option<u32> {
        match self {
            ApiRequest::Chat(r) => match (r.max_tokens, r.max_completion_tokens) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            ApiRequest::Completions(r) => r.max_tokens,
            ApiRequest::Embeddings(_) => None,
        }
    }

    /// Sets the output-token cap in every field the client used (`max_tokens` if neither), so
    /// that afterwards [`Self::max_tokens`] is `n` whichever field the upstream reads.
    pub fn set_max_tokens(&mut self, n: u32) {
        match self {
            ApiRequest::Chat(r) => {
                if r.max_completion_tokens.is_some() {
                    r.max_completion_tokens = Some(n);
                }
                if r.max_tokens.is_some() || r.max_completion_tokens.is_none() {
                    r.max_tokens = Some(n);
                }
            }
            ApiRequest::Completions(r) => r.max_tokens = Some(n),
            ApiRequest::Embeddings(_) => {}
        }
    }

    /// Whether the client itself asked for usage in the stream.
    pub fn wants_stream_usage(&self) -> bool {
        let opts = match self {
            ApiRequest::Chat(r) => r.stream_options.as_ref(),
            ApiRequest::Completions(r) => r.stream_options.as_ref(),
            ApiRequest::Embeddings(_) => None,
        };
        opts.and_then(|o| o.include_usage).unwrap_or(false)
    }

    /// Asks the upstream to send usage in the last chunk of a stream (so tokens can be settled).
    pub fn request_stream_usage(&mut self) {
        let opts = match self {
            ApiRequest::Chat(r) => &mut r.stream_options,
            ApiRequest::Completions(r) => &mut r.stream_options,
            ApiRequest::Embeddings(_) => return,
        };
        opts.get_or_insert_with(StreamOptions::default).include_usage = Some(true);
    }

    /// Inserts a system message before the first message (chat only).
    pub fn prepend_system(&mut self, text: String) {
        if let ApiRequest::Chat(r) = self {
            r.messages
                .insert(0, ChatMessage { role: Role::System, content: Some(Value::String(text)), extra: Map::new() });
        }
    }

    /// A cheap estimate of the prompt's size in tokens (see [`super::tokens`]).
    pub fn prompt_tokens_estimate(&self) -> u32 {
        super::tokens::prompt_estimate(self)
    }

    /// Serializes the (edited) request for the upstream.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            ApiRequest::Chat(r) => serde_json::to_vec(r),
            ApiRequest::Completions(r) => serde_json::to_vec(r),
            ApiRequest::Embeddings(r) => serde_json::to_vec(r),
        }
    }
}

fn validate_chat(r: &ChatRequest) -> Result<(), ApiError> {
    require_model(&r.model)?;
    validate_messages(&r.messages)?;
    positive("max_tokens", r.max_tokens)?;
    positive("max_completion_tokens", r.max_completion_tokens)?;
    r.sampling().validate()
}

fn validate_messages(messages: &[ChatMessage]) -> Result<(), ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid_param("messages", "'messages' must be a non-empty array of messages."));
    }
    for (i, m) in messages.iter().enumerate() {
        let ok = match &m.content {
            Some(Value::String(_)) => true,
            Some(Value::Array(parts)) => !parts.is_empty(),
            // Assistant turns that only call tools carry no content.
            None | Some(Value::Null) => {
                m.role == Role::Assistant
                    && (m.extra.contains_key("tool_calls") || m.extra.contains_key("function_call"))
            }
            Some(_) => false,
        };
        if !ok {
            let param = format!("messages[{i}].content");
            return Err(ApiError::invalid_param(
                param.clone(),
                format!("Invalid value for '{param}': expected a string or a non-empty array of content parts."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn err(endpoint: Endpoint, body: &str) -> ApiError {
        ApiRequest::parse(endpoint, body.as_bytes()).expect_err("should fail")
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hi","name":"bob"}],"seed":7,"response_format":{"type":"json_object"},"temperature":0.5}"#;
        let r = ApiRequest::parse(Endpoint::Chat, body.as_bytes()).unwrap();
        let ApiRequest::Chat(c) = &r else { panic!("chat") };
        assert_eq!(c.sampling().temperature, Some(0.5));
        assert!(!c.extra.contains_key("temperature"), "typed fields must not also land in extra");
        assert!(c.extra.contains_key("seed"));
        let out: Value = serde_json::from_slice(&r.to_json().unwrap()).unwrap();
        let orig: Value = serde_json::from_str(body).unwrap();
        assert_eq!(out, orig);
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(
            Endpoint::Chat,
            r#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"bot","content":"b"}]}"#,
        );
        assert_eq!(e.param.as_deref(), Some("messages[1].role"));
        assert!(e.message.contains("bot"), "{}", e.message);
        let e = err(Endpoint::Chat, r#"{"messages":[{"role":"user","content":"a"}]}"#);
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = err(Endpoint::Chat, r#"{"model":"m","messages":[]}"#);
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = err(Endpoint::Chat, r#"{"model":"m","messages":[{"role":"user"}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
        let e = err(Endpoint::Chat, r#"{"model":"m","messages":[{"role":"user","content":"a"}],"temperature":3}"#);
        assert_eq!(e.param.as_deref(), Some("temperature"));
        let e = err(Endpoint::Chat, r#"{"model":"m","messages":[{"role":"user","content":"a"}],"max_tokens":"x"}"#);
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = err(Endpoint::Embeddings, r#"{"model":"m"}"#);
        assert_eq!(e.param.as_deref(), Some("input"));
    }

    #[test]
    fn wrong_types_and_duplicate_keys_name_the_field() {
        let msg = r#""messages":[{"role":"user","content":"a"}]"#;
        for (field, value) in [
            ("temperature", r#""hot""#),
            ("top_p", "[1]"),
            ("n", "1.5"),
            ("presence_penalty", "true"),
            ("frequency_penalty", "{}"),
            ("max_completion_tokens", r#""x""#),
        ] {
            let e = err(Endpoint::Chat, &format!(r#"{{"model":"m",{msg},"{field}":{value}}}"#));
            assert_eq!(e.param.as_deref(), Some(field), "{}", e.message);
            assert_eq!(e.code, Some("invalid_value"), "{}", e.message);
        }
        let e = err(Endpoint::Completions, r#"{"model":"m","prompt":"p","temperature":"hot"}"#);
        assert_eq!(e.param.as_deref(), Some("temperature"), "{}", e.message);
        let e = err(Endpoint::Chat, &format!(r#"{{"model":"m","model":"n",{msg}}}"#));
        assert_eq!(e.param.as_deref(), Some("model"), "{}", e.message);
        assert!(e.message.contains("Duplicate key"), "{}", e.message);
        let e = err(Endpoint::Chat, &format!(r#"{{"model":"m",{msg},"temperature":1,"temperature":1}}"#));
        assert_eq!(e.param.as_deref(), Some("temperature"), "{}", e.message);
        let e = err(Endpoint::Chat, r#"{"model":"m","messages":[{"role":"user","role":"user","content":"a"}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].role"), "{}", e.message);
    }

    #[test]
    fn malformed_json_says_where() {
        let e = err(Endpoint::Chat, "{\"model\": \"m\",\n \"messages\": [}");
        assert_eq!(e.status, 400);
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert_eq!(e.code, Some("invalid_json"));
        let e = err(Endpoint::Chat, "[1,2]");
        assert_eq!(e.code, Some("invalid_json"));
        let e = err(Endpoint::Chat, "");
        assert_eq!(e.code, Some("invalid_json"));
    }

    #[test]
    fn edits_apply_to_the_right_fields() {
        let mut r = ApiRequest::parse(
            Endpoint::Chat,
            br#"{"model":"m","messages":[{"role":"user","content":"hello there"}],"max_completion_tokens":10,"stream":true}"#,
        )
        .unwrap();
        r.set_max_tokens(5);
        r.prepend_system("be brief".into());
        r.request_stream_usage();
        r.set_model("m2".into());
        let v: Value = serde_json::from_slice(&r.to_json().unwrap()).unwrap();
        assert_eq!(v["max_completion_tokens"], 5);
        assert!(v.get("max_tokens").is_none());
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["model"], "m2");
    }
}

#[cfg(test)]
#[path = "request_props.rs"]
mod props;
