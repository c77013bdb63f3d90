//! Relaying upstream bodies to the client.
//!
//! Streams (`text/event-stream`) are pumped by a task of their own from the upstream into a
//! short channel that [`RelayBody`] hands to the client: never buffered beyond a few frames,
//! watched for the `usage` event the gateway asked for (if the client did not ask for usage
//! itself, that usage-only event is removed from what it receives), and their output counted.
//! The pump is what watches the stream, since a body the client stopped reading is no longer
//! polled and cannot watch itself:
//!
//! - the client accepted nothing for `client-stall-timeout` (the channel stayed full): the
//!   upstream stream is dropped, freeing its connection slot and flow-control window, and the
//!   request is settled as client-aborted;
//! - the upstream sent nothing for `chunk-idle-timeout`, or the exchange hit `total-timeout`:
//!   the client gets an OpenAI-shaped SSE error event and the stream ends.
//!
//! Dropping the body (the client went away) closes the channel; the pump drops the upstream
//! body, which cancels the upstream request (the connection is closed, or the HTTP/2 stream
//! reset). Every request ends in exactly one call of its [`Completion`].

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::forward::UpstreamBody;
use super::sse::SseScanner;
use super::usage::{Usage, scan_json};
use crate::finisher::Finisher as Completion;

pub use crate::policy::Outcome;

/// Frames between the pump and the client: small, so a full channel means the client stopped
/// reading, not that the gateway is buffering.
const CHANNEL_DEPTH: usize = 4;

/// The watchdogs of one relayed stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamWatch {
    /// The end of the exchange's `total-timeout`.
    pub deadline: tokio::time::Instant,
    /// Longest silence of the upstream between frames.
    pub chunk_idle: Duration,
    /// Longest time the client may accept nothing.
    pub client_stall: Duration,
}

/// Why a relayed stream ended early, as the client's body sees it.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the upstream stream broke: {0}")]
    Upstream(#[from] hyper::Error),
    #[error("the stream was dropped: the client accepted no bytes in time")]
    Dropped,
}

enum Item {
    Data(Frame<Bytes>),
    End,
    Fail(RelayError),
}

/// A streamed upstream body on its way to the client.
pub struct RelayBody {
    rx: mpsc::Receiver<Item>,
    done: bool,
}

impl RelayBody {
    /// Starts pumping `upstream`. `strip_usage_events`: the gateway injected
    /// `stream_options.include_usage` and the client did not ask for it.
    pub fn spawn(upstream: UpstreamBody, strip_usage_events: bool, watch: StreamWatch, completion: Completion) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        #[allow(clippy::disallowed_methods, reason = "connection-scoped: ends with the stream it pumps")]
        tokio::spawn(pump(upstream, SseScanner::new(strip_usage_events), watch, completion, tx));
        RelayBody { rx, done: false }
    }
}

/// How the pump's loop ended.
enum Ending {
    Done,
    Broken(hyper::Error),
    TotalTimeout,
    UpstreamIdle,
    ClientGone,
    ClientStalled,
}

async fn pump(
    upstream: UpstreamBody,
    mut scanner: SseScanner,
    watch: StreamWatch,
    mut completion: Completion,
    tx: mpsc::Sender<Item>,
) {
    let started = Instant::now();
    let mut upstream = Box::pin(upstream);
    let ending = loop {
        let next = tokio::select! {
            biased;
            () = tx.closed() => break Ending::ClientGone,
            () = tokio::time::sleep_until(watch.deadline) => break Ending::TotalTimeout,
            next = tokio::time::timeout(watch.chunk_idle, upstream.frame()) => next,
        };
        let frame = match next {
            Err(_) => break Ending::UpstreamIdle,
            Ok(None) => break Ending::Done,
            Ok(Some(Err(e))) => break Ending::Broken(e),
            Ok(Some(Ok(frame))) => frame,
        };
        let (out, output) = match frame.into_data() {
            Ok(data) => {
                let out = scanner.feed(data);
                let output = scanner.take_output();
                if out.is_empty() {
                    continue; // everything was held back (partial or stripped event): read on
                }
                (Frame::data(out), output)
            }
            Err(trailers) => (trailers, 0),
        };
        if let Err(ending) = deliver(&tx, Item::Data(out), watch.client_stall).await {
            break ending;
        }
        completion.add_output(output);
    };
    let usage = scanner.usage;
    match ending {
        Ending::Done => {
            completion.finish(usage, Outcome::Completed);
            let rest = scanner.flush();
            if !rest.is_empty() && deliver(&tx, Item::Data(Frame::data(rest)), watch.client_stall).await.is_err() {
                return;
            }
            let _ = deliver(&tx, Item::End, watch.client_stall).await;
        }
        Ending::Broken(e) => {
            tracing::warn!(error = %e, "upstream stream broke");
            completion.finish(usage, Outcome::UpstreamError);
            let _ = deliver(&tx, Item::Fail(RelayError::Upstream(e)), watch.client_stall).await;
        }
        Ending::TotalTimeout => {
            drop(upstream); // cancel the upstream before waiting on the client
            cut_short("total_timeout", total_timeout_event(), started, &tx, watch).await;
            completion.finish(usage, Outcome::UpstreamError);
        }
        Ending::UpstreamIdle => {
            drop(upstream);
            cut_short("upstream_idle", idle_event(watch.chunk_idle), started, &tx, watch).await;
            completion.finish(usage, Outcome::UpstreamError);
        }
        Ending::ClientGone => completion.finish(usage, Outcome::ClientAborted),
        Ending::ClientStalled => {
            tracing::warn!(stalled_for = ?watch.client_stall, "client stopped reading; stream dropped");
            metrics::counter!("wasmgate_stream_cutoffs_total", "reason" => "client_stalled").increment(1);
            completion.finish(usage, Outcome::ClientAborted);
            // Closing the channel without `End`: should the client read again, its body fails.
        }
    }
}

/// Ends a stream the gateway cut short with an error event.
async fn cut_short(reason: &'static str, event: Bytes, started: Instant, tx: &mpsc::Sender<Item>, watch: StreamWatch) {
    tracing::warn!(elapsed = ?started.elapsed(), reason, "stream cut short by the gateway");
    metrics::counter!("wasmgate_stream_cutoffs_total", "reason" => reason).increment(1);
    if deliver(tx, Item::Data(Frame::data(event)), watch.client_stall).await.is_ok() {
        let _ = deliver(tx, Item::End, watch.client_stall).await;
    }
}

/// Hands `item` to the client's body, waiting at most `stall` for room.
async fn deliver(tx: &mpsc::Sender<Item>, item: Item, stall: Duration) -> Result<(), Ending> {
    match tokio::time::timeout(stall, tx.reserve()).await {
        Ok(Ok(permit)) => {
            permit.send(item);
            Ok(())
        }
        Ok(Err(_)) => Err(Ending::ClientGone),
        Err(_) => Err(Ending::ClientStalled),
    }
}

/// A terminal error event for a stream that hit the total timeout.
fn total_timeout_event() -> Bytes {
    Bytes::from_static(
        b"data: {\"error\":{\"message\":\"The upstream stream exceeded the gateway's total timeout.\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"upstream_timeout\"}}\n\n",
    )
}

/// A terminal error event for an upstream that went silent mid-stream.
fn idle_event(after: Duration) -> Bytes {
    let message = format!("The upstream sent nothing for {}; the stream was ended.", humantime::format_duration(after));
    let event = serde_json::json!({
        "error": {"message": message, "type": "upstream_error", "param": null, "code": "upstream_timeout"}
    });
    Bytes::from(format!("data: {event}\n\n"))
}

impl Body for RelayBody {
    type Data = Bytes;
    type Error = RelayError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = ready!(self.rx.poll_recv(cx));
        Poll::Ready(match item {
            Some(Item::Data(frame)) => Some(Ok(frame)),
            Some(Item::End) => {
                self.done = true;
                None
            }
            Some(Item::Fail(e)) => {
                self.done = true;
                Some(Err(e))
            }
            None => {
                self.done = true;
                Some(Err(RelayError::Dropped))
            }
        })
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
    mut body: UpstreamBody,
    limit: usize,
) -> Result<(Bytes, Option<Usage>, Option<UpstreamBody>), hyper::Error> {
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
