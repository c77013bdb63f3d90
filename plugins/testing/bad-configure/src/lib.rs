//! Test plugin (`rewrite` world): `configure` always fails, whatever the config, so the
//! plugin (or a reload of it) must never load.

use wasmgate_sdk::serde_json::Value;
use wasmgate_sdk::{Decision, Request, RewritePlugin};

/// The error `configure` returns, word for word.
const REFUSAL: &str = "bad-configure: this plugin always refuses its config";

struct BadConfigure;

impl RewritePlugin for BadConfigure {
    /// Anything parses; the refusal comes from `configure`.
    type Config = Value;

    fn configure(_config: &Value) -> Result<(), String> {
        Err(REFUSAL.into())
    }

    fn rewrite(_config: &Value, _req: Request) -> Decision {
        Decision::Continue
    }
}

wasmgate_sdk::export_rewrite!(BadConfigure);
