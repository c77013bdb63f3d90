//! The gateway's token estimator: about 4 bytes of text per token, for prompts (what a token
//! quota reserves at admission) and for streamed output (what an aborted stream is charged when
//! the upstream never reported usage). One estimator for both, so a reservation and the charge
//! that settles it are in the same unit.
//!
//! The prompt estimate counts every string the model will read: message text and names, tool
//! calls and their arguments, and every string and object key of the other fields (`tools` and
//! their JSON schemas, `response_format`, `functions`, ...). Counting only message text let a
//! request carry a large schema past the quota for free.

use serde_json::{Map, Value};

use super::request::{ApiRequest, ChatMessage};

/// Bytes of text per estimated token.
const BYTES_PER_TOKEN: usize = 4;
/// Per-message overhead (role and separators), in bytes.
const MESSAGE_OVERHEAD: usize = 4;
/// A number inside a prompt (a token id in a token array), in bytes.
const NUMBER_BYTES: usize = 4;

/// Tokens for `bytes` bytes of text, rounded up.
pub fn tokens_for_bytes(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX)
}

/// The prompt estimate of a request: at least 1.
pub fn prompt_estimate(req: &ApiRequest) -> u32 {
    let bytes = match req {
        ApiRequest::Chat(r) => r.messages.iter().map(message_bytes).sum::<usize>() + fields_bytes(&r.extra),
        ApiRequest::Completions(r) => r.prompt.as_ref().map_or(0, prompt_bytes) + fields_bytes(&r.extra),
        ApiRequest::Embeddings(r) => r.input.as_ref().map_or(0, prompt_bytes) + fields_bytes(&r.extra),
    };
    tokens_for_bytes(bytes).max(1)
}

fn message_bytes(m: &ChatMessage) -> usize {
    MESSAGE_OVERHEAD + m.content.as_ref().map_or(0, content_bytes) + fields_bytes(&m.extra)
}

/// Message content: a string, or parts of which only the text counts (an image part's URL,
/// often a base64 data URL, is not text the model reads as tokens).
fn content_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(parts) => parts.iter().map(content_bytes).sum(),
        Value::Object(o) => o.get("text").map_or(0, content_bytes),
        _ => 0,
    }
}

/// A completions prompt or embeddings input: strings, or token ids.
fn prompt_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(prompt_bytes).sum(),
        Value::Number(_) => NUMBER_BYTES,
        _ => 0,
    }
}

/// Every other field: all strings and object keys, at any depth (tools, schemas, names,
/// tool-call arguments). Field names at the top level are the API's own and do not count.
fn fields_bytes(fields: &Map<String, Value>) -> usize {
    fields.values().map(all_strings).sum()
}

fn all_strings(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(all_strings).sum(),
        Value::Object(o) => o.iter().map(|(k, v)| k.len() + all_strings(v)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::request::Endpoint;

    fn estimate(body: &str) -> u32 {
        let endpoint = if body.contains("\"messages\"") { Endpoint::Chat } else { Endpoint::Completions };
        prompt_estimate(&ApiRequest::parse(endpoint, body.as_bytes()).unwrap())
    }

    #[test]
    fn message_text_is_four_bytes_a_token() {
        // 4 overhead + 11 bytes = 15 bytes → 4 tokens.
        assert_eq!(estimate(r#"{"model":"m","messages":[{"role":"user","content":"Hello there"}]}"#), 4);
        assert_eq!(tokens_for_bytes(0), 0);
        assert_eq!(tokens_for_bytes(1), 1);
        assert_eq!(tokens_for_bytes(8), 2);
        assert_eq!(estimate(r#"{"model":"m","prompt":[1,2,3,4]}"#), 4);
    }

    #[test]
    fn tools_and_schemas_count() {
        let plain = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let description = "d".repeat(4000);
        let with_tools = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"tools":[{{"type":"function","function":{{"name":"lookup","description":"{description}","parameters":{{"type":"object","properties":{{"city":{{"type":"string"}}}}}}}}}}],"response_format":{{"type":"json_schema"}}}}"#
        );
        let (a, b) = (estimate(plain), estimate(&with_tools));
        assert!(b >= a + 1000, "tools must raise the estimate: {a} → {b}");
    }

    #[test]
    fn tool_call_arguments_count_but_image_urls_do_not() {
        let args = "x".repeat(400);
        let call = format!(
            r#"{{"model":"m","messages":[{{"role":"assistant","tool_calls":[{{"id":"c","type":"function","function":{{"name":"f","arguments":"{args}"}}}}]}},{{"role":"user","content":"ok"}}]}}"#
        );
        assert!(estimate(&call) >= 100);
        let image = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"text","text":"look"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{}"}}}}]}}]}}"#,
            "A".repeat(40_000)
        );
        assert!(estimate(&image) < 10, "an image's data URL is not prompt text");
    }
}
