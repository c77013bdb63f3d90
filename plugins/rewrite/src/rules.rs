//! The pure logic: config, and one request in, one decision out.

use std::collections::BTreeMap;

use serde::Deserialize;
use wasmgate_sdk::serde_json::{self, Value};
use wasmgate_sdk::{Decision, Edit, Request, Response, error_body};

/// The plugin config. Every field is optional; an empty config changes nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Model name the client sends → model it is replaced with. One step, no chains.
    #[serde(default)]
    pub model_aliases: BTreeMap<String, String>,
    /// `max_tokens` set when the client sent none. Default: none (leave it unset).
    #[serde(default)]
    pub default_max_tokens: Option<u32>,
    /// Upper bound for `max_tokens` (lowered to this if larger). Default: none.
    #[serde(default)]
    pub max_tokens_cap: Option<u32>,
    /// System message to insert (chat requests only). Default: none.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// When to insert `system-prompt`. Default: `prepend`.
    #[serde(default)]
    pub system_prompt_mode: SystemPromptMode,
    /// Headers set (replaced) on the upstream request. Names lower case.
    #[serde(default)]
    pub set_headers: BTreeMap<String, String>,
    /// Headers removed from the upstream request. Names lower case.
    #[serde(default)]
    pub remove_headers: Vec<String>,
    /// Models refused with 403 (after aliasing). A trailing `*` matches a prefix (`o1-*`).
    #[serde(default)]
    pub deny_models: Vec<String>,
}

/// When the system prompt goes in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemPromptMode {
    /// Always insert it before the first message.
    #[default]
    Prepend,
    /// Only if the messages hold no `system` (or `developer`) message. Needs `body = true` in
    /// the plugin's gateway config; without the body it behaves as `prepend`.
    IfMissing,
}

impl Config {
    /// Checks serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.default_max_tokens == Some(0) {
            return Err("invalid config at `default-max-tokens`: must be at least 1".into());
        }
        if self.max_tokens_cap == Some(0) {
            return Err("invalid config at `max-tokens-cap`: must be at least 1".into());
        }
        for (i, name) in self.set_headers.keys().enumerate() {
            check_header_name(name).map_err(|e| format!("invalid config at `set-headers.{name}` (#{i}): {e}"))?;
        }
        for (i, name) in self.remove_headers.iter().enumerate() {
            check_header_name(name).map_err(|e| format!("invalid config at `remove-headers[{i}]`: {e}"))?;
        }
        for (i, pattern) in self.deny_models.iter().enumerate() {
            if pattern.is_empty() || pattern.trim_end_matches('*').contains('*') {
                return Err(format!(
                    "invalid config at `deny-models[{i}]`: `{pattern}` must be a model name, optionally ending in `*`"
                ));
            }
        }
        for (from, to) in &self.model_aliases {
            if from.is_empty() || to.is_empty() {
                return Err(format!("invalid config at `model-aliases.{from}`: names must not be empty"));
            }
        }
        Ok(())
    }
}

fn check_header_name(name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("`{name}` is not a lower-case HTTP header name"));
    }
    Ok(())
}

/// Whether `model` is matched by a deny pattern (exact, or prefix when it ends in `*`).
pub fn is_denied(patterns: &[String], model: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => model == p,
    })
}

/// Whether the JSON body's `messages` already hold a `system` or `developer` message.
/// `None` when there is no body (or it is not the JSON we expect).
pub fn has_system_message(body: Option<&str>) -> Option<bool> {
    let body: Value = serde_json::from_str(body?).ok()?;
    let messages = body.get("messages")?.as_array()?;
    Some(messages.iter().any(|m| matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer"))))
}

/// The whole decision, edits in order: alias → deny check (on the resolved model) →
/// `max_tokens` default/cap → system prompt → set headers → remove headers.
pub fn rewrite(config: &Config, req: &Request) -> Decision {
    let mut edits = Vec::new();

    let model = match config.model_aliases.get(&req.model) {
        Some(target) if *target != req.model => {
            edits.push(Edit::SetModel(target.clone()));
            target.as_str()
        }
        _ => req.model.as_str(),
    };

    if is_denied(&config.deny_models, model) {
        return Decision::Respond(model_not_allowed(&req.model));
    }

    let wanted = req.max_tokens.or(config.default_max_tokens);
    let capped = match (wanted, config.max_tokens_cap) {
        (Some(n), Some(cap)) => Some(n.min(cap)),
        (n, _) => n,
    };
    if let Some(n) = capped
        && req.max_tokens != Some(n)
    {
        edits.push(Edit::SetMaxTokens(n));
    }

    if let Some(prompt) = &config.system_prompt {
        let insert = req.endpoint == "chat"
            && match config.system_prompt_mode {
                SystemPromptMode::Prepend => true,
                SystemPromptMode::IfMissing => has_system_message(req.body.as_deref()) != Some(true),
            };
        if insert {
            edits.push(Edit::PrependSystem(prompt.clone()));
        }
    }

    for (name, value) in &config.set_headers {
        edits.push(Edit::SetHeader((name.clone(), value.clone())));
    }
    for name in &config.remove_headers {
        edits.push(Edit::RemoveHeader(name.clone()));
    }

    if edits.is_empty() { Decision::Continue } else { Decision::Mutate(edits) }
}

/// 403 for a denied model. Names the model as the client sent it (not an alias target).
fn model_not_allowed(model: &str) -> Response {
    Response {
        status: 403,
        headers: Vec::new(),
        body: error_body(
            &format!("The model `{model}` is not allowed here."),
            "invalid_request_error",
            Some("model"),
            Some("model_not_allowed"),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;
    use wasmgate_sdk::{parse_config, test_request};

    fn cfg(json: &str) -> Config {
        let c: Config = parse_config(json).unwrap();
        c.validate().unwrap();
        c
    }

    fn req(model: &str) -> Request {
        Request { model: model.into(), ..test_request() }
    }

    fn edits(d: Decision) -> Vec<Edit> {
        match d {
            Decision::Mutate(e) => e,
            other => panic!("expected mutate, got {other:?}"),
        }
    }

    #[test]
    fn empty_config_continues() {
        assert!(matches!(rewrite(&cfg("{}"), &req("gpt-4o")), Decision::Continue));
    }

    #[test]
    fn alias_then_deny_on_resolved_model() {
        let c = cfg(r#"{"model-aliases":{"fast":"gpt-4o-mini","big":"o1-preview"},"deny-models":["gpt-4","o1-*"]}"#);
        assert_eq!(edits(rewrite(&c, &req("fast"))), vec![Edit::SetModel("gpt-4o-mini".into())]);
        for model in ["gpt-4", "o1-mini", "big"] {
            let Decision::Respond(r) = rewrite(&c, &req(model)) else { panic!("{model} allowed") };
            assert_eq!(r.status, 403);
            assert_eq!(
                r.body,
                format!(
                    r#"{{"error":{{"message":"The model `{model}` is not allowed here.","type":"invalid_request_error","param":"model","code":"model_not_allowed"}}}}"#
                )
            );
        }
        assert!(matches!(rewrite(&c, &req("gpt-4o")), Decision::Continue));
        assert!(matches!(rewrite(&c, &req("o1")), Decision::Continue));
    }

    #[test]
    fn max_tokens_default_and_cap() {
        let c = cfg(r#"{"default-max-tokens":256,"max-tokens-cap":1024}"#);
        assert_eq!(edits(rewrite(&c, &req("m"))), vec![Edit::SetMaxTokens(256)]);
        let big = Request { max_tokens: Some(4000), ..req("m") };
        assert_eq!(edits(rewrite(&c, &big)), vec![Edit::SetMaxTokens(1024)]);
        let fine = Request { max_tokens: Some(100), ..req("m") };
        assert!(matches!(rewrite(&c, &fine), Decision::Continue));
        let c = cfg(r#"{"default-max-tokens":4096,"max-tokens-cap":1024}"#);
        assert_eq!(edits(rewrite(&c, &req("m"))), vec![Edit::SetMaxTokens(1024)]);
    }

    #[test]
    fn system_prompt_modes() {
        let prepend = cfg(r#"{"system-prompt":"Be brief."}"#);
        let sys = Edit::PrependSystem("Be brief.".into());
        assert_eq!(edits(rewrite(&prepend, &req("m"))), vec![sys.clone()]);
        let embeddings = Request { endpoint: "embeddings".into(), ..req("m") };
        assert!(matches!(rewrite(&prepend, &embeddings), Decision::Continue));

        let if_missing = cfg(r#"{"system-prompt":"Be brief.","system-prompt-mode":"if-missing"}"#);
        let with_body = |body: &str| Request { body: Some(body.into()), ..req("m") };
        let has = with_body(r#"{"messages":[{"role":"system","content":"x"},{"role":"user","content":"y"}]}"#);
        assert!(matches!(rewrite(&if_missing, &has), Decision::Continue));
        let lacks = with_body(r#"{"messages":[{"role":"user","content":"y"}]}"#);
        assert_eq!(edits(rewrite(&if_missing, &lacks)), vec![sys.clone()]);
        // No body: behaves as prepend.
        assert_eq!(edits(rewrite(&if_missing, &req("m"))), vec![sys]);
    }

    #[test]
    fn full_order() {
        let c = cfg(r#"{"model-aliases":{"fast":"gpt-4o-mini"},"default-max-tokens":256,"system-prompt":"S",
                "set-headers":{"x-v":"1"},"remove-headers":["x-debug"]}"#);
        assert_eq!(
            edits(rewrite(&c, &req("fast"))),
            vec![
                Edit::SetModel("gpt-4o-mini".into()),
                Edit::SetMaxTokens(256),
                Edit::PrependSystem("S".into()),
                Edit::SetHeader(("x-v".into(), "1".into())),
                Edit::RemoveHeader("x-debug".into()),
            ]
        );
    }

    #[test]
    fn config_errors() {
        let err = parse_config::<Config>(r#"{"system-prompt-mode":"append"}"#).unwrap_err();
        assert!(err.contains("`system-prompt-mode`"), "{err}");
        let err = parse_config::<Config>(r#"{"max-tokens-cap":"x"}"#).unwrap_err();
        assert!(err.contains("`max-tokens-cap`"), "{err}");
        for bad in [
            r#"{"set-headers":{"X-V":"1"}}"#,
            r#"{"remove-headers":["a b"]}"#,
            r#"{"deny-models":["a*b"]}"#,
            r#"{"max-tokens-cap":0}"#,
        ] {
            let c: Config = parse_config(bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
