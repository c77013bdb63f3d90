//! **parse** — the typed OpenAI request of the endpoint, validated (400 naming the field);
//! unknown fields are kept and forwarded untouched. The plugins' view learns the model, the
//! stream flag, `max_tokens` and the prompt estimate.

use super::{Flow, Step};
use crate::api::ApiRequest;
use crate::server::exchange::{Exchange, Operation, fill_view};

pub fn run(ex: &mut Exchange) -> Step {
    let Operation::Api(endpoint) = ex.op else {
        return Ok(Flow::Next);
    };
    let api = ApiRequest::parse(endpoint, &ex.raw)?;
    fill_view(&mut ex.view, &api);
    ex.finisher.set_model(api.model());
    ex.request = Some(api);
    Ok(Flow::Next)
}
