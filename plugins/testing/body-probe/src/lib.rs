//! Test plugin (`rewrite` world, run with `body = true`): proves each plugin sees the body as
//! the plugins before it left it.
//!
//! - `{"mode":"redact","word":"SECRET"}`: when the body contains the word, replaces it in every
//!   message with `[redacted]` (one `set-body-field("messages", …)` edit).
//! - `{"mode":"probe","word":"SECRET"}`: sets the upstream header `x-body-probe` to `present`
//!   or `absent` (whether its body contains the word) and `x-body-model` to the body's model.

use serde::Deserialize;
use wasmgate_sdk::{Decision, Edit, Request, RewritePlugin};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: Mode,
    word: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Redact,
    Probe,
}

struct BodyProbe;

impl RewritePlugin for BodyProbe {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        if config.word.is_empty() {
            return Err("invalid config at `word`: must not be empty".into());
        }
        Ok(())
    }

    fn rewrite(config: &Config, req: Request) -> Decision {
        let body = req.body.unwrap_or_default();
        match config.mode {
            Mode::Probe => {
                let seen = if body.contains(&config.word) { "present" } else { "absent" };
                let model = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_string))
                    .unwrap_or_default();
                Decision::Mutate(vec![
                    Edit::SetHeader(("x-body-probe".into(), seen.into())),
                    Edit::SetHeader(("x-body-model".into(), model)),
                ])
            }
            Mode::Redact => {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else { return Decision::Continue };
                let Some(messages) = v.get("messages") else { return Decision::Continue };
                let text = messages.to_string();
                if !text.contains(&config.word) {
                    return Decision::Continue;
                }
                let redacted = text.replace(&config.word, "[redacted]");
                Decision::Mutate(vec![Edit::SetBodyField(("messages".into(), redacted))])
            }
        }
    }
}

wasmgate_sdk::export_rewrite!(BodyProbe);
