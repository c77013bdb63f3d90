//! The typed view of an OpenAI chat/completions (and legacy completions) stream event:
//! `[DONE]`, or a JSON chunk whose usage and output size are parsed once, on first use, and
//! shared by every filter that asks.

use std::borrow::Cow;

use serde::Deserialize;

use super::SseEvent;
use crate::Usage;

/// What an OpenAI stream event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatEvent<'a> {
    /// `data: [DONE]`, the end of the stream.
    Done,
    /// A JSON chunk.
    Chunk(&'a ChatChunk),
    /// Anything else: no data, data that is not a JSON object (or not one we can read), a
    /// comment.
    Other,
}

/// What the gateway reads out of a chunk (the chunk itself stays as it came).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChatChunk {
    /// Its `usage`, if not absent or null.
    pub usage: Option<Usage>,
    /// Bytes of model output it carries: content, refusals, reasoning, tool-call names and
    /// arguments, legacy `text` (unescaped).
    pub output_bytes: usize,
    /// A usage-only chunk (`"choices":[]` with usage): the one `include_usage` adds last.
    pub usage_only: bool,
}

impl SseEvent {
    /// This event as an OpenAI stream event. The JSON is parsed on the first call only.
    pub fn chat(&self) -> ChatEvent<'_> {
        let Some(data) = self.data() else {
            return ChatEvent::Other;
        };
        let data = data.trim_ascii();
        match data.first() {
            Some(b'{') => match self.chat.get_or_init(|| parse(data)) {
                Some(chunk) => ChatEvent::Chunk(chunk),
                None => ChatEvent::Other,
            },
            _ if data == b"[DONE]" => ChatEvent::Done,
            _ => ChatEvent::Other,
        }
    }
}

fn parse(data: &[u8]) -> Option<ChatChunk> {
    let chunk = serde_json::from_slice::<Chunk<'_>>(data).ok()?;
    Some(ChatChunk {
        usage: chunk.usage,
        output_bytes: chunk.output_bytes(),
        usage_only: chunk.usage.is_some() && matches!(&chunk.choices, Some(c) if c.is_empty()),
    })
}

/// What one stream chunk says (unknown fields ignored; strings borrowed unless escaped).
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    /// Legacy completions stream `text`.
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(default, borrow)]
    function_call: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

fn len(s: &Option<Cow<'_, str>>) -> usize {
    s.as_ref().map_or(0, |s| s.len())
}

impl Chunk<'_> {
    fn output_bytes(&self) -> usize {
        let function = |f: &Option<Function<'_>>| f.as_ref().map_or(0, |f| len(&f.name) + len(&f.arguments));
        self.choices.iter().flatten().fold(0, |n, c| {
            let delta = c.delta.as_ref().map_or(0, |d| {
                len(&d.content)
                    + len(&d.refusal)
                    + len(&d.reasoning_content)
                    + d.tool_calls.iter().flatten().map(|t| function(&t.function)).sum::<usize>()
                    + function(&d.function_call)
            });
            n + delta + len(&c.text)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chunk(data: &str) -> Option<ChatChunk> {
        match SseEvent::from_data(data.to_string()).chat() {
            ChatEvent::Chunk(c) => Some(*c),
            _ => None,
        }
    }

    #[test]
    fn output_counts_content_tool_arguments_refusals_and_legacy_text() {
        let cases = [
            (r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#, 0),
            (r#"{"choices":[{"delta":{"content":"caf\u00e9 "}}]}"#, 6),
            (
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"lookup","arguments":"{\"city\":"}}]}}]}"#,
                "lookup".len() + "{\"city\":".len(),
            ),
            (r#"{"choices":[{"delta":{"refusal":"no"}}]}"#, 2),
            (r#"{"choices":[{"text":"legacy","index":0}]}"#, 6),
            (r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#, 0),
        ];
        for (data, n) in cases {
            assert_eq!(chunk(data).unwrap().output_bytes, n, "{data}");
        }
    }

    #[test]
    fn usage_only_needs_usage_and_empty_choices() {
        let u = r#""usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}"#;
        let only = chunk(&format!(r#"{{"choices":[],{u}}}"#)).unwrap();
        assert!(only.usage_only);
        assert_eq!(only.usage.map(|u| u.total_tokens), Some(8));
        assert!(!chunk(&format!(r#"{{"choices":[{{"delta":{{}}}}],{u}}}"#)).unwrap().usage_only);
        assert!(!chunk(r#"{"choices":[],"usage":null}"#).unwrap().usage_only);
    }

    #[test]
    fn done_and_others() {
        assert_eq!(SseEvent::from_data(" [DONE] ").chat(), ChatEvent::Done);
        assert_eq!(SseEvent::from_data("{not json").chat(), ChatEvent::Other);
        assert_eq!(SseEvent::from_comment("ping").chat(), ChatEvent::Other);
        assert_eq!(SseEvent::from_data("[1]").chat(), ChatEvent::Other);
    }
}
