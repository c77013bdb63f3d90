//! Relaying an upstream event stream to the client.
//!
//! A stream (`text/event-stream`, any [`http_body::Body`]) is pumped by a task of its own from
//! the upstream into a short channel that [`RelayBody`] hands to the client: never buffered
//! beyond a few frames and the event in progress. The pump decodes the bytes into events
//! ([`Decoder`]), runs each through the response's [`FilterChain`] (usage watch, usage strip,
//! ...), and sends what comes out, re-encoded only where a filter changed it. The pump is what
//! watches the stream, since a body the client stopped reading is no longer polled and cannot
//! watch itself:
//!
//! - the client accepted nothing for `client-stall-timeout` (the channel stayed full): the
//!   upstream stream is dropped, freeing its connection slot and flow-control window, and the
//!   request is settled as client-aborted;
//! - the upstream sent nothing for `chunk-idle-timeout`, or the exchange hit `total-timeout`,
//!   or an event grew past [`MAX_EVENT_BYTES`]: the client gets an OpenAI-shaped SSE error
//!   event ([`ApiError::to_sse_event`]) and the stream ends;
//! - a filter ended the stream ([`Flow::End`]): the upstream is dropped, the filters' last
//!   events are sent, and the stream ends normally.
//!
//! Dropping the body (the client went away) closes the channel; the pump drops the upstream
//! body, which cancels the upstream request (the connection is closed, or the HTTP/2 stream
//! reset). Every request ends exactly once, in its [`Finisher`].

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::events::Decoder;
use super::response::{FilterChain, Flow, StreamEnd};
use crate::api::ApiError;
use crate::finisher::Finisher;

pub use crate::policy::Outcome;

/// Any error of a relayed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Frames between the pump and the client: small, so a full channel means the client stopped
/// reading, not that the gateway is buffering.
const CHANNEL_DEPTH: usize = 4;

/// Largest event the pump holds while waiting for its end (a stream that never sends a blank
/// line would otherwise grow without bound). Far above any chat chunk.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

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
    Upstream(BoxError),
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
    /// Starts pumping `upstream` through `chain`. `upstream_name` names it in error events.
    pub fn spawn<B>(
        upstream: B,
        chain: FilterChain,
        watch: StreamWatch,
        upstream_name: String,
        completion: Finisher,
    ) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let pump = Pump { chain, watch, upstream_name, completion, tx, out: BytesMut::new() };
        #[allow(clippy::disallowed_methods, reason = "connection-scoped: ends with the stream it pumps")]
        tokio::spawn(pump.run(upstream));
        RelayBody { rx, done: false }
    }
}

/// How the pump's loop ended.
enum Ending {
    Done,
    Cut,
    Broken(BoxError),
    TotalTimeout,
    UpstreamIdle,
    EventTooLarge,
    ClientGone,
    ClientStalled,
}

/// The state of one relayed stream.
struct Pump {
    chain: FilterChain,
    watch: StreamWatch,
    upstream_name: String,
    completion: Finisher,
    tx: mpsc::Sender<Item>,
    /// Encoded events not yet handed to the client.
    out: BytesMut,
}

impl Pump {
    async fn run<B>(mut self, upstream: B)
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let started = Instant::now();
        let mut upstream = Box::pin(upstream);
        let mut decoder = Decoder::new();
        let ending = loop {
            let next = tokio::select! {
                biased;
                () = self.tx.closed() => break Ending::ClientGone,
                () = tokio::time::sleep_until(self.watch.deadline) => break Ending::TotalTimeout,
                next = tokio::time::timeout(self.watch.chunk_idle, upstream.frame()) => next,
            };
            let frame = match next {
                Err(_) => break Ending::UpstreamIdle,
                Ok(None) => break Ending::Done,
                Ok(Some(Err(e))) => break Ending::Broken(e.into()),
                Ok(Some(Ok(frame))) => frame,
            };
            let flow = match frame.into_data() {
                Ok(data) => {
                    decoder.feed(&data);
                    let mut flow = Flow::Continue;
                    while flow == Flow::Continue
                        && let Some(event) = decoder.next_event()
                    {
                        flow = self.chain.on_event(event, &mut self.out);
                    }
                    flow
                }
                Err(trailers) => {
                    if let Err(ending) = self.send_out().await {
                        break ending;
                    }
                    if let Err(ending) = self.deliver(Item::Data(trailers)).await {
                        break ending;
                    }
                    Flow::Continue
                }
            };
            // Partial or dropped events leave nothing to send: read on.
            if let Err(ending) = self.send_out().await {
                break ending;
            }
            if flow == Flow::End {
                break Ending::Cut;
            }
            if decoder.pending() > MAX_EVENT_BYTES {
                break Ending::EventTooLarge;
            }
        };
        let name = self.upstream_name.clone();
        match ending {
            Ending::Done => {
                let (last, tail) = decoder.finish();
                let flow = last.map_or(Flow::Continue, |ev| self.chain.on_event(ev, &mut self.out));
                let cut = flow == Flow::End;
                self.chain.on_end(if cut { StreamEnd::Cut } else { StreamEnd::Done }, &mut self.out);
                if !cut {
                    // An unterminated last event is forwarded as it came.
                    self.out.extend_from_slice(&tail);
                }
                self.completion.add_output(self.chain.tally.take_output());
                self.completion.finish(self.chain.tally.usage, Outcome::Completed);
                if self.send_out().await.is_ok() {
                    let _ = self.deliver(Item::End).await;
                }
            }
            Ending::Cut => {
                drop(upstream); // cancel the upstream before waiting on the client
                tracing::debug!(elapsed = ?started.elapsed(), "stream ended by a response filter");
                self.chain.on_end(StreamEnd::Cut, &mut self.out);
                let sent = self.send_out().await;
                let outcome = if sent.is_ok() { Outcome::Completed } else { Outcome::ClientAborted };
                self.completion.finish(self.chain.tally.usage, outcome);
                if sent.is_ok() {
                    let _ = self.deliver(Item::End).await;
                }
            }
            Ending::Broken(e) => {
                tracing::warn!(error = %e, "upstream stream broke");
                self.fail(StreamEnd::Failed, Outcome::UpstreamError);
                let _ = self.deliver(Item::Fail(RelayError::Upstream(e))).await;
            }
            Ending::TotalTimeout => {
                drop(upstream);
                let error = ApiError::upstream_timeout(&name, "total");
                self.cut_short("total_timeout", &error, started).await;
            }
            Ending::UpstreamIdle => {
                drop(upstream);
                let error = ApiError::upstream_stream_idle(&name, self.watch.chunk_idle);
                self.cut_short("upstream_idle", &error, started).await;
            }
            Ending::EventTooLarge => {
                drop(upstream);
                let error = ApiError::upstream_event_too_large(&name, MAX_EVENT_BYTES);
                self.cut_short("event_too_large", &error, started).await;
            }
            Ending::ClientGone => self.fail(StreamEnd::ClientGone, Outcome::ClientAborted),
            Ending::ClientStalled => {
                tracing::warn!(stalled_for = ?self.watch.client_stall, "client stopped reading; stream dropped");
                metrics::counter!("wasmgate_stream_cutoffs_total", "reason" => "client_stalled").increment(1);
                self.fail(StreamEnd::ClientGone, Outcome::ClientAborted);
                // Closing the channel without `End`: should the client read again, its body fails.
            }
        }
    }

    /// Tells the filters the stream failed (their last events are not sent) and settles.
    fn fail(&mut self, end: StreamEnd, outcome: Outcome) {
        let mut discarded = BytesMut::new();
        self.chain.on_end(end, &mut discarded);
        self.completion.finish(self.chain.tally.usage, outcome);
    }

    /// Ends a stream the gateway cut short with an error event.
    async fn cut_short(&mut self, reason: &'static str, error: &ApiError, started: Instant) {
        tracing::warn!(elapsed = ?started.elapsed(), reason, "stream cut short by the gateway");
        metrics::counter!("wasmgate_stream_cutoffs_total", "reason" => reason).increment(1);
        let mut discarded = BytesMut::new();
        self.chain.on_end(StreamEnd::Failed, &mut discarded);
        if self.deliver(Item::Data(Frame::data(error.to_sse_event()))).await.is_ok() {
            let _ = self.deliver(Item::End).await;
        }
        self.completion.finish(self.chain.tally.usage, Outcome::UpstreamError);
    }

    /// Hands the encoded events to the client, then counts their output as relayed.
    async fn send_out(&mut self) -> Result<(), Ending> {
        if !self.out.is_empty() {
            let bytes = self.out.split().freeze();
            self.deliver(Item::Data(Frame::data(bytes))).await?;
        }
        self.completion.add_output(self.chain.tally.take_output());
        Ok(())
    }

    /// Hands `item` to the client's body, waiting at most `client-stall-timeout` for room.
    async fn deliver(&mut self, item: Item) -> Result<(), Ending> {
        match tokio::time::timeout(self.watch.client_stall, self.tx.reserve()).await {
            Ok(Ok(permit)) => {
                permit.send(item);
                Ok(())
            }
            Ok(Err(_)) => Err(Ending::ClientGone),
            Err(_) => Err(Ending::ClientStalled),
        }
    }
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

/// Reads a whole body, up to `limit` bytes. Returns the bytes read, and the rest of the body
/// to stream on if it is larger than `limit`.
pub async fn collect_bounded<B>(body: B, limit: usize) -> Result<(Bytes, Option<Pin<Box<B>>>), BoxError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError> + Send,
{
    let mut body = Box::pin(body);
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(Into::into)?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > limit {
                return Ok((buf.freeze(), Some(body)));
            }
        }
    }
    Ok((buf.freeze(), None))
}
