//! Helpers for the breaker and fail-safe tests: a config that admits large bodies, a gateway
//! on an engine with a chosen instance pool, requests with headers, and the breaker state
//! `/admin/plugins` reports.

use std::time::Duration;

use serde_json::Value;
use wasmgate::config::Config;
use wasmgate::mock::{MockConfig, MockServer};
use wasmgate::policy::{EngineOptions, PolicyEngine};
use wasmgate::server::{self, Snapshot};

use super::{Harness, base_config};

/// Like [`base_config`], with a 4 MiB body limit (for prompts of a megabyte).
pub fn big_body_config(mock: std::net::SocketAddr, extra: &str) -> String {
    base_config(mock, extra).replace("max-body-bytes = 65536", "max-body-bytes = 4194304")
}

/// A gateway whose policy engine has `opts` (e.g. a tiny instance pool); the mock records.
pub async fn start_with_engine(extra: &str, opts: EngineOptions) -> Harness {
    let mock = MockServer::start("127.0.0.1:0".parse().unwrap(), recording()).await.unwrap();
    let config = Config::parse(&base_config(mock.addr, extra), None).unwrap_or_else(|e| panic!("{e}"));
    let engine = PolicyEngine::new(opts).unwrap();
    let gw = server::start(Snapshot::build(config, engine).await.unwrap_or_else(|e| panic!("{e}"))).await.unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    Harness { gw, mock, http }
}

/// A mock that records what reaches it (these tests check what the upstream saw).
pub fn recording() -> MockConfig {
    MockConfig::default() // records the last requests (the embedded default and `mock-upstream` do not)
}

/// A chat completion to `path` with extra headers.
pub async fn chat_at(h: &Harness, path: &str, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut r = h.http.post(h.url(path)).header("content-type", "application/json");
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    r.body(body.to_string()).send().await.unwrap()
}

/// The `breakers` entry of plugin `id` for `tenant` (`""`: no tenant), from `/admin/plugins`;
/// `None` if that tenant has not used the plugin yet.
pub async fn breaker(h: &Harness, id: &str, tenant: &str) -> Option<Value> {
    let v: Value = h.http.get(h.admin_url("/admin/plugins")).send().await.unwrap().json().await.unwrap();
    let plugins = v["plugins"].as_array().cloned().unwrap_or_default();
    let p = plugins.iter().find(|p| p["id"] == id).unwrap_or_else(|| panic!("no plugin {id} in {v}"));
    p["breakers"].as_array().and_then(|b| b.iter().find(|b| b["tenant"] == tenant).cloned())
}

/// The state (`closed`, `open`, `half-open`) of that breaker; `closed` if never used.
pub async fn breaker_state(h: &Harness, id: &str, tenant: &str) -> String {
    breaker(h, id, tenant).await.map_or("closed".to_string(), |b| b["state"].as_str().unwrap().to_string())
}

/// A chat body whose user message is `text`.
pub fn chat_body(text: &str) -> String {
    serde_json::json!({"model": "mock-gpt-4o", "messages": [{"role": "user", "content": text}]}).to_string()
}
