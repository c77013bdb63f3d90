// The plugin itself, shared by header-echo and header-echo-v2 (see lib.rs).

use serde::Deserialize;
use wasmgate_sdk::{Decision, Edit, Request, RewritePlugin};

/// The header to set upstream and the value for it and for `x-plugin-version`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    name: String,
    #[serde(default)]
    value: Option<String>,
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
        let value = config.value.clone().unwrap_or_else(|| BUILD_VALUE.to_string());
        Decision::Mutate(vec![
            Edit::SetHeader((config.name.clone(), value.clone())),
            Edit::SetResponseHeader(("x-plugin-version".into(), value)),
        ])
    }
}

wasmgate_sdk::export_rewrite!(HeaderEcho);
