//! Tests of the SSE codec: the spec's parsing rules, byte-exact pass-through, and that any cut
//! of a stream into chunks (every byte position; random cuts by proptest) gives the same
//! events and the same bytes as the whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::BytesMut;
use proptest::prelude::*;

use super::{ChatEvent, Decoder, SseEvent};

/// Decodes `pieces` as one stream: the events, and the unterminated tail.
fn decode(pieces: &[&[u8]]) -> (Vec<SseEvent>, Vec<u8>) {
    let mut d = Decoder::new();
    let mut events = Vec::new();
    for p in pieces {
        d.feed(p);
        events.extend(std::iter::from_fn(|| d.next_event()));
    }
    let (last, tail) = d.finish();
    events.extend(last);
    (events, tail.to_vec())
}

fn encode(events: &[SseEvent]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for e in events {
        e.encode(&mut out);
    }
    out.to_vec()
}

pub(crate) use super::samples::CHAT_STREAM;

#[test]
fn fields_follow_the_spec() {
    let stream = "\u{FEFF}event: add\r\nid: 7\rretry: 1500\ndata: a\ndata:b\ndata:  c\nunknown: x\nnocolon\n: hi\n\n";
    let (events, tail) = decode(&[stream.as_bytes()]);
    assert!(tail.is_empty());
    let [e] = &events[..] else { panic!("{events:?}") };
    assert_eq!(e.event(), Some("add"));
    assert_eq!(e.id(), Some("7"));
    assert_eq!(e.retry(), Some(1500));
    assert_eq!(e.data(), Some(&b"a\nb\n c"[..]));
    assert_eq!(e.comments().collect::<Vec<_>>(), vec![&b" hi"[..]]);
    assert_eq!(e.raw().unwrap(), stream.as_bytes(), "the BOM and unknown fields stay in the raw bytes");
}

#[test]
fn invalid_retry_and_nul_ids_are_ignored_and_blank_blocks_are_events() {
    let (events, _) = decode(&[b"retry: 1x\nid: a\0b\ndata\n\n\n: only a comment\n\n"]);
    assert_eq!(events.len(), 3);
    assert_eq!((events[0].retry(), events[0].id(), events[0].data()), (None, None, Some(&b""[..])));
    assert_eq!(events[1].raw().unwrap(), &b"\n"[..]);
    assert_eq!(events[1].data(), None);
    assert_eq!(events[2].chat(), ChatEvent::Other);
}

#[test]
fn a_bom_before_a_blank_line_and_a_cr_at_the_end_of_the_stream() {
    let (events, tail) = decode(&[b"\xEF\xBB", b"\xBF\ndata: x\r\r"]);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].data(), Some(&b"x"[..]));
    assert!(tail.is_empty());
    let (events, tail) = decode(&[b"data: x\n\ndata: unterminated\n"]);
    assert_eq!(events.len(), 1);
    assert_eq!(tail, b"data: unterminated\n");
}

#[test]
fn unchanged_events_encode_to_their_bytes_and_changed_ones_to_their_fields() {
    let (mut events, _) = decode(&[b"data:x\r\n: c\r\nfoo: bar\r\n\r\n"]);
    assert_eq!(encode(&events), b"data:x\r\n: c\r\nfoo: bar\r\n\r\n");
    events[0].set_data(Some("line 1\nline 2".into()));
    assert_eq!(encode(&events), b": c\ndata: line 1\ndata: line 2\n\n");
    let new = SseEvent::from_data("").with_event("ping").with_id("3");
    assert_eq!(encode(&[new]), b"event: ping\nid: 3\ndata: \n\n");
    assert_eq!(encode(&[SseEvent::from_comment("keep-alive")]), b": keep-alive\n\n");
}

#[test]
fn re_encoded_events_decode_to_the_same_fields() {
    for data in ["", "a", "a\n", "\n", "a\nb", " leading space", "{\"k\":1}"] {
        let ev = SseEvent::from_data(data.to_string()).with_event("e\nvil").with_id("i");
        let (back, tail) = decode(&[&encode(std::slice::from_ref(&ev))]);
        assert!(tail.is_empty());
        let [b] = &back[..] else { panic!("{data:?}: {back:?}") };
        assert_eq!(b.data(), Some(data.as_bytes()), "{data:?}");
        assert_eq!(b.event(), Some("evil"), "a line break cannot end the field early");
        assert_eq!(b.id(), Some("i"));
    }
}

#[test]
fn every_cut_of_a_chat_stream_gives_the_same_events_and_bytes() {
    let bytes = CHAT_STREAM.as_bytes();
    let (whole, tail) = decode(&[bytes]);
    assert!(tail.is_empty());
    assert_eq!(whole.len(), 8);
    assert_eq!(encode(&whole), bytes);
    for cut in 0..=bytes.len() {
        let (events, tail) = decode(&[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(events, whole, "cut at {cut}");
        assert!(tail.is_empty());
        assert_eq!(encode(&events), bytes, "cut at {cut}");
    }
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode(&bytewise).0, whole);
}

/// Cuts `bytes` at the given points (indexes into its length, any order, repeats allowed).
pub(crate) fn pieces(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    super::samples::split_at(bytes, &at)
}

/// One line of a generated stream, and its line end.
fn line() -> impl Strategy<Value = String> {
    let value = proptest::string::string_regex("[a-zA-Z0-9 :{}\"é\u{1F600}]{0,12}").unwrap();
    let field = prop_oneof![Just("data"), Just("event"), Just("id"), Just("retry"), Just(""), Just("x")];
    let end = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    (field, value, end, any::<bool>()).prop_map(|(f, v, e, blank)| {
        let line = if f.is_empty() { format!(":{v}") } else { format!("{f}:{v}") };
        if blank { format!("{line}{e}{e}") } else { format!("{line}{e}") }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any stream of SSE lines with any line ends, cut anywhere: the events (fields and raw
    /// bytes) and the re-encoded bytes are those of the whole, and nothing is lost.
    #[test]
    fn any_cut_of_a_stream_gives_the_events_of_the_whole(
        lines in proptest::collection::vec(line(), 0..24),
        bom in any::<bool>(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut bytes = if bom { "\u{FEFF}".as_bytes().to_vec() } else { Vec::new() };
        bytes.extend(lines.concat().into_bytes());
        let (whole, tail) = decode(&[&bytes]);
        let mut all = encode(&whole);
        all.extend(&tail);
        prop_assert_eq!(&all, &bytes, "pass-through must not change a byte");
        let split = pieces(&bytes, &cuts);
        let split: Vec<&[u8]> = split.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(decode(&split), (whole.clone(), tail.clone()));
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(decode(&bytewise), (whole, tail));
    }

    /// Arbitrary bytes: never a panic, and the whole still comes out unchanged.
    #[test]
    fn any_bytes_pass_through_unchanged(
        bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), any::<u8>()], 0..200),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let split = pieces(&bytes, &cuts);
        let split: Vec<&[u8]> = split.iter().map(Vec::as_slice).collect();
        let (events, tail) = decode(&split);
        let mut all = encode(&events);
        all.extend(&tail);
        prop_assert_eq!(all, bytes);
    }
}
