//! The usage strip: when the gateway added `stream_options.include_usage` to learn a stream's
//! usage and the client did not ask for it, the usage-only chunk that option adds is removed
//! from what the client receives (its client library may not expect `"choices":[]`).
//! Usage sent beside a choice is left alone: that chunk carries output too.

use super::filter::{EventAction, ResponseFilter, Tally};
use crate::proxy::events::{ChatEvent, SseEvent};

#[derive(Debug, Default)]
pub struct UsageStrip;

impl ResponseFilter for UsageStrip {
    fn on_event(&mut self, event: &mut SseEvent, _: &mut Tally) -> EventAction {
        match event.chat() {
            ChatEvent::Chunk(chunk) if chunk.usage_only => EventAction::Replace(Vec::new()),
            _ => EventAction::Pass,
        }
    }
}
