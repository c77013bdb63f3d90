//! Test harness: a real gateway and a real mock upstream on ephemeral ports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod hostile;

use std::net::SocketAddr;
use std::time::Duration;

use wasmgate::config::Config;
use wasmgate::mock::{MockConfig, MockServer};
use wasmgate::server::{self, RunningGateway, Snapshot};

pub mod breaker;
pub mod config_builder;
pub mod conn;
pub mod reload_admin;
pub mod soak;
pub mod upstream;

pub struct Harness {
    pub gw: RunningGateway,
    pub mock: MockServer,
    pub http: reqwest::Client,
}

/// A config with the mock as upstream `mock`; `{MOCK}` in `extra` is the mock's address.
pub fn base_config(mock: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin-listen = "127.0.0.1:0"
max-body-bytes = 65536
shutdown-grace = "5s"

[upstreams.mock]
endpoints = ["http://{mock}/v1"]
first-byte-timeout = "2s"

[[models]]
name = "mock-gpt-4o"
upstream = "mock"

[[models]]
name = "mock-embedding"
upstream = "mock"

[[models]]
name = "family-*"
upstream = "mock"
upstream-model = "mock-gpt-4o"
{extra}
"#,
        extra = extra.replace("{MOCK}", &mock.to_string())
    )
}

impl Harness {
    pub async fn start() -> Harness {
        Self::with(MockConfig::default(), "").await
    }

    pub async fn with(mock_cfg: MockConfig, extra: &str) -> Harness {
        let mock = MockServer::start("127.0.0.1:0".parse().unwrap(), mock_cfg).await.unwrap();
        let text = base_config(mock.addr, extra);
        Self::with_config_text(mock, &text).await
    }

    pub async fn with_config_text(mock: MockServer, text: &str) -> Harness {
        let config = Config::parse(text, None).unwrap_or_else(|e| panic!("{e}"));
        let gw = server::start(Snapshot::from_config(config).await.unwrap_or_else(|e| panic!("{e}"))).await.unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        Harness { gw, mock, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gw.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gw.admin_addr)
    }

    pub async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}

pub const CHAT: &str = r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"Hello there"}]}"#;

/// Asserts an OpenAI-shaped error and returns its `error` object.
pub async fn openai_error(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let v: serde_json::Value = resp.json().await.unwrap();
    let e = v.get("error").unwrap_or_else(|| panic!("no error object in {v}")).clone();
    assert!(e["message"].is_string(), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
    e
}

/// Parses the `data:` payloads of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n").filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("data: ").map(str::to_string))).collect()
}

/// Polls `f` until it is true or `within` passes.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

pub mod edge;
