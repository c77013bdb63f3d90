//! Shared helpers for wasmgate's benchmarks: ready-made plugin specs for the reference plugins.

use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmgate::policy::{FailurePolicy, PluginKind, PluginSource, PluginSpec, RequestView};
use wasmgate_test_plugins as art;

/// The API key the bench auth plugin accepts.
pub const KEY: &str = "sk-bench-0123456789abcdef";

fn spec(id: &str, kind: PluginKind, path: &str, config: String, max_reuse: u32) -> PluginSpec {
    PluginSpec {
        id: id.to_string(),
        kind,
        source: PluginSource::Path(path.into()),
        config_json: config,
        namespace: "bench".to_string(),
        failure: FailurePolicy::FailClosed,
        timeout: Duration::from_millis(50),
        configure_timeout: Duration::from_secs(10),
        memory_limit_bytes: 64 << 20,
        pass_body: false,
        max_reuse,
        failure_explicit: true,
        body_limit: None,
    }
}

/// auth-keys with three keys, the bench key among them.
pub fn auth(max_reuse: u32) -> PluginSpec {
    let h = |k: &str| hex::encode(Sha256::digest(k.as_bytes()));
    let config = format!(
        r#"{{"keys":[{{"sha256":"{}","subject":"a"}},{{"sha256":"{}","subject":"b"}},{{"sha256":"{}","subject":"bench","tenant":"t1"}}]}}"#,
        h("sk-other-1"),
        h("sk-other-2"),
        h(KEY)
    );
    spec("auth", PluginKind::Auth, art::AUTH_KEYS, config, max_reuse)
}

/// rewrite with an alias, a cap and a header.
pub fn rewrite(max_reuse: u32) -> PluginSpec {
    let config =
        r#"{"model-aliases":{"fast":"mock-gpt-4o-mini"},"max-tokens-cap":1024,"set-headers":{"x-team":"bench"}}"#;
    spec("rewrite", PluginKind::Rewrite, art::REWRITE, config.to_string(), max_reuse)
}

/// rate-limit on requests and tokens, limits far above what a bench reaches.
pub fn rate_limit(max_reuse: u32) -> PluginSpec {
    let config = r#"{"key":"identity","requests":{"limit":1000000000000,"window-ms":60000},"tokens":{"limit":1000000000000000,"window-ms":60000}}"#;
    spec("limits", PluginKind::RateLimit, art::RATE_LIMIT, config.to_string(), max_reuse)
}

/// allowlist-js (JavaScript `auth`): the bench key among its keys, no address ranges.
pub fn allowlist_js(max_reuse: u32) -> PluginSpec {
    let h = |k: &str| hex::encode(Sha256::digest(k.as_bytes()));
    let config = format!(
        r#"{{"keys":[{{"sha256":"{}","subject":"a"}},{{"sha256":"{}","subject":"bench","tenant":"t1"}}]}}"#,
        h("sk-other-1"),
        h(KEY)
    );
    spec("allowlist-js", PluginKind::Auth, art::ALLOWLIST_JS, config, max_reuse)
}

/// redact-py (Python `rewrite`) with both detectors; it reads the body.
pub fn redact_py(max_reuse: u32) -> PluginSpec {
    let mut s = spec("redact-py", PluginKind::Rewrite, art::REDACT_PY, "{}".to_string(), max_reuse);
    s.pass_body = true;
    s
}

/// A chat body with an e-mail address and a phone number for redact-py to find.
pub const BODY_WITH_PII: &[u8] = br#"{"model":"fast","max_tokens":256,"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Mail jane.doe@example.com or call +1 415 555 0100 about the invoice."}]}"#;

/// A typical request view: 10 headers, as the report's harness sends them.
pub fn request_view() -> RequestView {
    let headers = [
        ("host", "gateway.internal:8080"),
        ("authorization", &*format!("Bearer {KEY}")),
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("user-agent", "OpenAI/Python 1.54.4"),
        ("x-tenant", "tenant-42"),
        ("x-request-id", "6f1c2b9e-4a4d-4c53-9d3e-8f2a7b1c0d11"),
        ("openai-organization", "org-abc123"),
        ("content-length", "412"),
        ("accept-encoding", "gzip, deflate"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    RequestView {
        id: "req_bench".into(),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        headers,
        tenant: None,
        identity: None,
        model: "fast".into(),
        endpoint: "chat",
        stream: false,
        max_tokens: Some(256),
        prompt_tokens_estimate: 12,
        client_ip: "127.0.0.1".to_string(),
        breaker_scope: None,
    }
}
