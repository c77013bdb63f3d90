//! Server-sent events as typed values: a decoder from arbitrary byte chunks to [`SseEvent`]s,
//! an encoder that writes them back (byte-exactly for events nobody changed), and a typed view
//! of OpenAI chat/completions stream events ([`ChatEvent`]).
//!
//! Pure (no IO, no tokio, no axum): it depends on `bytes`, `serde` and the [`Usage`] record
//! only.
//!
//! [`Usage`]: crate::Usage

mod chat;
mod codec;
pub mod samples;

pub use chat::{ChatChunk, ChatEvent};
pub use codec::{Decoder, SseEvent};

#[cfg(test)]
pub(crate) mod codec_tests;
