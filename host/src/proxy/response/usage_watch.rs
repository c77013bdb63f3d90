//! The usage watch: records the usage the upstream reports (a stream's usage chunk, a JSON
//! body's `usage`) and the output bytes of every chunk, for settlement.
//!
//! It sits first in the chain so that it sees the upstream's own OpenAI chunks: before the
//! usage strip drops the usage-only chunk, before a translation turns chunks into another
//! dialect. (The output it counts is the upstream's; a later filter that drops content still
//! leaves it counted — what the upstream generated is what was spent.)

use bytes::Bytes;

use super::filter::{BodyAction, EventAction, ResponseFilter, Tally};
use crate::proxy::events::{ChatEvent, SseEvent};
use wasmgate_wire::usage::scan_json;

#[derive(Debug, Default)]
pub struct UsageWatch;

impl ResponseFilter for UsageWatch {
    fn on_event(&mut self, event: &mut SseEvent, tally: &mut Tally) -> EventAction {
        if let ChatEvent::Chunk(chunk) = event.chat() {
            tally.add_output(chunk.output_bytes);
            if chunk.usage.is_some() {
                tally.usage = chunk.usage;
            }
        }
        EventAction::Pass
    }

    fn on_body(&mut self, body: &Bytes, tally: &mut Tally) -> BodyAction {
        tally.usage = scan_json(body);
        BodyAction::Pass
    }
}
