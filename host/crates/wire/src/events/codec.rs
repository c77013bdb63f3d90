//! The SSE codec ([WHATWG event stream interpretation]): bytes in any chunking to events, and
//! events back to bytes.
//!
//! Decisions:
//! - **Every input byte belongs to exactly one event** (or to the unterminated tail): an event
//!   is the lines up to and including the blank line that ends it, and keeps those bytes as its
//!   `raw` form. A block that dispatches nothing per the spec (only comments, a stray blank
//!   line, a `data:`-less `event:`) is still an event, with no data, so pass-through loses
//!   nothing. Encoding an event that still has its raw bytes writes them as they came (no
//!   reformatting); any setter drops them and the event is encoded from its fields.
//! - **Comments are kept**: in the raw bytes, and listed by [`SseEvent::comments`] so that a
//!   re-encoded or new event can carry them (keep-alives are comments).
//! - Line ends may be CRLF, LF or CR, mixed. A CR that ends the blank line at the end of a chunk
//!   holds the event back until the next byte shows whether an LF belongs to it, so the events
//!   are the same however the stream is cut.
//! - A UTF-8 BOM at the start of the stream is skipped when parsing and kept in the raw bytes.
//! - Unknown fields are ignored (as the spec says) but stay in the raw bytes.
//! - `id` is the event's own `id` field, not the spec's carried-over "last event ID": the
//!   gateway relays events, it does not reconnect.
//!
//! [WHATWG event stream interpretation]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};

use super::chat::ChatChunk;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One server-sent event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    /// The bytes it was decoded from, while nothing changed it.
    raw: Option<Bytes>,
    event: Option<String>,
    /// The `data` lines joined with LF; `None` without any `data` field.
    data: Option<Bytes>,
    id: Option<String>,
    retry: Option<u64>,
    /// Comment texts (what follows the `:`).
    comments: Vec<Bytes>,
    /// The chat chunk view, parsed on first use (see [`super::ChatEvent`]).
    pub(super) chat: OnceLock<Option<ChatChunk>>,
}

impl PartialEq for SseEvent {
    /// Fields and raw bytes (the lazily parsed view is derived from them).
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
            && self.event == other.event
            && self.data == other.data
            && self.id == other.id
            && self.retry == other.retry
            && self.comments == other.comments
    }
}

impl SseEvent {
    /// A new event carrying `data` (re-encoded as one `data:` line per line of it).
    pub fn from_data(data: impl Into<Bytes>) -> Self {
        SseEvent { data: Some(data.into()), ..Default::default() }
    }

    /// A new comment-only event (`: text`), e.g. a keep-alive.
    pub fn from_comment(text: &str) -> Self {
        SseEvent { comments: vec![Bytes::from(format!(" {text}"))], ..Default::default() }
    }

    /// Sets the event type (`event:`).
    #[must_use]
    pub fn with_event(mut self, name: impl Into<String>) -> Self {
        self.set_event(Some(name.into()));
        self
    }

    /// Sets the event id (`id:`).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.touch();
        self.id = Some(id.into());
        self
    }

    /// The event type, if it has an `event` field.
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The data (its lines joined with LF), if it has a `data` field.
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Comment texts, without their leading `:`.
    pub fn comments(&self) -> impl Iterator<Item = &[u8]> {
        self.comments.iter().map(|c| &c[..])
    }

    /// The bytes it was decoded from, if nothing changed it since.
    pub fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    pub fn set_data(&mut self, data: Option<Bytes>) {
        self.touch();
        self.data = data;
    }

    pub fn set_event(&mut self, name: Option<String>) {
        self.touch();
        self.event = name;
    }

    /// The event changed: it is encoded from its fields from now on.
    fn touch(&mut self) {
        self.raw = None;
        self.chat = OnceLock::new();
    }

    /// Appends the event's wire form to `out`: its raw bytes if unchanged, else its fields
    /// (comments, `event`, `id`, `retry`, `data`, the blank line; unknown fields are gone).
    pub fn encode(&self, out: &mut BytesMut) {
        if let Some(raw) = &self.raw {
            out.extend_from_slice(raw);
            return;
        }
        for c in &self.comments {
            put_line(out, b":", c);
        }
        if let Some(e) = &self.event {
            put_line(out, b"event: ", e.as_bytes());
        }
        if let Some(id) = &self.id {
            put_line(out, b"id: ", id.as_bytes());
        }
        if let Some(r) = self.retry {
            put_line(out, b"retry: ", r.to_string().as_bytes());
        }
        if let Some(data) = &self.data {
            // One `data:` line per line of the data, so the decoder joins them back.
            for line in Lines::new(data) {
                put_line(out, b"data: ", line);
            }
            if data.is_empty() || data.ends_with(b"\n") || data.ends_with(b"\r") {
                put_line(out, b"data: ", b""); // the empty last line `Lines` does not yield
            }
        }
        out.put_u8(b'\n');
    }

    /// Parses one complete event from its raw bytes (which end with a blank line, or are the
    /// last event at the end of the stream).
    fn parse(raw: Bytes, skip_bom: bool) -> Self {
        let mut ev = SseEvent::default();
        let start = if skip_bom && raw.starts_with(BOM) { BOM.len() } else { 0 };
        let mut joined: Option<BytesMut> = None; // only for a second `data` line
        let mut at = start;
        for line in Lines::new(&raw[start..]) {
            let offset = at;
            at += line.len() + line_end_len(&raw, at + line.len());
            if line.is_empty() {
                break;
            }
            let colon = line.iter().position(|b| *b == b':');
            let (name, mut value_at) = match colon {
                Some(0) => {
                    ev.comments.push(raw.slice(offset + 1..offset + line.len()));
                    continue;
                }
                Some(i) => (&line[..i], i + 1),
                None => (line, line.len()),
            };
            if line.get(value_at) == Some(&b' ') {
                value_at += 1;
            }
            let value = &line[value_at.min(line.len())..];
            match name {
                b"data" => match (&mut joined, &ev.data) {
                    (None, None) => ev.data = Some(raw.slice(offset + value_at..offset + line.len())),
                    (None, Some(first)) => {
                        let mut j = BytesMut::with_capacity(first.len() + 1 + value.len());
                        j.extend_from_slice(first);
                        j.put_u8(b'\n');
                        j.extend_from_slice(value);
                        joined = Some(j);
                    }
                    (Some(j), _) => {
                        j.put_u8(b'\n');
                        j.extend_from_slice(value);
                    }
                },
                b"event" => ev.event = Some(String::from_utf8_lossy(value).into_owned()),
                b"id" if !value.contains(&0) => ev.id = Some(String::from_utf8_lossy(value).into_owned()),
                b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                    ev.retry = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                }
                _ => {}
            }
        }
        if let Some(j) = joined {
            ev.data = Some(j.freeze());
        }
        ev.raw = Some(raw);
        ev
    }
}

fn put_line(out: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    out.extend_from_slice(prefix);
    // A line break inside a value would end the line early: drop it.
    if value.iter().any(|b| matches!(b, b'\r' | b'\n')) {
        out.extend(value.iter().filter(|b| !matches!(b, b'\r' | b'\n')));
    } else {
        out.extend_from_slice(value);
    }
    out.put_u8(b'\n');
}

/// Length of the line end at `at` (CRLF 2, CR or LF 1, none 0).
fn line_end_len(buf: &[u8], at: usize) -> usize {
    match (buf.get(at), buf.get(at + 1)) {
        (Some(b'\r'), Some(b'\n')) => 2,
        (Some(b'\r' | b'\n'), _) => 1,
        _ => 0,
    }
}

/// Lines of `buf` without their ends (CRLF, CR, LF); an unterminated last line is yielded too.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Lines { rest: buf }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.iter().position(|b| matches!(b, b'\r' | b'\n')).unwrap_or(self.rest.len());
        let line = &self.rest[..end];
        let skip = end + line_end_len(self.rest, end);
        self.rest = &self.rest[skip..];
        Some(line)
    }
}

/// Turns a byte stream, cut anywhere, into [`SseEvent`]s.
#[derive(Debug)]
pub struct Decoder {
    /// Bytes of the event in progress (complete events are split off).
    buf: BytesMut,
    /// How far `buf` was searched for the event's end, and the search state there.
    scanned: usize,
    /// The search is at the start of a line (so a line end there is the blank line).
    line_start: bool,
    /// The last byte searched was a CR ending a line: an LF right after belongs to it.
    after_cr: bool,
    /// No event was split off yet (the BOM may start this one).
    first: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { buf: BytesMut::new(), scanned: 0, line_start: true, after_cr: false, first: true }
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk of the stream; take the events it completed with [`Decoder::next_event`].
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes held for the event in progress (for a size limit).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete event, if the bytes fed so far hold one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        let end = self.event_end(false)?;
        Some(self.split(end))
    }

    /// At the end of the stream: the last event, if only the end of the stream was missing to
    /// complete it (a blank line ended by a CR), and the bytes of an unterminated event (per
    /// the spec never dispatched; the relay forwards them as they came).
    pub fn finish(&mut self) -> (Option<SseEvent>, Bytes) {
        let last = self.event_end(true).map(|end| self.split(end));
        (last, self.buf.split().freeze())
    }

    fn split(&mut self, end: usize) -> SseEvent {
        let raw = self.buf.split_to(end).freeze();
        let skip_bom = std::mem::replace(&mut self.first, false);
        (self.scanned, self.line_start, self.after_cr) = (0, true, false);
        SseEvent::parse(raw, skip_bom)
    }

    /// Index just past the blank line that ends the event in `buf`, resuming the last search.
    fn event_end(&mut self, at_eof: bool) -> Option<usize> {
        let buf = &self.buf[..];
        let mut i = self.scanned;
        if self.first && i == 0 {
            // A BOM is not part of the first line: a blank line right after it ends an event.
            if buf.len() < BOM.len() && BOM.starts_with(buf) && !at_eof {
                return None; // maybe the start of a BOM
            }
            if buf.starts_with(BOM) {
                i = BOM.len();
            }
        }
        while i < buf.len() {
            let b = buf[i];
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                i += 1;
                continue;
            }
            match b {
                b'\n' | b'\r' if self.line_start => {
                    if b == b'\n' {
                        return Some(i + 1);
                    }
                    return match buf.get(i + 1) {
                        Some(b'\n') => Some(i + 2),
                        Some(_) => Some(i + 1),
                        None if at_eof => Some(i + 1),
                        None => {
                            self.scanned = i; // look again once the next byte is here
                            None
                        }
                    };
                }
                b'\n' => self.line_start = true,
                b'\r' => (self.line_start, self.after_cr) = (true, true),
                _ => {
                    // Skip to the next line end in one search.
                    self.line_start = false;
                    i += buf[i..].iter().position(|b| matches!(b, b'\r' | b'\n')).unwrap_or(buf.len() - i);
                    continue;
                }
            }
            i += 1;
        }
        self.scanned = i;
        None
    }
}
