//! The fast path over real sockets: gateway ↔ mock upstream, no plugins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use wasmgate::mock::MockConfig;

#[tokio::test]
async fn health_ready_and_models() {
    let h = Harness::start().await;
    let r = h.http.get(h.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    assert_eq!(h.http.get(h.url("/ready")).send().await.unwrap().status(), 200);
    let models: Value = h.http.get(h.url("/v1/models")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["mock-gpt-4o", "mock-embedding"]);
    assert_eq!(models["object"], "list");
}

#[tokio::test]
async fn chat_completions_and_embeddings_are_forwarded() {
    let h = Harness::start().await;
    let r = h.post("/v1/chat/completions", CHAT).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "mock-gpt-4o");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let r = h.post("/v1/completions", r#"{"model":"mock-gpt-4o","prompt":"Say hi"}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["object"], "text_completion");

    let r = h.post("/v1/embeddings", r#"{"model":"mock-embedding","input":["a","b"],"dimensions":4}"#).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn unknown_fields_reach_the_upstream_untouched_and_credentials_do_not() {
    let h = Harness::start().await;
    let body = r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"x","name":"n1"}],"seed":42,"future_param":{"a":[1,2]}}"#;
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer client-key-must-not-leak")
        .header("x-custom", "kept")
        .header("x-wasmgate-subject", "forged")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = h.mock.recorded();
    let last = rec.last().unwrap();
    assert_eq!(last.body["seed"], 42);
    assert_eq!(last.body["future_param"], json!({"a": [1, 2]}));
    assert_eq!(last.body["messages"][0]["name"], "n1");
    assert_eq!(last.headers.get("x-custom").map(String::as_str), Some("kept"));
    assert!(!last.headers.contains_key("authorization"), "client credentials leaked upstream");
    assert!(!last.headers.contains_key("x-wasmgate-subject"), "forged identity header forwarded");
}

#[tokio::test]
async fn prefix_routes_rename_the_model_upstream() {
    let h = Harness::start().await;
    let r =
        h.post("/v1/chat/completions", r#"{"model":"family-large","messages":[{"role":"user","content":"x"}]}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.mock.recorded().last().unwrap().body["model"], "mock-gpt-4o");
}

#[tokio::test]
async fn streams_are_relayed_chunk_by_chunk() {
    let cfg = MockConfig { chunks: 5, chunk_interval: Duration::from_millis(150), ..MockConfig::default() };
    let h = Harness::with(cfg, "").await;
    let started = Instant::now();
    let r = h
        .post(
            "/v1/chat/completions",
            r#"{"model":"mock-gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut stream = r.bytes_stream();
    let mut body = String::new();
    let mut first_chunk_at = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if first_chunk_at.is_none() && String::from_utf8_lossy(&chunk).contains("data: ") {
            first_chunk_at = Some(started.elapsed());
        }
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    let total = started.elapsed();
    // 5 chunks 150 ms apart: the stream takes ≥ 600 ms; the first event must come well before the end.
    let first = first_chunk_at.unwrap();
    assert!(total >= Duration::from_millis(600), "{total:?}");
    assert!(first + Duration::from_millis(400) < total, "first chunk at {first:?}, end at {total:?}: buffered?");
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    // The gateway asked the upstream for usage (to settle tokens) but the client did not: it is hidden.
    assert_eq!(h.mock.recorded().last().unwrap().body["stream_options"]["include_usage"], true);
    for d in &data[..data.len() - 1] {
        let v: Value = serde_json::from_str(d).unwrap();
        assert!(!v["choices"].as_array().unwrap().is_empty(), "usage-only chunk leaked: {d}");
    }
}

#[tokio::test]
async fn stream_usage_reaches_clients_that_ask_for_it() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/v1/chat/completions",
            r#"{"model":"mock-gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    let body = r.text().await.unwrap();
    let data = sse_data(&body);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(usage["choices"], json!([]));
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let cfg = MockConfig { chunks: 50, chunk_interval: Duration::from_millis(100), ..MockConfig::default() };
    let h = Harness::with(cfg, "").await;
    let r = h
        .post(
            "/v1/chat/completions",
            r#"{"model":"mock-gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    let mut stream = r.bytes_stream();
    let _first = stream.next().await.unwrap().unwrap();
    assert!(eventually(Duration::from_secs(2), || h.mock.stats.snapshot().streams_started == 1).await);
    drop(stream);
    let stats = &h.mock.stats;
    assert!(
        eventually(Duration::from_secs(3), || stats.snapshot().streams_cancelled == 1).await,
        "upstream stream was not cancelled: {:?}",
        stats.snapshot()
    );
    assert_eq!(stats.snapshot().streams_completed, 0);
}

#[tokio::test]
async fn bad_requests_get_openai_errors_naming_the_problem() {
    let h = Harness::start().await;
    let e =
        openai_error(h.post("/v1/chat/completions", "{\"model\": \"mock-gpt-4o\",\n \"messages\": [").await, 400).await;
    assert_eq!(e["code"], "invalid_json");
    assert!(e["message"].as_str().unwrap().contains("line 2"), "{e}");

    let e = openai_error(h.post("/v1/chat/completions", r#"{"messages":[{"role":"user","content":"x"}]}"#).await, 400)
        .await;
    assert_eq!(e["param"], "model");

    let e = openai_error(
        h.post("/v1/chat/completions", r#"{"model":"mock-gpt-4o","messages":[{"role":"wizard","content":"x"}]}"#).await,
        400,
    )
    .await;
    assert_eq!(e["param"], "messages[0].role");

    let e = openai_error(
        h.post(
            "/v1/chat/completions",
            r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"x"}],"top_p":7}"#,
        )
        .await,
        400,
    )
    .await;
    assert_eq!(e["param"], "top_p");

    let big = format!(r#"{{"model":"mock-gpt-4o","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(70_000));
    let e = openai_error(h.post("/v1/chat/completions", &big).await, 413).await;
    assert_eq!(e["code"], "request_too_large");

    let e = openai_error(
        h.post("/v1/chat/completions", r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#).await,
        404,
    )
    .await;
    assert_eq!(e["code"], "model_not_found");

    let e = openai_error(h.http.get(h.url("/v2/whatever")).send().await.unwrap(), 404).await;
    assert_eq!(e["code"], "unknown_url");
    let e = openai_error(h.http.get(h.url("/v1/chat/completions")).send().await.unwrap(), 405).await;
    assert_eq!(e["code"], "method_not_allowed");
}

#[tokio::test]
async fn upstream_errors_pass_through_with_status_and_body() {
    let h = Harness::start().await;
    let r = h.http.post(h.url("/v1/chat/completions")).header("x-mock-status", "429").body(CHAT).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_slow_upstream_is_504() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let extra = format!(
        r#"
[upstreams.dead]
endpoints = ["http://{closed}/v1"]
[[models]]
name = "dead-model"
upstream = "dead"
"#
    );
    let h = Harness::with(MockConfig::default(), &extra).await;
    let e = openai_error(
        h.post("/v1/chat/completions", r#"{"model":"dead-model","messages":[{"role":"user","content":"x"}]}"#).await,
        502,
    )
    .await;
    assert_eq!(e["code"], "upstream_unreachable");
    assert!(!e["message"].as_str().unwrap().contains(&closed.to_string()), "internal address leaked: {e}");

    // The mock never sends headers: the 2 s first-byte timeout answers 504.
    let r =
        h.http.post(h.url("/v1/chat/completions")).header("x-mock-stall", "headers").body(CHAT).send().await.unwrap();
    let e = openai_error(r, 504).await;
    assert_eq!(e["code"], "upstream_timeout");
}

#[tokio::test]
async fn connect_failures_fail_over_to_the_next_endpoint() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let extra = r#"
[upstreams.pair]
endpoints = ["http://CLOSED/v1", "http://{MOCK}/v1"]
[[models]]
name = "pair-model"
upstream = "pair"
"#
    .replace("CLOSED", &closed.to_string());
    let h = Harness::with(MockConfig::default(), &extra).await;
    for _ in 0..4 {
        let r = h
            .post("/v1/chat/completions", r#"{"model":"pair-model","messages":[{"role":"user","content":"x"}]}"#)
            .await;
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let h = Harness::start().await;
    h.post("/v1/chat/completions", CHAT).await;
    h.post("/v1/chat/completions", "{").await;
    let text = h.http.get(h.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"wasmgate_http_requests_total{route="/v1/chat/completions",status="200"}"#), "{text}");
    assert!(text.contains(r#"wasmgate_http_requests_total{route="/v1/chat/completions",status="400"}"#), "{text}");
    assert!(text.contains("wasmgate_upstream_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn shutdown_lets_open_streams_finish() {
    let cfg = MockConfig { chunks: 6, chunk_interval: Duration::from_millis(100), ..MockConfig::default() };
    let h = Harness::with(cfg, "").await;
    let r = h
        .post(
            "/v1/chat/completions",
            r#"{"model":"mock-gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(r.status(), 200);
    let addr = h.gw.addr;
    let Harness { gw, mock, http } = h;
    let shutdown = tokio::spawn(gw.shutdown());
    let body = r.text().await.unwrap();
    assert_eq!(sse_data(&body).last().unwrap(), "[DONE]", "stream cut by shutdown");
    shutdown.await.unwrap();
    // New connections are refused once shut down.
    assert!(http.get(format!("http://{addr}/health")).send().await.is_err());
    mock.shutdown();
}
