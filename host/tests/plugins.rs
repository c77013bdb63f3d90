//! The reference plugins and hostile plugins through the real gateway, over sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use wasmgate::mock::MockConfig;
use wasmgate_test_plugins as art;

const KEY: &str = "sk-test-alice";
// sha256("sk-test-alice")
fn key_hash() -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(KEY.as_bytes()))
}

/// Precompiled plugins are shared by every test (and exercise the disk cache).
fn cache_dir() -> String {
    format!("{}/plugin-cache", env!("CARGO_TARGET_TMPDIR"))
}

fn plugin(id: &str, kind: &str, path: &str, extra: &str) -> String {
    format!("\n[plugins.{id}]\nkind = \"{kind}\"\npath = \"{path}\"\n{extra}\n")
}

fn chain(ids: &[&str]) -> String {
    let list: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
    format!("\n[policy]\nchain = [{}]\ncache-dir = \"{}\"\n", list.join(", "), cache_dir())
}

fn auth_plugin() -> String {
    plugin(
        "auth",
        "auth",
        art::AUTH_KEYS,
        &format!(
            "config.keys = [{{ sha256 = \"{}\", subject = \"alice\", tenant = \"acme\", metadata = {{ plan = \"pro\" }} }}]",
            key_hash()
        ),
    )
}

async fn chat_as(h: &Harness, key: Option<&str>, body: &str) -> reqwest::Response {
    let mut r =
        h.http.post(h.url("/v1/chat/completions")).header("content-type", "application/json").body(body.to_string());
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn auth_keys_allows_known_keys_and_refuses_others_with_401() {
    let h = Harness::with(MockConfig::default(), &(auth_plugin() + &chain(&["auth"]))).await;

    let e = openai_error(chat_as(&h, None, CHAT).await, 401).await;
    assert_eq!(e["code"], "invalid_api_key");
    let r = chat_as(&h, Some("sk-wrong"), CHAT).await;
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    let e = openai_error(r, 401).await;
    assert_eq!(e["code"], "invalid_api_key");
    assert_eq!(e["message"], "Incorrect API key provided.");
    assert_eq!(h.mock.stats.snapshot().requests, 0, "refused requests must not reach the upstream");

    let r = chat_as(&h, Some(KEY), CHAT).await;
    assert_eq!(r.status(), 200);
    let last = h.mock.recorded().pop().unwrap();
    assert_eq!(last.headers.get("x-wasmgate-subject").map(String::as_str), Some("alice"));
    assert_eq!(last.headers.get("x-wasmgate-tenant").map(String::as_str), Some("acme"));
    assert!(!last.headers.contains_key("authorization"));
}

#[tokio::test]
async fn rewrite_aliases_caps_prepends_and_edits_headers() {
    let rw = plugin(
        "rw",
        "rewrite",
        art::REWRITE,
        r#"config = { model-aliases = { fast = "mock-gpt-4o" }, default-max-tokens = 100, max-tokens-cap = 200, system-prompt = "Be brief.", set-headers = { x-team = "blue" }, remove-headers = ["x-debug"], deny-models = ["forbidden-*"] }"#,
    );
    let h = Harness::with(MockConfig::default(), &(rw + &chain(&["rw"]))).await;

    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("x-debug", "1")
        .body(r#"{"model":"fast","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let last = h.mock.recorded().pop().unwrap();
    assert_eq!(last.body["model"], "mock-gpt-4o");
    assert_eq!(last.body["max_tokens"], 100);
    assert_eq!(last.body["messages"][0], serde_json::json!({"role": "system", "content": "Be brief."}));
    assert_eq!(last.body["messages"][1]["content"], "hi");
    assert_eq!(last.headers.get("x-team").map(String::as_str), Some("blue"));
    assert!(!last.headers.contains_key("x-debug"));

    h.post("/v1/chat/completions", r#"{"model":"fast","max_tokens":5000,"messages":[{"role":"user","content":"hi"}]}"#)
        .await;
    assert_eq!(h.mock.recorded().pop().unwrap().body["max_tokens"], 200);

    let e = openai_error(
        h.post("/v1/chat/completions", r#"{"model":"forbidden-x","messages":[{"role":"user","content":"hi"}]}"#).await,
        403,
    )
    .await;
    assert_eq!(e["code"], "model_not_allowed");
    assert_eq!(e["param"], "model");
}

fn limits(extra: &str) -> String {
    plugin("limits", "rate-limit", art::RATE_LIMIT, extra)
}

#[tokio::test]
async fn rate_limit_sets_openai_headers_and_answers_429_over_the_limit() {
    let cfg = auth_plugin()
        + &limits(r#"config = { key = "identity", requests = { limit = 2, window-ms = 86400000 } }"#)
        + &chain(&["auth", "limits"]);
    let h = Harness::with(MockConfig::default(), &cfg).await;
    for remaining in ["1", "0"] {
        let r = chat_as(&h, Some(KEY), CHAT).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit-requests"], "2");
        assert_eq!(r.headers()["x-ratelimit-remaining-requests"], remaining);
        assert!(r.headers().contains_key("x-ratelimit-reset-requests"));
    }
    let r = chat_as(&h, Some(KEY), CHAT).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "0");
    let e = openai_error(r, 429).await;
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert_eq!(h.mock.stats.snapshot().requests, 2);
}

#[tokio::test]
async fn rate_limit_by_client_ip_counts_the_tcp_peer_not_a_forwarded_for_header() {
    let cfg = limits(r#"config = { key = "client-ip", requests = { limit = 1, window-ms = 86400000 } }"#)
        + &chain(&["limits"]);
    let h = Harness::with(MockConfig::default(), &cfg).await;
    assert_eq!(h.post("/v1/chat/completions", CHAT).await.status(), 200);
    // A client cannot dodge the limit by claiming another address.
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("x-forwarded-for", "198.51.100.9")
        .body(CHAT.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(openai_error(r, 429).await["code"], "rate_limit_exceeded");
    // Another address has its own count (127.0.0.2 is loopback too on Linux).
    let other =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let r = other.post(h.url("/v1/chat/completions")).body(CHAT.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn tokens_reserved_at_admission_are_settled_with_the_real_usage_after_a_stream() {
    let cfg = auth_plugin()
        + &limits(r#"config = { key = "identity", tokens = { limit = 100000, window-ms = 86400000 } }"#)
        + &chain(&["auth", "limits"]);
    let h = Harness::with(MockConfig { chunks: 4, ..MockConfig::default() }, &cfg).await;
    let body = r#"{"model":"mock-gpt-4o","stream":true,"max_tokens":500,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello there"}]}"#;
    let r = chat_as(&h, Some(KEY), body).await;
    assert_eq!(r.status(), 200);
    let remaining1: u64 = r.headers()["x-ratelimit-remaining-tokens"].to_str().unwrap().parse().unwrap();
    let reserved = 100000 - remaining1;
    assert!(reserved >= 500, "reservation covers max_tokens: {reserved}");
    let text = r.text().await.unwrap();
    let data = sse_data(&text);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    let used = usage["usage"]["total_tokens"].as_u64().unwrap();
    assert!(used < reserved);

    // Settling runs in the background once the stream ended.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = chat_as(&h, Some(KEY), body).await;
    let remaining2: u64 = r.headers()["x-ratelimit-remaining-tokens"].to_str().unwrap().parse().unwrap();
    drop(r);
    // Without settling this would be 100000 - 2 * reserved.
    assert_eq!(remaining2, 100000 - used - reserved, "first request must be charged its real usage");
}

#[tokio::test]
async fn refused_requests_refund_their_reservation() {
    // The rewrite after rate-limit refuses the model: the reservation must not stay charged.
    let cfg = limits(
        r#"config = { key = "global", requests = { limit = 1000, window-ms = 86400000 }, tokens = { limit = 100000, window-ms = 86400000 } }"#,
    ) + &plugin("deny", "rewrite", art::REWRITE, r#"config = { deny-models = ["nope"] }"#)
        + &chain(&["limits", "deny"]);
    let h = Harness::with(MockConfig::default(), &cfg).await;
    let denied = r#"{"model":"nope","max_tokens":1000,"messages":[{"role":"user","content":"x"}]}"#;
    for _ in 0..3 {
        assert_eq!(h.post("/v1/chat/completions", denied).await.status(), 403);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = h
        .post(
            "/v1/chat/completions",
            r#"{"model":"mock-gpt-4o","max_tokens":1000,"messages":[{"role":"user","content":"x"}]}"#,
        )
        .await;
    let remaining: u64 = r.headers()["x-ratelimit-remaining-tokens"].to_str().unwrap().parse().unwrap();
    assert!(remaining > 100000 - 2 * 1010, "denied requests kept their reservation: {remaining}");
}

/// A chain of one hostile rewrite plugin, fail-closed or fail-open.
async fn hostile(id: &str, path: &str, failure: &str, extra: &str) -> Harness {
    let p = plugin(id, "rewrite", path, &format!("failure = \"{failure}\"\n{extra}"));
    Harness::with(MockConfig::default(), &(p + &chain(&[id]))).await
}

async fn metric(h: &Harness, needle: &str) -> bool {
    let text = h.http.get(h.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    let found = text.lines().any(|l| l.contains(needle));
    if !found {
        let related: Vec<&str> = text.lines().filter(|l| l.contains("wasmgate_plugin_calls_total")).collect();
        eprintln!("metric `{needle}` not found; hostile plugin metrics:\n{}", related.join("\n"));
    }
    found
}

#[tokio::test]
async fn trapping_looping_and_memory_bomb_plugins_end_only_their_own_call() {
    for (id, path, kind, extra) in [
        ("trap", art::TRAP, "trap", ""),
        ("loop", art::BUSY_LOOP, "timeout", "timeout = \"30ms\""),
        ("bomb", art::MEMORY_BOMB, "memory", "memory-limit-mib = 16"),
        ("huge-small", art::HUGE_OUTPUT, "memory", "memory-limit-mib = 32"),
        ("huge-big", art::HUGE_OUTPUT, "bad_output", "memory-limit-mib = 256\ntimeout = \"5s\""),
    ] {
        let h = hostile(id, path, "fail-closed", extra).await;
        for _ in 0..3 {
            let e = openai_error(h.post("/v1/chat/completions", CHAT).await, 503).await;
            assert_eq!(e["code"], "policy_unavailable", "{path}");
            let msg = e["message"].as_str().unwrap();
            assert!(msg.contains(&format!("`{id}`")), "message must name the plugin: {msg}");
            assert!(!msg.contains("wasm") && !msg.contains("backtrace"), "no internals: {msg}");
        }
        assert!(
            metric(&h, &format!(r#"wasmgate_plugin_calls_total{{plugin="{id}",result="{kind}"}}"#)).await,
            "{path}: expected failures of kind {kind}"
        );
        assert_eq!(h.http.get(h.url("/health")).send().await.unwrap().status(), 200, "gateway must stay up");
        assert_eq!(h.mock.stats.snapshot().requests, 0, "{path}: nothing forwarded");

        let h = hostile(&format!("{id}-open"), path, "fail-open", extra).await;
        let r = h.post("/v1/chat/completions", CHAT).await;
        assert_eq!(r.status(), 200, "{path}: fail-open skips the plugin");
    }
}

#[tokio::test]
async fn a_crash_looping_plugin_opens_its_breaker() {
    let h = hostile("crasher", art::TRAP, "fail-closed", "").await;
    for _ in 0..8 {
        let e = openai_error(h.post("/v1/chat/completions", CHAT).await, 503).await;
        assert_eq!(e["code"], "policy_unavailable");
    }
    assert!(metric(&h, r#"wasmgate_plugin_calls_total{plugin="crasher",result="breaker_open"}"#).await);
}

async fn load_error(path: &str, kind: &str) -> String {
    let mock = wasmgate::mock::MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig::default()).await.unwrap();
    let text = base_config(mock.addr, &(plugin("bad", kind, path, "") + &chain(&["bad"])));
    let config = wasmgate::config::Config::parse(&text, None).unwrap();
    match wasmgate::server::Snapshot::from_config(config).await {
        Ok(_) => panic!("{path} should not load"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn plugins_that_cannot_load_are_rejected_with_a_message_naming_them() {
    let e = load_error(art::BAD_CONFIGURE, "rewrite").await;
    assert!(e.contains("`bad`") && e.contains("bad-configure: this plugin always refuses its config"), "{e}");
    let e = load_error(art::WRONG_WORLD, "rewrite").await;
    assert!(e.contains("`bad`") && e.contains("does not implement a wasmgate:policy world"), "{e}");
    let e = load_error(art::AUTH_KEYS, "rewrite").await;
    assert!(e.contains("implements world `wasmgate:policy/auth`"), "{e}");
    let e = load_error("/definitely/not/here.wasm", "rewrite").await;
    assert!(e.contains("cannot read"), "{e}");
    let e = load_error(art::REWRITE, "rate-limit").await;
    assert!(e.contains("configured as kind `rate-limit`"), "{e}");
}
