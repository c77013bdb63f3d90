//! The response filter contract and the chain that runs filters in order.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use crate::proxy::Usage;
use crate::proxy::events::SseEvent;

/// The status and headers the client will get (hop-by-hop and provider-account headers
/// already removed, the policy chain's response headers already added).
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body is relayed as an event stream (else it is read whole: [`ResponseFilter::on_body`]).
    pub streaming: bool,
}

/// What a filter does with one event.
#[derive(Debug)]
pub enum EventAction {
    /// Hand it on unchanged (or changed in place through the `&mut`).
    Pass,
    /// Put these events in its place (none: drop it). Each goes through the filters after
    /// this one.
    Replace(Vec<SseEvent>),
    /// End the stream now with these last events (through the filters after this one); the
    /// upstream is dropped, which cancels it. Then every filter's [`ResponseFilter::on_end`]
    /// runs with [`StreamEnd::Cut`].
    End(Vec<SseEvent>),
}

/// What a filter does with a body read whole.
#[derive(Debug)]
pub enum BodyAction {
    Pass,
    /// Send these bytes instead (`content-length` is recomputed).
    Replace(Bytes),
}

/// How a stream ended, as [`ResponseFilter::on_end`] learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The upstream finished it.
    Done,
    /// A filter ended it ([`EventAction::End`]).
    Cut,
    /// The gateway ended it with an error (upstream broke, went silent, total timeout): events
    /// returned now are not sent (the client gets the error event).
    Failed,
    /// The client left or stopped reading: nothing more can be sent.
    ClientGone,
}

/// What the response side learned for settlement: the upstream's usage and the output relayed.
/// The relay feeds it to the request's finisher (`crate::finisher`).
#[derive(Debug, Default)]
pub struct Tally {
    /// The last usage the upstream reported.
    pub usage: Option<Usage>,
    /// Output bytes since the last [`Tally::take_output`].
    output_bytes: usize,
}

impl Tally {
    pub fn add_output(&mut self, bytes: usize) {
        self.output_bytes = self.output_bytes.saturating_add(bytes);
    }

    /// The output bytes counted since the last call.
    pub fn take_output(&mut self) -> usize {
        std::mem::take(&mut self.output_bytes)
    }
}

/// One step of the response side, with per-response state (a new value per response).
///
/// Streams call [`on_head`](Self::on_head), then [`on_event`](Self::on_event) per event, then
/// [`on_end`](Self::on_end) exactly once; a body read whole calls `on_head` then
/// [`on_body`](Self::on_body) (a JSON response is one value, not an event stream: a dialect
/// translator rewrites it whole, a usage reader reads it once, so it gets its own hook rather
/// than posing as a one-event stream).
///
/// **Synchronous by design.** `on_event` runs for every event of every stream, and the budget
/// is under a microsecond for decode + chain + encode. A `Box<dyn Future>` per filter per
/// event would cost an allocation and an indirect poll each time, for filters (usage, strip,
/// dialect translation, a budget debited from a local counter, a cache tee writing to a
/// channel) that never wait. A filter that must wait — a response-phase WASM plugin on a
/// pooled instance with its epoch deadline, a Redis budget debit — will be a second kind of
/// stage beside this trait (an `async` twin, awaited by the relay's pump, which is already an
/// async task), so that only the stages that wait pay for a future. `Send` because the pump
/// runs as its own task on the multi-threaded runtime.
pub trait ResponseFilter: Send {
    /// The response head, before anything is sent: may edit status and headers.
    fn on_head(&mut self, head: &mut ResponseHead) {
        let _ = head;
    }

    /// One event of a stream, in order.
    fn on_event(&mut self, event: &mut SseEvent, tally: &mut Tally) -> EventAction {
        let _ = (event, tally);
        EventAction::Pass
    }

    /// The end of a stream (once, whatever the ending); returns events to send last (before
    /// the unterminated tail of the upstream, if any; ignored unless `Done` or `Cut`).
    fn on_end(&mut self, end: StreamEnd, tally: &mut Tally) -> Vec<SseEvent> {
        let _ = (end, tally);
        Vec::new()
    }

    /// A body read whole (non-streamed responses, and error responses to streamed requests).
    fn on_body(&mut self, body: &Bytes, tally: &mut Tally) -> BodyAction {
        let _ = (body, tally);
        BodyAction::Pass
    }
}

/// Whether a stream goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// A filter ended the stream: stop reading the upstream, call [`FilterChain::on_end`] with
    /// [`StreamEnd::Cut`].
    End,
}

/// The filters of one response, in order, and what they tallied.
#[derive(Default)]
pub struct FilterChain {
    filters: Vec<Box<dyn ResponseFilter>>,
    pub tally: Tally,
}

impl FilterChain {
    pub fn new(filters: Vec<Box<dyn ResponseFilter>>) -> Self {
        FilterChain { filters, tally: Tally::default() }
    }

    pub fn on_head(&mut self, head: &mut ResponseHead) {
        for f in &mut self.filters {
            f.on_head(head);
        }
    }

    /// Runs `event` through the chain and encodes what comes out into `out`.
    pub fn on_event(&mut self, event: SseEvent, out: &mut BytesMut) -> Flow {
        self.run_from(0, event, out)
    }

    /// Ends the stream: every filter's `on_end`, in order; what they return goes through the
    /// filters after them into `out`.
    pub fn on_end(&mut self, end: StreamEnd, out: &mut BytesMut) {
        for i in 0..self.filters.len() {
            let last = self.filters[i].on_end(end, &mut self.tally);
            for ev in last {
                // The stream is ending anyway: a filter asking to end it again changes nothing.
                let _ = self.run_from(i + 1, ev, out);
            }
        }
    }

    /// Runs a whole body through every filter's `on_body`; true if it was replaced.
    pub fn on_body(&mut self, body: &mut Bytes) -> bool {
        let mut replaced = false;
        for f in &mut self.filters {
            if let BodyAction::Replace(b) = f.on_body(&*body, &mut self.tally) {
                *body = b;
                replaced = true;
            }
        }
        replaced
    }

    fn run_from(&mut self, from: usize, mut event: SseEvent, out: &mut BytesMut) -> Flow {
        for i in from..self.filters.len() {
            match self.filters[i].on_event(&mut event, &mut self.tally) {
                EventAction::Pass => {}
                EventAction::Replace(events) => {
                    for ev in events {
                        if self.run_from(i + 1, ev, out) == Flow::End {
                            return Flow::End;
                        }
                    }
                    return Flow::Continue;
                }
                EventAction::End(events) => {
                    for ev in events {
                        if self.run_from(i + 1, ev, out) == Flow::End {
                            break;
                        }
                    }
                    return Flow::End;
                }
            }
        }
        event.encode(out);
        Flow::Continue
    }
}
