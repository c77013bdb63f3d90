//! Request path v2 through the real gateway: each plugin sees the request as the plugins before
//! it left it (body included), the finisher settles every path, `/v1/models` runs the pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::Duration;

use common::upstream::remaining_tokens;
use common::*;
use wasmgate::mock::MockConfig;
use wasmgate_test_plugins as art;

fn cache_dir() -> String {
    format!("{}/plugin-cache", env!("CARGO_TARGET_TMPDIR"))
}

/// Two body plugins, `redact` then `probe`, both looking for `SECRET`.
fn redact_then_probe(chain: &str) -> String {
    format!(
        r#"
[plugins.redact]
kind = "rewrite"
path = "{probe}"
body = true
config = {{ mode = "redact", word = "SECRET" }}

[plugins.probe]
kind = "rewrite"
path = "{probe}"
body = true
config = {{ mode = "probe", word = "SECRET" }}

[plugins.alias]
kind = "rewrite"
path = "builtin:rewrite"
config = {{ model-aliases = {{ fast = "mock-gpt-4o" }} }}

[policy]
chain = [{chain}]
cache-dir = "{cache}"
"#,
        probe = art::BODY_PROBE,
        cache = cache_dir()
    )
}

const SECRET_CHAT: &str = r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"my password is SECRET"}]}"#;

#[tokio::test]
async fn a_body_plugin_after_the_redaction_plugin_sees_the_redacted_body() {
    let h = Harness::with(MockConfig::default(), &redact_then_probe(r#""redact", "probe""#)).await;
    let r = h.post("/v1/chat/completions", SECRET_CHAT).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let seen = h.mock.recorded().pop().unwrap();
    assert_eq!(seen.headers.get("x-body-probe").map(String::as_str), Some("absent"), "{:?}", seen.headers);
    assert_eq!(seen.body["messages"][0]["content"], "my password is [redacted]");
    assert!(!seen.body.to_string().contains("SECRET"));
}

#[tokio::test]
async fn the_probe_alone_sees_the_clients_body() {
    // The control for the test above: the probe does see the word when nothing removed it.
    let h = Harness::with(MockConfig::default(), &redact_then_probe(r#""probe""#)).await;
    let r = h.post("/v1/chat/completions", SECRET_CHAT).await;
    assert_eq!(r.status(), 200);
    let seen = h.mock.recorded().pop().unwrap();
    assert_eq!(seen.headers.get("x-body-probe").map(String::as_str), Some("present"));
}

#[tokio::test]
async fn a_body_plugin_sees_the_model_an_earlier_plugin_set() {
    let h = Harness::with(MockConfig::default(), &redact_then_probe(r#""alias", "probe""#)).await;
    let r = h.post("/v1/chat/completions", r#"{"model":"fast","messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let seen = h.mock.recorded().pop().unwrap();
    assert_eq!(seen.headers.get("x-body-model").map(String::as_str), Some("mock-gpt-4o"));
    assert_eq!(seen.body["model"], "mock-gpt-4o");
}

/// A token limit of two reservations of `CHAT` (prompt estimate 4 + default max_tokens 1024).
fn token_limit(id: &str) -> String {
    format!(
        r#"
[plugins.{id}]
kind = "rate-limit"
path = "builtin:rate-limit"
config = {{ key = "global", tokens = {{ limit = 2056, window-ms = 3600000 }} }}

[policy]
chain = ["{id}"]
cache-dir = "{cache}"
"#,
        cache = cache_dir()
    )
}

#[tokio::test]
async fn reservations_of_requests_refused_after_the_chain_are_refunded() {
    let h = Harness::with(MockConfig::default(), &token_limit("refund-404")).await;
    // Each reserves 1028 tokens, then fails in the route phase (no such model). Without the
    // refund the third would already be refused by the limit.
    for _ in 0..4 {
        let r = h
            .post("/v1/chat/completions", r#"{"model":"nope","messages":[{"role":"user","content":"Hello there"}]}"#)
            .await;
        let status = r.status().as_u16();
        assert_eq!(status, 404, "{}", r.text().await.unwrap());
        // Settlements run in the background: let this one land before the next request.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = h.post("/v1/chat/completions", CHAT).await;
    assert_eq!(r.status(), 200);
    // Only this request's reservation is taken: everything before was given back.
    assert_eq!(remaining_tokens(&r), 2056 - 1028);
}

#[tokio::test]
async fn the_model_list_runs_the_pipeline_with_a_request_id_and_metrics() {
    let h = Harness::start().await;
    let r = h.http.get(h.url("/v1/models")).header("x-request-id", "models-rid-1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "models-rid-1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["data"].as_array().unwrap().iter().any(|m| m["id"] == "mock-gpt-4o"));
    let metrics = h.http.get(h.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("wasmgate_http_requests_total{") && l.contains("route=\"/v1/models\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_error_carries_its_request_id_and_is_counted_by_blame() {
    let h = Harness::start().await;
    let r = h.post("/v1/chat/completions", r#"{"model":"mock-gpt-4o","messages":"#).await;
    let rid = r.headers().get("x-request-id").cloned();
    let e = openai_error(r, 400).await;
    assert_eq!(e["code"], "invalid_json");
    assert!(rid.is_some());
    let metrics = h.http.get(h.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("wasmgate_request_errors_total{") && l.contains("blame=\"client\"")),
        "{metrics}"
    );
}
