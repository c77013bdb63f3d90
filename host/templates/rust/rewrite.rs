//! {{name}}: a wasmgate `rewrite` plugin. Sets a header on the request to the upstream and caps
//! `max_tokens`.

use serde::Deserialize;
use wasmgate_sdk::{Decision, Edit, Request, RewritePlugin};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Header to set on the upstream request, e.g. `x-team`.
    header: String,
    /// Its value.
    value: String,
    /// Largest `max_tokens` a request may ask for; requests without one get it.
    #[serde(default)]
    max_tokens_cap: Option<u32>,
}

struct Plugin;

impl RewritePlugin for Plugin {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        if config.header.is_empty() || !config.header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("`header` {:?} is not a header name", config.header));
        }
        Ok(())
    }

    fn rewrite(config: &Config, req: Request) -> Decision {
        decide(config, &req)
    }
}

/// The decision, as a plain function so native unit tests can call it.
fn decide(config: &Config, req: &Request) -> Decision {
    let mut edits = vec![Edit::SetHeader((config.header.to_ascii_lowercase(), config.value.clone()))];
    if let Some(cap) = config.max_tokens_cap
        && req.max_tokens.is_none_or(|n| n > cap)
    {
        wasmgate_sdk::debug!("capping max_tokens of {} at {cap}", req.id);
        edits.push(Edit::SetMaxTokens(cap));
    }
    Decision::Mutate(edits)
}

wasmgate_sdk::export_rewrite!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        wasmgate_sdk::parse_config(r#"{"header":"x-team","value":"research","max-tokens-cap":512}"#)
            .map_err(|e| e.to_string())
            .unwrap()
    }

    #[test]
    fn sets_the_header_and_caps_max_tokens() {
        let req = Request { max_tokens: Some(4096), ..wasmgate_sdk::test_request() };
        match decide(&config(), &req) {
            Decision::Mutate(edits) => {
                assert!(edits.contains(&Edit::SetHeader(("x-team".into(), "research".into()))));
                assert!(edits.contains(&Edit::SetMaxTokens(512)));
            }
            _ => panic!("expected edits"),
        }
    }

    #[test]
    fn leaves_a_small_max_tokens_alone() {
        let req = Request { max_tokens: Some(100), ..wasmgate_sdk::test_request() };
        match decide(&config(), &req) {
            Decision::Mutate(edits) => assert_eq!(edits.len(), 1),
            _ => panic!("expected edits"),
        }
    }
}
