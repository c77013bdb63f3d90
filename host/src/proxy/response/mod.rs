//! The response side: what happens to an upstream response on its way to the client.
//!
//! [`respond`] turns the upstream's response into the client's: relayable headers plus the
//! policy chain's, then a [`FilterChain`] of [`ResponseFilter`]s over typed events — for a
//! stream, event by event as the relay pumps it ([`crate::proxy::RelayBody`]); for a body read
//! whole (a non-streamed JSON response), once, through [`ResponseFilter::on_body`].
//!
//! The filters today, in chain order:
//! - [`UsageWatch`]: the upstream's usage and the output relayed, for settlement;
//! - [`UsageStrip`]: drops the usage-only chunk the gateway asked for and the client did not.
//!
//! Later ones plug in the same way: dialect translation (OpenAI chunks to Anthropic or
//! Responses events: [`EventAction::Replace`]), a token budget cutting a stream
//! ([`EventAction::End`]), response-phase plugins, a cache tee ([`ResponseFilter::on_end`]
//! says whether the stream is whole).

mod filter;
mod respond;
mod usage_strip;
mod usage_watch;

pub use filter::{BodyAction, EventAction, FilterChain, Flow, ResponseFilter, ResponseHead, StreamEnd, Tally};
pub use respond::{MAX_COLLECTED_RESPONSE, ResponsePlan, respond, respond_with};
pub use usage_strip::UsageStrip;
pub use usage_watch::UsageWatch;

#[cfg(test)]
mod tests;
