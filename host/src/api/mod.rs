//! The OpenAI API surface the gateway speaks: the wire types of [`wasmgate_wire`] (typed request
//! bodies, edits, the error model, usage), and how an error becomes an HTTP response here.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

pub use wasmgate_wire::{ApiError, ApiRequest, Blame, Endpoint, ErrorDetails, Retry, SetFieldError};
pub use wasmgate_wire::{edit, error, request, tokens};

/// Renders an [`ApiError`] as the gateway's HTTP response (the OpenAI error object, the
/// error's extra headers). A trait of ours, since the error type lives in the wire crate.
pub trait RenderError {
    fn into_response(self) -> Response;
}

impl RenderError for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(*name, v);
            }
        }
        resp
    }
}
