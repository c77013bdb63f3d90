//! The OpenAI wire format as the gateway speaks it, with no IO: typed request bodies
//! ([`request`]) and their edits ([`edit`]), the token estimator ([`tokens`]), the error model
//! and its OpenAI envelope ([`error`]), token usage ([`usage`]) and the SSE event codec with the
//! typed view of chat stream events ([`events`]).
//!
//! Used by the gateway (`host/`), and by anything that must read or write the same wire format
//! without a server (tests, tools).

pub mod dialect;
pub mod edit;
pub mod error;
pub mod events;
pub mod request;
pub mod tokens;
pub mod usage;

pub use edit::SetFieldError;
pub use error::{ApiError, Blame, ErrorDetails, Retry};
pub use request::{ApiRequest, Endpoint};
pub use usage::Usage;
