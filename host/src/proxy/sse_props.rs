//! Property tests of [`SseScanner`]: however the upstream's bytes are cut into frames, the
//! client receives the same bytes and the gateway reads the same usage as from the whole
//! stream, and both match a model of the generated events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::*;

/// One generated SSE event (rendered with LF or CRLF line ends).
#[derive(Debug, Clone)]
enum Event {
    /// A content delta; `null_usage` adds `"usage":null` as OpenAI does when usage is on.
    Content {
        text: String,
        null_usage: bool,
    },
    /// The usage-only last chunk (`"choices":[]`): stripped when the gateway asked for it.
    UsageOnly {
        prompt: u32,
        completion: u32,
    },
    /// Usage next to a choice: recorded, never stripped.
    UsageWithChoice {
        prompt: u32,
        completion: u32,
    },
    Done,
    /// `: keep-alive` style comment.
    Comment(String),
    /// `event:` / `id:` lines before a data line.
    Named {
        name: String,
        id: u32,
        text: String,
    },
}

impl Event {
    fn lines(&self) -> Vec<String> {
        let content = |t: &str| serde_json::to_string(t).unwrap();
        let usage = |p: u32, c: u32| {
            format!(r#""usage":{{"prompt_tokens":{p},"completion_tokens":{c},"total_tokens":{}}}"#, p.saturating_add(c))
        };
        match self {
            Event::Content { text, null_usage } => {
                let u = if *null_usage { r#","usage":null"# } else { "" };
                vec![format!(r#"data: {{"choices":[{{"delta":{{"content":{}}}}}]{u}}}"#, content(text))]
            }
            Event::UsageOnly { prompt, completion } => {
                vec![format!(r#"data: {{"choices":[],{}}}"#, usage(*prompt, *completion))]
            }
            Event::UsageWithChoice { prompt, completion } => {
                vec![format!(r#"data:{{"choices":[{{"delta":{{}}}}],{}}}"#, usage(*prompt, *completion))]
            }
            Event::Done => vec!["data: [DONE]".to_string()],
            Event::Comment(c) => vec![format!(": {c}")],
            Event::Named { name, id, text } => vec![
                format!("event: {name}"),
                format!("id: {id}"),
                format!(r#"data: {{"choices":[{{"text":{}}}]}}"#, content(text)),
            ],
        }
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            Event::UsageOnly { prompt, completion } | Event::UsageWithChoice { prompt, completion } => Some(Usage {
                prompt_tokens: *prompt,
                completion_tokens: *completion,
                total_tokens: prompt.saturating_add(*completion),
            }),
            _ => None,
        }
    }
}

/// Text without line breaks (SSE comments cannot hold them; JSON strings escape them anyway).
fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 :{}\\[\\]\"\\\\é\u{1F600}]{0,24}").unwrap()
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (text(), any::<bool>()).prop_map(|(text, null_usage)| Event::Content { text, null_usage }),
        2 => (any::<u32>(), any::<u32>()).prop_map(|(prompt, completion)| Event::UsageOnly { prompt, completion }),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(prompt, completion)| Event::UsageWithChoice { prompt, completion }),
        1 => Just(Event::Done),
        1 => proptest::string::string_regex("[a-z -]{0,12}").unwrap().prop_map(Event::Comment),
        1 => ("[a-z]{1,8}", any::<u32>(), text()).prop_map(|(name, id, text)| Event::Named { name, id, text }),
    ]
}

/// A stream: events (each with its own line end), and maybe an unterminated last event.
#[derive(Debug, Clone)]
struct Stream {
    events: Vec<(Event, bool)>,
    tail: Option<(Event, bool)>,
}

fn render(e: &Event, crlf: bool, terminated: bool) -> Vec<u8> {
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut s: String = e.lines().iter().map(|l| format!("{l}{nl}")).collect();
    if terminated {
        s.push_str(nl);
    }
    s.into_bytes()
}

impl Stream {
    fn bytes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.events.iter().flat_map(|(e, crlf)| render(e, *crlf, true)).collect();
        if let Some((e, crlf)) = &self.tail {
            out.extend(render(e, *crlf, false));
        }
        out
    }

    /// What the client must receive: everything, less the usage-only events when stripping.
    /// The unterminated tail is passed on as is (it is never a complete event).
    fn expected(&self, strip: bool) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .events
            .iter()
            .filter(|(e, _)| !(strip && matches!(e, Event::UsageOnly { .. })))
            .flat_map(|(e, crlf)| render(e, *crlf, true))
            .collect();
        if let Some((e, crlf)) = &self.tail {
            out.extend(render(e, *crlf, false));
        }
        out
    }

    /// The last usage of a complete event.
    fn expected_usage(&self) -> Option<Usage> {
        self.events.iter().rev().find_map(|(e, _)| e.usage())
    }
}

fn stream() -> impl Strategy<Value = Stream> {
    (proptest::collection::vec((event(), any::<bool>()), 0..12), proptest::option::of((event(), any::<bool>())))
        .prop_map(|(events, tail)| Stream { events, tail })
}

/// Cuts `bytes` at the given points (indexes into its length, any order, repeats allowed).
fn pieces(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for a in at {
        out.push(bytes[prev..a].to_vec());
        prev = a;
    }
    out.push(bytes[prev..].to_vec());
    out
}

fn scan(strip: bool, pieces: &[Vec<u8>]) -> (Vec<u8>, Option<Usage>) {
    let mut s = SseScanner::new(strip);
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(&s.feed(Bytes::copy_from_slice(p)));
    }
    out.extend_from_slice(&s.flush());
    (out, s.usage)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_split_of_a_stream_gives_the_output_and_usage_of_the_model(
        s in stream(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        strip in any::<bool>(),
    ) {
        let bytes = s.bytes();
        let whole = scan(strip, std::slice::from_ref(&bytes));
        prop_assert_eq!(&whole.0, &s.expected(strip));
        prop_assert_eq!(whole.1, s.expected_usage());
        let split = scan(strip, &pieces(&bytes, &cuts));
        prop_assert_eq!(&split.0, &whole.0);
        prop_assert_eq!(split.1, whole.1);
        // The worst case for a scanner: one byte per frame.
        let bytewise: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
        prop_assert_eq!(scan(strip, &bytewise), whole);
    }

    /// Arbitrary bytes from SSE's alphabet (stray CRs, blank lines of both kinds, usage-like
    /// JSON cut anywhere): the scanner never panics and any split equals the whole.
    #[test]
    fn any_split_of_noise_equals_the_whole(
        tokens in proptest::collection::vec(prop_oneof![
            Just(b"\n".to_vec()), Just(b"\r\n".to_vec()), Just(b"\r".to_vec()), Just(b"data:".to_vec()),
            Just(b"data: ".to_vec()), Just(br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#.to_vec()),
            Just(br#"{"choices":[{}],"usage":{"prompt_tokens":4}}"#.to_vec()), Just(b"\"usage\"".to_vec()),
            Just(b": c".to_vec()), proptest::collection::vec(any::<u8>(), 0..6),
        ], 0..40),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        strip in any::<bool>(),
    ) {
        let bytes = tokens.concat();
        let whole = scan(strip, std::slice::from_ref(&bytes));
        if !strip {
            prop_assert_eq!(&whole.0, &bytes, "pass-through must not change a byte");
        }
        prop_assert_eq!(scan(strip, &pieces(&bytes, &cuts)), whole);
    }
}
