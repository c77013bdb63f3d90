//! The OpenAI API surface the gateway speaks: typed request bodies and the error shape.

pub mod edit;
pub mod error;
pub mod request;
pub mod tokens;

pub use edit::SetFieldError;
pub use error::{ApiError, Blame, Retry};
pub use request::{ApiRequest, Endpoint};
