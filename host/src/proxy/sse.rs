//! Splitting an upstream SSE stream into events, reading the `usage` event the gateway asked
//! for, and counting the output text each event carries (for settling a stream that ends
//! without usage).

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;

use super::usage::Usage;

/// What one stream chunk says (unknown fields ignored).
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
    /// Bytes of model output in the chunk: content, refusals, reasoning, tool-call names and
    /// arguments.
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

/// Splits an SSE byte stream into events, reads usage out of them and counts their output.
pub(crate) struct SseScanner {
    /// Bytes of the event in progress (complete events are removed).
    pending: BytesMut,
    pub usage: Option<Usage>,
    /// Remove usage-only events from the output (the gateway asked for them, not the client).
    strip_usage_events: bool,
    /// Output bytes of the events scanned since the last [`SseScanner::take_output`].
    output: usize,
}

impl SseScanner {
    pub fn new(strip_usage_events: bool) -> Self {
        SseScanner { pending: BytesMut::new(), usage: None, strip_usage_events, output: 0 }
    }

    /// Feeds one chunk; returns what to send to the client now.
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if !self.strip_usage_events {
            // Pass-through: forward the chunk as is, scan a copy for complete events.
            self.pending.extend_from_slice(&chunk);
            while let Some(end) = event_end(&self.pending) {
                let event = self.pending.split_to(end);
                self.inspect(&event);
            }
            return chunk;
        }
        // Filtering: hold back an incomplete event until it is complete.
        self.pending.extend_from_slice(&chunk);
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending) {
            let event = self.pending.split_to(end);
            if !self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Output bytes counted since the last call.
    pub fn take_output(&mut self) -> usize {
        std::mem::take(&mut self.output)
    }

    /// Records usage and output from an event; true if it is a usage-only event.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let mut usage_only = false;
        for line in event.split(|b| *b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii();
            if data.first() != Some(&b'{') {
                continue; // `[DONE]` and the like
            }
            let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(data) else {
                continue;
            };
            self.output += chunk.output_bytes();
            if chunk.usage.is_some() {
                self.usage = chunk.usage;
                usage_only |= matches!(&chunk.choices, Some(c) if c.is_empty());
            }
        }
        usage_only
    }

    /// Whatever is left at the end of the stream (an unterminated last event).
    pub fn flush(&mut self) -> Bytes {
        if self.strip_usage_events { self.pending.split().freeze() } else { Bytes::new() }
    }
}

/// Index just past the first blank line (`\n\n` or `\r\n\r\n`) in `buf`.
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CHUNK: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n";
    const USAGE: &str =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    fn run(strip: bool, pieces: &[&[u8]]) -> (Vec<u8>, Option<Usage>, usize) {
        let mut s = SseScanner::new(strip);
        let mut out = Vec::new();
        let mut output = 0;
        for p in pieces {
            out.extend_from_slice(&s.feed(Bytes::copy_from_slice(p)));
            output += s.take_output();
        }
        out.extend_from_slice(&s.flush());
        (out, s.usage, output)
    }

    #[test]
    fn usage_is_read_across_chunk_boundaries() {
        let all = format!("{CHUNK}{USAGE}{DONE}");
        let bytes = all.as_bytes();
        for cut in 1..bytes.len() {
            let (out, usage, output) = run(false, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(out, bytes);
            assert_eq!(usage.map(|u| u.total_tokens), Some(8), "cut at {cut}");
            assert_eq!(output, 2, "cut at {cut}");
            let (out, usage, _) = run(true, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{CHUNK}{DONE}"), "cut at {cut}");
            assert_eq!(usage.map(|u| u.prompt_tokens), Some(3));
        }
    }

    #[test]
    fn crlf_events_are_split() {
        let (out, usage, _) = run(true, &[USAGE.replace("\n\n", "\r\n\r\n").as_bytes(), b"data: [DONE]\r\n\r\n"]);
        assert_eq!(out, b"data: [DONE]\r\n\r\n");
        assert_eq!(usage.map(|u| u.completion_tokens), Some(5));
    }

    #[test]
    fn output_counts_content_tool_arguments_refusals_and_legacy_text() {
        let events = [
            r#"data: {"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            r#"data: {"choices":[{"delta":{"content":"caf\u00e9 "}}]}"#, // 6 bytes unescaped
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"lookup","arguments":"{\"city\":"}}]}}]}"#,
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}"#,
            r#"data: {"choices":[{"delta":{"refusal":"no"}}]}"#,
            r#"data: {"choices":[{"text":"legacy","index":0}]}"#,
            r#"data: {"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            "data: [DONE]",
        ];
        let stream: String = events.iter().map(|e| format!("{e}\n\n")).collect();
        let bytes = stream.as_bytes();
        let expected = 6 + "lookup".len() + "{\"city\":".len() + "\"Paris\"}".len() + 2 + 6;
        for cut in (1..bytes.len()).step_by(7) {
            let (_, usage, output) = run(false, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(output, expected, "cut at {cut}");
            assert!(usage.is_none());
        }
    }
}

#[cfg(test)]
#[path = "sse_props.rs"]
mod props;
