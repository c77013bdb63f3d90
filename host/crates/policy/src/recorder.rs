//! A [`Subject`] that records what a chain did instead of applying it to a gateway request:
//! for running plugins outside the gateway (`wasmgate plugin run`, benches, tests). Edits update
//! the view as the gateway's would (model, max-tokens, headers), so later plugins see them; the
//! body stays what it was given.

use bytes::Bytes;

use super::chain::{Settlement, Subject};
use super::view::{Edit, RequestView};

/// What a chain run did to the request.
#[derive(Debug, Default)]
pub struct Recorder {
    pub body: Bytes,
    /// Request edits, in order (response headers are in `response_headers`).
    pub edits: Vec<Edit>,
    pub response_headers: Vec<(String, String)>,
    pub settlements: Vec<Settlement>,
}

impl Recorder {
    /// A recorder whose plugins see `body`.
    pub fn with_body(body: Bytes) -> Self {
        Recorder { body, ..Recorder::default() }
    }
}

impl Subject for Recorder {
    fn body(&mut self) -> Bytes {
        self.body.clone()
    }

    fn apply(&mut self, edit: Edit, view: &mut RequestView) {
        match &edit {
            Edit::SetModel(m) => view.model.clone_from(m),
            Edit::SetMaxTokens(n) => view.max_tokens = Some(*n),
            Edit::SetHeader(n, v) => {
                view.headers.retain(|(k, _)| k != n);
                view.headers.push((n.clone(), v.clone()));
            }
            Edit::RemoveHeader(n) => view.headers.retain(|(k, _)| k != n),
            Edit::SetResponseHeader(n, v) => {
                self.response_headers.retain(|(k, _)| k != n);
                self.response_headers.push((n.clone(), v.clone()));
                return;
            }
            Edit::PrependSystem(_) | Edit::SetBodyField(..) => {}
        }
        self.edits.push(edit);
    }

    fn reserve(&mut self, settlement: Settlement) {
        self.settlements.push(settlement);
    }
}
