//! Tests of the filter chain: the usage watch and strip over any cut of a stream (against a
//! model of the generated events, as the relay's pump runs them), and the chain's
//! `Replace`/`End`/`on_end` semantics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::proxy::Usage;
use crate::proxy::events::{Decoder, SseEvent};

/// Runs `pieces` through `chain` as the pump does: events as they complete, the last one and
/// the unterminated tail at the end. Returns what the client receives and the output counted.
fn pump(chain: &mut FilterChain, pieces: &[&[u8]]) -> (Vec<u8>, usize) {
    let mut d = Decoder::new();
    let mut out = BytesMut::new();
    for p in pieces {
        d.feed(p);
        while let Some(ev) = d.next_event() {
            if chain.on_event(ev, &mut out) == Flow::End {
                chain.on_end(StreamEnd::Cut, &mut out);
                return (out.to_vec(), chain.tally.take_output());
            }
        }
    }
    let (last, tail) = d.finish();
    let cut = last.is_some_and(|ev| chain.on_event(ev, &mut out) == Flow::End);
    chain.on_end(if cut { StreamEnd::Cut } else { StreamEnd::Done }, &mut out);
    if !cut {
        out.extend_from_slice(&tail);
    }
    (out.to_vec(), chain.tally.take_output())
}

fn usage_chain(strip: bool) -> FilterChain {
    let mut filters: Vec<Box<dyn ResponseFilter>> = vec![Box::new(UsageWatch)];
    if strip {
        filters.push(Box::new(UsageStrip));
    }
    FilterChain::new(filters)
}

const CHUNK: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n";
const USAGE: &str =
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

#[test]
fn usage_is_read_and_stripped_at_every_cut() {
    let all = format!("{CHUNK}{USAGE}{DONE}");
    let bytes = all.as_bytes();
    for cut in 0..=bytes.len() {
        let mut chain = usage_chain(false);
        let (out, output) = pump(&mut chain, &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(out, bytes, "cut at {cut}");
        assert_eq!(chain.tally.usage.map(|u| u.total_tokens), Some(8), "cut at {cut}");
        assert_eq!(output, 2, "cut at {cut}");
        let mut chain = usage_chain(true);
        let (out, _) = pump(&mut chain, &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(String::from_utf8(out).unwrap(), format!("{CHUNK}{DONE}"), "cut at {cut}");
        assert_eq!(chain.tally.usage.map(|u| u.prompt_tokens), Some(3));
    }
}

#[test]
fn the_realistic_stream_keeps_every_byte_but_the_usage_chunk() {
    let bytes = crate::proxy::events::samples::CHAT_STREAM.as_bytes();
    let usage_at = CHAT_STREAM_USAGE_START;
    let start = std::str::from_utf8(bytes).unwrap().find(usage_at).unwrap();
    let end = start + std::str::from_utf8(&bytes[start..]).unwrap().find("\n\n").unwrap() + 2;
    let expected = [&bytes[..start], &bytes[end..]].concat();
    for cut in 0..=bytes.len() {
        let mut chain = usage_chain(true);
        let (out, output) = pump(&mut chain, &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(out, expected, "cut at {cut}");
        assert_eq!(output, "Hel".len() + "lo é".len() + "f{}".len());
        assert_eq!(chain.tally.usage, Some(Usage { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 }));
    }
}

const CHAT_STREAM_USAGE_START: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],";

#[test]
fn a_json_body_gives_its_usage() {
    let mut chain = usage_chain(true);
    let mut body =
        Bytes::from_static(br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#);
    assert!(!chain.on_body(&mut body));
    assert_eq!(chain.tally.usage.map(|u| u.total_tokens), Some(3));
    let mut chain = usage_chain(false);
    assert!(!chain.on_body(&mut Bytes::from_static(b"<html>bad gateway</html>")));
    assert_eq!(chain.tally.usage, None);
}

/// Ends the stream at the `n`th event with a marker; says how it ended.
struct CutAt {
    n: usize,
    ends: Vec<StreamEnd>,
}

impl ResponseFilter for CutAt {
    fn on_event(&mut self, _: &mut SseEvent, _: &mut Tally) -> EventAction {
        self.n -= 1;
        if self.n == 0 { EventAction::End(vec![SseEvent::from_data("cut")]) } else { EventAction::Pass }
    }

    fn on_end(&mut self, end: StreamEnd, _: &mut Tally) -> Vec<SseEvent> {
        self.ends.push(end);
        vec![SseEvent::from_comment(&format!("{end:?}"))]
    }
}

/// Doubles every event, upper-casing the copy.
struct Twice;

impl ResponseFilter for Twice {
    fn on_event(&mut self, event: &mut SseEvent, _: &mut Tally) -> EventAction {
        let upper = event.data().map(|d| Bytes::from(d.to_ascii_uppercase()));
        let mut copy = event.clone();
        copy.set_data(upper);
        EventAction::Replace(vec![event.clone(), copy])
    }
}

#[test]
fn replacements_and_last_events_go_through_the_later_filters_and_end_stops_the_stream() {
    let mut chain = FilterChain::new(vec![Box::new(CutAt { n: 2, ends: Vec::new() }), Box::new(Twice)]);
    let (out, _) = pump(&mut chain, &[b"data: a\n\ndata: b\n\ndata: c\n\n"]);
    assert_eq!(String::from_utf8(out).unwrap(), "data: a\n\ndata: A\n\ndata: cut\n\ndata: CUT\n\n: Cut\n\n: Cut\n\n");
    let mut chain = FilterChain::new(vec![Box::new(Twice), Box::new(UsageStrip)]);
    let (out, _) = pump(&mut chain, &[USAGE.as_bytes(), b"data: x\n\n"]);
    // The strip sees both copies: it drops the original, not the upper-cased one (no longer usage).
    let upper = USAGE.to_ascii_uppercase().replace("DATA: ", "data: ");
    assert_eq!(String::from_utf8(out).unwrap(), format!("{upper}data: x\n\ndata: X\n\n"));
}

/// One generated stream event, for the model test (rendered with LF or CRLF).
#[derive(Debug, Clone)]
enum Event {
    Content(String),
    UsageOnly(u32, u32),
    UsageWithChoice(u32, u32),
    Done,
    Comment(String),
}

impl Event {
    fn render(&self, crlf: bool, terminated: bool) -> Vec<u8> {
        let usage = |p: u32, c: u32| {
            format!(r#""usage":{{"prompt_tokens":{p},"completion_tokens":{c},"total_tokens":{}}}"#, p.saturating_add(c))
        };
        let line = match self {
            Event::Content(t) => {
                format!(r#"data: {{"choices":[{{"delta":{{"content":{}}}}}]}}"#, serde_json::to_string(t).unwrap())
            }
            Event::UsageOnly(p, c) => format!(r#"data: {{"choices":[],{}}}"#, usage(*p, *c)),
            Event::UsageWithChoice(p, c) => format!(r#"data:{{"choices":[{{"delta":{{}}}}],{}}}"#, usage(*p, *c)),
            Event::Done => "data: [DONE]".to_string(),
            Event::Comment(c) => format!(": {c}"),
        };
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut s = format!("{line}{nl}");
        if terminated {
            s.push_str(nl);
        }
        s.into_bytes()
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            Event::UsageOnly(p, c) | Event::UsageWithChoice(p, c) => {
                Some(Usage { prompt_tokens: *p, completion_tokens: *c, total_tokens: p.saturating_add(*c) })
            }
            _ => None,
        }
    }
}

fn event() -> impl Strategy<Value = Event> {
    let text = proptest::string::string_regex("[a-zA-Z0-9 :{}\\[\\]\"\\\\é\u{1F600}]{0,24}").unwrap();
    prop_oneof![
        4 => text.prop_map(Event::Content),
        2 => (any::<u32>(), any::<u32>()).prop_map(|(p, c)| Event::UsageOnly(p, c)),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(p, c)| Event::UsageWithChoice(p, c)),
        1 => Just(Event::Done),
        1 => proptest::string::string_regex("[a-z -]{0,12}").unwrap().prop_map(Event::Comment),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// However the upstream's bytes are cut, the client receives the stream less the
    /// usage-only events (when stripping), the unterminated tail as it came, and the gateway
    /// reads the last usage of a complete event.
    #[test]
    fn any_cut_gives_the_output_and_usage_of_the_model(
        events in proptest::collection::vec((event(), any::<bool>()), 0..12),
        tail in proptest::option::of((event(), any::<bool>())),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        strip in any::<bool>(),
    ) {
        let mut bytes: Vec<u8> = events.iter().flat_map(|(e, crlf)| e.render(*crlf, true)).collect();
        let mut expected: Vec<u8> = events
            .iter()
            .filter(|(e, _)| !(strip && matches!(e, Event::UsageOnly(..))))
            .flat_map(|(e, crlf)| e.render(*crlf, true))
            .collect();
        if let Some((e, crlf)) = &tail {
            bytes.extend(e.render(*crlf, false));
            expected.extend(e.render(*crlf, false));
        }
        let at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        let split = crate::proxy::events::samples::split_at(&bytes, &at);
        let split: Vec<&[u8]> = split.iter().map(Vec::as_slice).collect();
        let mut chain = usage_chain(strip);
        let (out, _) = pump(&mut chain, &split);
        prop_assert_eq!(out, expected);
        prop_assert_eq!(chain.tally.usage, events.iter().rev().find_map(|(e, _)| e.usage()));
    }
}
