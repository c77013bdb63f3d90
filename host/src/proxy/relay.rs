//! Relaying upstream bodies to the client.
//!
//! Streams (`text/event-stream`) go through [`RelayBody`] frame by frame as they arrive: never
//! buffered, but watched for the `usage` event the gateway asked for, so tokens can be settled.
//! If the client did not ask for usage itself, that usage-only event is removed from what it
//! receives. Dropping the body (the client went away) drops the upstream body, which cancels
//! the upstream request (the connection is closed, or the HTTP/2 stream reset).
//!
//! Every request ends in exactly one call of its [`Completion`]: `Completed`, `UpstreamError`,
//! or `ClientAborted` when the body is dropped unfinished.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::usage::{Usage, scan_json};

pub use crate::policy::Outcome;

/// Called once when a request is over, with the usage the upstream reported.
pub type OnComplete = Box<dyn FnOnce(Option<Usage>, Outcome) + Send>;

/// Guarantees the completion callback runs exactly once, even if the body is dropped.
pub struct Completion {
    on_complete: Option<OnComplete>,
}

impl Completion {
    pub fn new(on_complete: OnComplete) -> Self {
        Completion { on_complete: Some(on_complete) }
    }

    pub fn finish(&mut self, usage: Option<Usage>, outcome: Outcome) {
        if let Some(f) = self.on_complete.take() {
            f(usage, outcome);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.finish(None, Outcome::ClientAborted);
    }
}

/// Splits an SSE byte stream into events and reads usage out of them.
struct SseScanner {
    /// Bytes of the event in progress (complete events are removed).
    pending: BytesMut,
    usage: Option<Usage>,
    /// Remove usage-only events from the output (the gateway asked for them, not the client).
    strip_usage_events: bool,
}

impl SseScanner {
    /// Feeds one chunk; returns what to send to the client now.
    fn feed(&mut self, chunk: Bytes) -> Bytes {
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

    /// Records usage from an event; true if it is a usage-only event.
    fn inspect(&mut self, event: &[u8]) -> bool {
        if memchr_usage(event).is_none() {
            return false;
        }
        let mut usage_only = false;
        for line in event.split(|b| *b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            if let Some(scan) = scan_json(data.trim_ascii()) {
                if scan.usage.is_some() {
                    self.usage = scan.usage;
                }
                usage_only |= scan.usage_only;
            }
        }
        usage_only
    }

    /// Whatever is left at the end of the stream (an unterminated last event).
    fn flush(&mut self) -> Bytes {
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

fn memchr_usage(event: &[u8]) -> Option<usize> {
    event.windows(7).position(|w| w == b"\"usage\"")
}

pin_project_lite::pin_project! {
    /// A streamed upstream body on its way to the client.
    pub struct RelayBody {
        #[pin]
        inner: Incoming,
        scanner: SseScanner,
        #[pin]
        deadline: Sleep,
        completion: Completion,
        done: bool,
        started: Instant,
    }
}

impl RelayBody {
    /// `strip_usage_events`: the gateway injected `stream_options.include_usage` and the
    /// client did not ask for it. `deadline`: the total timeout of the exchange.
    pub fn new(
        inner: Incoming,
        strip_usage_events: bool,
        deadline: tokio::time::Instant,
        completion: Completion,
    ) -> Self {
        RelayBody {
            inner,
            scanner: SseScanner { pending: BytesMut::new(), usage: None, strip_usage_events },
            deadline: tokio::time::sleep_until(deadline),
            completion,
            done: false,
            started: Instant::now(),
        }
    }
}

/// A terminal error event for a stream cut short by the gateway.
fn timeout_event() -> Bytes {
    Bytes::from_static(
        b"data: {\"error\":{\"message\":\"The upstream stream exceeded the gateway's total timeout.\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"upstream_timeout\"}}\n\n",
    )
}

impl Body for RelayBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        loop {
            if this.deadline.as_mut().poll(cx).is_ready() {
                *this.done = true;
                tracing::warn!(elapsed = ?this.started.elapsed(), "stream hit the total timeout");
                this.completion.finish(this.scanner.usage, Outcome::UpstreamError);
                return Poll::Ready(Some(Ok(Frame::data(timeout_event()))));
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.scanner.feed(data);
                        if out.has_remaining() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                        // Everything was held back (partial or stripped event): read on.
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))), // trailers
                },
                Some(Err(e)) => {
                    *this.done = true;
                    tracing::warn!(error = %e, "upstream stream broke");
                    this.completion.finish(this.scanner.usage, Outcome::UpstreamError);
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    *this.done = true;
                    this.completion.finish(this.scanner.usage, Outcome::Completed);
                    let rest = this.scanner.flush();
                    return Poll::Ready(if rest.is_empty() { None } else { Some(Ok(Frame::data(rest))) });
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Reads a whole non-streamed body (up to `limit` bytes) and the usage in it.
/// Returns the bytes read so far and `None` usage if the body is larger than `limit`, plus the
/// rest of the body to stream on.
pub async fn collect_with_usage(
    mut body: Incoming,
    limit: usize,
) -> Result<(Bytes, Option<Usage>, Option<Incoming>), hyper::Error> {
    use http_body_util::BodyExt;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > limit {
                return Ok((buf.freeze(), None, Some(body)));
            }
        }
    }
    let bytes = buf.freeze();
    let usage = scan_json(&bytes).and_then(|s| s.usage);
    Ok((bytes, usage, None))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CHUNK: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n";
    const USAGE: &str =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    fn run(strip: bool, pieces: &[&[u8]]) -> (Vec<u8>, Option<Usage>) {
        let mut s = SseScanner { pending: BytesMut::new(), usage: None, strip_usage_events: strip };
        let mut out = Vec::new();
        for p in pieces {
            out.extend_from_slice(&s.feed(Bytes::copy_from_slice(p)));
        }
        out.extend_from_slice(&s.flush());
        (out, s.usage)
    }

    #[test]
    fn usage_is_read_across_chunk_boundaries() {
        let all = format!("{CHUNK}{USAGE}{DONE}");
        let bytes = all.as_bytes();
        for cut in 1..bytes.len() {
            let (out, usage) = run(false, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(out, bytes);
            assert_eq!(usage.map(|u| u.total_tokens), Some(8), "cut at {cut}");
            let (out, usage) = run(true, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{CHUNK}{DONE}"), "cut at {cut}");
            assert_eq!(usage.map(|u| u.prompt_tokens), Some(3));
        }
    }

    #[test]
    fn crlf_events_are_split() {
        let (out, usage) = run(true, &[USAGE.replace("\n\n", "\r\n\r\n").as_bytes(), b"data: [DONE]\r\n\r\n"]);
        assert_eq!(out, b"data: [DONE]\r\n\r\n");
        assert_eq!(usage.map(|u| u.completion_tokens), Some(5));
    }
}

#[cfg(test)]
#[path = "relay_props.rs"]
mod props;
