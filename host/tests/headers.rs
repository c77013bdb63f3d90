//! What reaches the upstream: provider account headers, `Connection`-listed headers,
//! `X-Forwarded-*` / `Forwarded`, and plugin edits of framing headers (issue 11, item 7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::Duration;

use common::edge::raw_request;
use common::*;
use serde_json::Value;
use wasmgate::mock::MockConfig;

/// A second upstream (the same mock) whose config binds the provider account.
const BILLED: &str = r#"
[upstreams.billed]
endpoints = ["http://{MOCK}/v1"]
organization = "org-gateway"
headers = { "x-provider-tag" = "gw" }
forward-client-headers = ["openai-project"]

[[models]]
name = "billed-model"
upstream = "billed"
"#;

/// The request headers the mock upstream received, from its `mock_echo`.
async fn upstream_saw(resp: reqwest::Response) -> serde_json::Map<String, Value> {
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["mock_echo"]["headers"].as_object().unwrap().clone()
}

async fn chat_as_client(h: &Harness, model: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = h.http.post(h.url("/v1/chat/completions")).header("content-type", "application/json");
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    r.body(CHAT.replace("mock-gpt-4o", model)).send().await.unwrap()
}

#[tokio::test]
async fn clients_do_not_choose_the_provider_account() {
    let h = Harness::with(MockConfig::default(), BILLED).await;
    let client = [("openai-organization", "org-client"), ("openai-project", "proj-client")];

    // An upstream without account settings: the client's account headers are dropped.
    let saw = upstream_saw(chat_as_client(&h, "mock-gpt-4o", &client).await).await;
    assert!(!saw.contains_key("openai-organization"), "{saw:?}");
    assert!(!saw.contains_key("openai-project"), "{saw:?}");

    // An upstream that sets its organization and lets the client's project through.
    let saw = upstream_saw(chat_as_client(&h, "billed-model", &client).await).await;
    assert_eq!(saw["openai-organization"], "org-gateway", "{saw:?}");
    assert_eq!(saw["openai-project"], "proj-client", "{saw:?}");
    assert_eq!(saw["x-provider-tag"], "gw", "{saw:?}");
}

#[tokio::test]
async fn headers_named_in_connection_are_not_forwarded() {
    let h = Harness::start().await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close, x-hop-secret\r\nx-hop-secret: 1\r\nx-kept: 2",
        h.gw.addr,
        CHAT.len()
    );
    let resp = raw_request(h.gw.addr, &head, CHAT.as_bytes(), Duration::from_secs(10)).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    let saw = resp.json()["mock_echo"]["headers"].clone();
    assert_eq!(saw["x-kept"], "2", "{saw}");
    assert!(saw.get("x-hop-secret").is_none(), "{saw}");
}

const FORGED: [(&str, &str); 5] = [
    ("x-forwarded-for", "203.0.113.9"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    ("forwarded", "for=203.0.113.9;proto=https"),
    ("x-real-ip", "203.0.113.9"),
];

#[tokio::test]
async fn forwarding_headers_say_what_the_gateway_saw_unless_the_peer_is_a_trusted_proxy() {
    // Not a trusted proxy: the client's claims are replaced by the TCP peer.
    let h = Harness::start().await;
    let host = h.gw.addr.to_string();
    let saw = upstream_saw(chat_as_client(&h, "mock-gpt-4o", &FORGED).await).await;
    assert_eq!(saw["x-forwarded-for"], "127.0.0.1", "{saw:?}");
    assert_eq!(saw["x-forwarded-proto"], "http", "{saw:?}");
    assert_eq!(saw["x-forwarded-host"], host.as_str(), "{saw:?}");
    assert_eq!(saw["forwarded"], format!("for=127.0.0.1;proto=http;host=\"{host}\"").as_str(), "{saw:?}");
    assert!(!saw.contains_key("x-real-ip"), "{saw:?}");
    // Without any such header from the client, the gateway still says who it saw.
    let saw = upstream_saw(chat_as_client(&h, "mock-gpt-4o", &[]).await).await;
    assert_eq!(saw["x-forwarded-for"], "127.0.0.1", "{saw:?}");

    // A trusted proxy (loopback here): its values are kept and the gateway's hop appended.
    let config = base_config(h.mock.addr, "").replace("[server]\n", "[server]\ntrusted-proxies = [\"127.0.0.0/8\"]\n");
    let t = Harness::with_config_text(h.mock.clone(), &config).await;
    let host = t.gw.addr.to_string();
    let saw = upstream_saw(chat_as_client(&t, "mock-gpt-4o", &FORGED).await).await;
    assert_eq!(saw["x-forwarded-for"], "203.0.113.9, 127.0.0.1", "{saw:?}");
    assert_eq!(saw["x-forwarded-proto"], "https", "{saw:?}");
    assert_eq!(saw["x-forwarded-host"], "evil.example", "{saw:?}");
    assert_eq!(
        saw["forwarded"],
        format!("for=203.0.113.9;proto=https, for=127.0.0.1;proto=http;host=\"{host}\"").as_str(),
        "{saw:?}"
    );
    assert_eq!(saw["x-real-ip"], "203.0.113.9", "{saw:?}");
}

#[tokio::test]
async fn plugins_cannot_set_framing_or_hop_by_hop_headers() {
    let plugin = r#"
[plugins.edit]
kind = "rewrite"
path = "builtin:rewrite"
config = { set-headers = { "content-length" = "3", "host" = "evil.example", "transfer-encoding" = "chunked", "connection" = "x-ok", "x-ok" = "1" } }

[policy]
chain = ["edit"]
"#;
    let h = Harness::with(MockConfig::default(), plugin).await;
    // A plugin's content-length would cut the body to 3 bytes (the mock then answers 400).
    let r = h.post("/v1/chat/completions", CHAT).await;
    let saw = upstream_saw(r).await;
    assert_eq!(saw["x-ok"], "1", "other plugin headers still apply: {saw:?}");
    assert_eq!(saw["host"], h.mock.addr.to_string().as_str(), "{saw:?}");
    assert_ne!(saw.get("content-length").and_then(Value::as_str), Some("3"), "{saw:?}");
    assert!(!saw.contains_key("transfer-encoding"), "{saw:?}");
    assert_eq!(h.mock.recorded().pop().unwrap().body["model"], "mock-gpt-4o", "the whole body arrived");
}
