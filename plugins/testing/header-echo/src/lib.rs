//! Test plugin (`rewrite` world): sets the configured upstream header and the response header
//! `x-plugin-version` to the same value. Config `{"name":"x-v","value":"1"}`. The host's
//! hot-reload tests swap its config (or build) and watch the value change.

use serde::Deserialize;
use wasmgate_sdk::{Decision, Edit, Request, RewritePlugin};

/// The header to set upstream and the value for it and for `x-plugin-version`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    name: String,
    value: String,
}

struct HeaderEcho;

impl RewritePlugin for HeaderEcho {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        if config.name.is_empty() || config.name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err("invalid config at `name`: must be a non-empty lower-case header name".into());
        }
        Ok(())
    }

    fn rewrite(config: &Config, _req: Request) -> Decision {
        Decision::Mutate(vec![
            Edit::SetHeader((config.name.clone(), config.value.clone())),
            Edit::SetResponseHeader(("x-plugin-version".into(), config.value.clone())),
        ])
    }
}

wasmgate_sdk::export_rewrite!(HeaderEcho);
