//! wasmgate plugin (`rewrite` world): model aliases, a model deny list, `max_tokens` default
//! and cap, a system prompt, and upstream header edits. See `README.md` for the contract.

mod rules;

use wasmgate_sdk::{Decision, Request, RewritePlugin};

pub use rules::{Config, SystemPromptMode};

struct Rewrite;

impl RewritePlugin for Rewrite {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn rewrite(config: &Config, req: Request) -> Decision {
        rules::rewrite(config, &req)
    }
}

wasmgate_sdk::export_rewrite!(Rewrite);
// Rules match the model, max-tokens and body, never a header: none is copied in.
wasmgate_sdk::declare_headers!();
