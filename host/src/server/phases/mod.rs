//! The phases of the request path, one file each, in the order [`pipeline`](super::pipeline)
//! runs them. Each is an `async fn(&mut Exchange) -> Result<Flow, ApiError>`:
//!
//! - `Ok(Flow::Next)`: the phase did its part; the next one runs.
//! - `Ok(Flow::Respond(response))`: the request is answered here (a plugin's own response, the
//!   model list); later phases do not run.
//! - `Err(error)`: the request ends with an error, rendered and logged once by the pipeline's
//!   rescue. Everything a phase reserved is settled by the exchange's finisher, whatever the
//!   path, so no phase refunds on its own.

pub mod authenticate;
pub mod forward;
pub mod intake;
pub mod models;
pub mod parse;
pub mod policy;
pub mod read;
pub mod respond;
pub mod route;
pub mod tenant;

use axum::response::Response;

/// What a phase decided.
pub enum Flow {
    Next,
    Respond(Response),
}

/// The result of a phase.
pub type Step = Result<Flow, crate::api::ApiError>;
