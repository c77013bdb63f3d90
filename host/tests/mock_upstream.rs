//! The mock upstream over real sockets: every endpoint, the SSE framing and timing, the
//! `x-mock-*` controls, cancellation accounting, h2c, and the request recorder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use wasmgate::mock::{MockConfig, MockServer, MockStatsSnapshot};

async fn start() -> MockServer {
    start_with(MockConfig::default()).await
}

async fn start_with(cfg: MockConfig) -> MockServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    MockServer::start(addr, cfg).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap()
}

fn chat_body(stream: bool) -> Value {
    json!({
        "model": "mock-gpt-4o",
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world!"}
        ]
    })
}

/// The `data:` payloads of an SSE body, in order.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event: {event:?}")).to_owned())
        .collect()
}

/// Poll the stats until `done` holds (bounded: 1.5 s).
async fn wait_for_stats(server: &MockServer, done: impl Fn(&MockStatsSnapshot) -> bool) {
    let deadline = Instant::now() + Duration::from_millis(1500);
    loop {
        let snapshot = server.stats.snapshot();
        if done(&snapshot) {
            return;
        }
        assert!(Instant::now() < deadline, "stats never settled: {snapshot:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn chat_non_stream_reports_usage_and_echoes_the_request() {
    let server = start().await;
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("x-test", "yes")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(body["model"], "mock-gpt-4o");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert!(body["system_fingerprint"].is_string());
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "alpha bravo charlie delta echo foxtrot golf hotel ");
    assert_eq!(choice["finish_reason"], "stop");
    // "be brief" + "hello world!" = 20 chars = 5 tokens; 8 words.
    assert_eq!(body["usage"], json!({"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13}));
    let echo = &body["mock_echo"];
    assert_eq!(echo["model"], "mock-gpt-4o");
    assert_eq!(echo["max_tokens"], Value::Null);
    assert_eq!(echo["messages"], chat_body(false)["messages"]);
    assert_eq!(echo["headers"]["x-test"], "yes");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert_eq!(server.stats.snapshot().requests, 1);
}

#[tokio::test]
async fn max_tokens_truncates_with_finish_reason_length() {
    let server = start().await;
    let mut request = chat_body(false);
    request["max_tokens"] = json!(3);
    let body: Value = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "alpha bravo charlie ");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert_eq!(body["mock_echo"]["max_tokens"], 3);
}

#[tokio::test]
async fn chat_stream_with_include_usage_follows_openai_order() {
    let server = start().await;
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("x-mock-chunks", "3")
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events = sse_data(&text);
    assert_eq!(events.len(), 1 + 3 + 1 + 1 + 1, "{text}");
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let id = chunks[0]["id"].clone();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["model"], "mock-gpt-4o");
    }
    // Role chunk, carrying the echo.
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    assert_eq!(chunks[0]["mock_echo"]["model"], "mock-gpt-4o");
    assert!(chunks[1].get("mock_echo").is_none());
    // Content chunks.
    let content: String = chunks[1..4].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert_eq!(content, "alpha bravo charlie ");
    // Finish chunk, then the usage chunk; earlier chunks carry "usage": null.
    assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    for chunk in &chunks[..5] {
        assert_eq!(chunk["usage"], Value::Null);
        assert!(chunk.as_object().unwrap().contains_key("usage"));
    }
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"], json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}));
    wait_for_stats(&server, |s| s.streams_started == 1 && s.streams_completed == 1 && s.in_flight == 0).await;
    assert_eq!(server.stats.snapshot().streams_cancelled, 0);
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_field() {
    let server = start().await;
    let mut request = chat_body(true);
    request.as_object_mut().unwrap().remove("stream_options");
    let text = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&request)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_data(&text);
    assert_eq!(events.len(), 1 + 8 + 1 + 1);
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert!(chunk.get("usage").is_none(), "{event}");
    }
}

#[tokio::test]
async fn first_chunk_arrives_before_the_stream_ends() {
    let server = start().await;
    let started = Instant::now();
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("x-mock-chunks", "5")
        .header("x-mock-chunk-interval-ms", "200")
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    let first = String::from_utf8(first.to_vec()).unwrap();
    assert!(first.starts_with("data: {"), "{first}");
    assert!(first.contains(r#""role":"assistant""#), "{first}");
    assert!(!first.contains("[DONE]"));
    let mut rest = String::new();
    while let Some(frame) = body.next().await {
        rest.push_str(std::str::from_utf8(&frame.unwrap()).unwrap());
    }
    let total = started.elapsed();
    assert!(rest.ends_with("data: [DONE]\n\n"));
    // Five intervals separate the role chunk from the last word: the first chunk must have
    // been observed well before the end.
    assert!(total >= Duration::from_millis(1000), "{total:?}");
    assert!(first_at + Duration::from_millis(600) < total, "{first_at:?} vs {total:?}");
}

#[tokio::test]
async fn legacy_completions_non_stream_and_stream() {
    let server = start().await;
    let url = format!("{}/completions", server.base_url());
    let body: Value = client()
        .post(&url)
        .header("x-mock-chunks", "2")
        .json(&json!({"model": "mock-gpt-4o-mini", "prompt": "Say this is a test", "max_tokens": 7}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "text_completion");
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-mock-"));
    assert_eq!(body["choices"][0]["text"], "alpha bravo ");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"], json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}));
    assert_eq!(body["mock_echo"]["prompt"], "Say this is a test");
    assert_eq!(body["mock_echo"]["max_tokens"], 7);

    let text = client()
        .post(&url)
        .header("x-mock-chunks", "2")
        .json(&json!({"model": "m", "prompt": "hi", "stream": true,
                      "stream_options": {"include_usage": true}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_data(&text);
    assert_eq!(events.len(), 2 + 1 + 1 + 1, "{text}");
    let chunks: Vec<Value> = events[..4].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks[0]["object"], "text_completion");
    assert_eq!(chunks[0]["choices"][0]["text"], "alpha ");
    assert_eq!(chunks[0]["mock_echo"]["prompt"], "hi");
    assert_eq!(chunks[1]["choices"][0]["text"], "bravo ");
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[3]["choices"], json!([]));
    assert_eq!(chunks[3]["usage"]["completion_tokens"], 2);
    assert_eq!(events[4], "[DONE]");
}

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors() {
    let server = start().await;
    let url = format!("{}/embeddings", server.base_url());
    let embed = |body: Value| {
        let request = client().post(&url).json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let one = embed(json!({"model": "mock-embedding", "input": "hello"})).await;
    assert_eq!(one["object"], "list");
    assert_eq!(one["model"], "mock-embedding");
    assert_eq!(one["data"][0]["object"], "embedding");
    assert_eq!(one["data"][0]["index"], 0);
    let vector: Vec<f64> = serde_json::from_value(one["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(vector.len(), 8);
    let norm: f64 = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    assert_eq!(one["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));

    let many = embed(json!({"model": "mock-embedding", "input": ["hello", "world"], "dimensions": 16})).await;
    let data = many["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 16);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    let again = embed(json!({"model": "mock-embedding", "input": ["hello", "world"], "dimensions": 16})).await;
    assert_eq!(again["data"], many["data"]);

    let tokens = embed(json!({"model": "mock-embedding", "input": [[1, 2, 3], [4]]})).await;
    assert_eq!(tokens["data"].as_array().unwrap().len(), 2);
    assert_eq!(tokens["usage"]["prompt_tokens"], 4);

    let b64 = embed(json!({"model": "mock-embedding", "input": "hello", "encoding_format": "base64"})).await;
    // 8 f32 = 32 bytes = 44 base64 characters.
    assert_eq!(b64["data"][0]["embedding"].as_str().unwrap().len(), 44);

    let bad = client()
        .post(&url)
        .json(&json!({"model": "mock-embedding", "input": "x", "dimensions": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["param"], "dimensions");
}

#[tokio::test]
async fn models_lists_the_configured_models() {
    let server = start_with(MockConfig { models: vec!["a".into(), "b".into()], ..MockConfig::default() }).await;
    let body: Value = client().get(format!("{}/models", server.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(body["data"][0]["object"], "model");
    assert_eq!(body["data"][0]["owned_by"], "wasmgate-mock");
    assert!(body["data"][0]["created"].is_u64());

    let one = client().get(format!("{}/models/b", server.base_url())).send().await.unwrap();
    assert_eq!(one.status(), 200);
    let missing = client().get(format!("{}/models/zzz", server.base_url())).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn health_and_stats_endpoints() {
    let server = start().await;
    let root = format!("http://{}", server.addr);
    let client = client(); // one keep-alive connection for both requests
    let health: Value = client.get(format!("{root}/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let stats: MockStatsSnapshot =
        client.get(format!("{root}/_mock/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        stats,
        MockStatsSnapshot { connections_accepted: 1, connections_open: 1, ..MockStatsSnapshot::default() }
    );
}

#[tokio::test]
async fn status_header_injects_openai_shaped_errors() {
    let server = start().await;
    let url = format!("{}/chat/completions", server.base_url());
    let response = client().post(&url).header("x-mock-status", "429").json(&chat_body(false)).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].is_string());
    assert!(body["error"].as_object().unwrap().contains_key("param"));

    let response = client().post(&url).header("x-mock-status", "503").json(&chat_body(true)).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");

    let response = client()
        .post(&url)
        .header("x-mock-status", "500")
        .header("x-mock-error-body", "upstream exploded")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), "upstream exploded");

    let response = client().post(&url).header("x-mock-status", "banana").json(&chat_body(false)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(server.stats.snapshot().streams_started, 0);
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_request_error() {
    let server = start().await;
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("JSON"));

    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&json!({"model": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "messages");
}

#[tokio::test]
async fn client_dropping_a_stalled_stream_counts_as_cancelled() {
    let server = start().await;
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("x-mock-stall", "body")
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().contains("mock_echo"));
    let stalled = tokio::time::timeout(Duration::from_millis(200), body.next()).await;
    assert!(stalled.is_err(), "the body should stall after the first chunk");
    assert_eq!(server.stats.snapshot().in_flight, 1);
    drop(body);
    wait_for_stats(&server, |s| s.streams_cancelled == 1 && s.in_flight == 0).await;
    let stats = server.stats.snapshot();
    assert_eq!((stats.streams_started, stats.streams_completed), (1, 0));
}

#[tokio::test]
async fn stalled_headers_hold_until_the_client_gives_up() {
    let server = start().await;
    let result = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("x-mock-stall", "headers")
        .timeout(Duration::from_millis(200))
        .json(&chat_body(false))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    wait_for_stats(&server, |s| s.requests == 1 && s.in_flight == 0).await;
}

#[tokio::test]
async fn latency_header_delays_the_response() {
    let server = start().await;
    let started = Instant::now();
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("x-mock-latency-ms", "150")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn h2c_prior_knowledge_serves_many_streams_on_one_connection() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let server = start().await;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let url: http::Uri = format!("{}/chat/completions", server.base_url()).parse().unwrap();
    let requests = (0..20).map(|i| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let body = chat_body(i % 2 == 0).to_string();
            let request = http::Request::post(url)
                .header("content-type", "application/json")
                .body(Full::new(bytes::Bytes::from(body)))
                .unwrap();
            let response = client.request(request).await.unwrap();
            assert_eq!(response.version(), http::Version::HTTP_2);
            assert_eq!(response.status(), 200);
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            if i % 2 == 0 {
                assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
            } else {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body["object"], "chat.completion");
            }
        }
    });
    futures_util::future::join_all(requests).await;
    let recorded = server.recorded();
    assert_eq!(recorded.len(), 20);
    // All twenty multiplexed over one h2c connection: the pseudo-header authority is kept,
    // but no `connection` header (h1-only) was ever received.
    assert!(recorded.iter().all(|r| !r.headers.contains_key("connection")));
    wait_for_stats(&server, |s| s.streams_completed == 10 && s.in_flight == 0).await;
}

#[tokio::test]
async fn recorded_requests_show_method_path_headers_and_body() {
    let server = start().await;
    client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("authorization", "Bearer sk-test")
        .header("x-tenant", "acme")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    client().get(format!("{}/models", server.base_url())).send().await.unwrap();
    let recorded = server.recorded();
    assert_eq!(recorded.len(), 2);
    let chat = &recorded[0];
    assert_eq!(chat.method, "POST");
    assert_eq!(chat.path, "/v1/chat/completions");
    assert_eq!(chat.headers["authorization"], "Bearer sk-test");
    assert_eq!(chat.headers["x-tenant"], "acme");
    assert_eq!(chat.body, chat_body(false));
    assert_eq!(recorded[1].path, "/v1/models");
    assert_eq!(recorded[1].body, Value::Null);

    let served: Vec<wasmgate::mock::RecordedRequest> =
        client().get(format!("http://{}/_mock/requests", server.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(served, recorded);
}

#[tokio::test]
async fn recording_can_be_switched_off() {
    let server = start_with(MockConfig { record: 0, ..MockConfig::default() }).await;
    client().post(format!("{}/chat/completions", server.base_url())).json(&chat_body(false)).send().await.unwrap();
    assert!(server.recorded().is_empty());
    assert_eq!(server.stats.snapshot().requests, 1);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_cuts_stalled_connections() {
    let server = start().await;
    let url = format!("{}/chat/completions", server.base_url());
    let stalled = tokio::spawn(client().post(&url).header("x-mock-stall", "headers").json(&chat_body(false)).send());
    wait_for_stats(&server, |s| s.in_flight == 1).await;
    server.shutdown();
    // The stalled request is cut after the grace period rather than hanging.
    let outcome = tokio::time::timeout(Duration::from_millis(1500), stalled)
        .await
        .expect("shutdown must end stalled connections");
    assert!(outcome.unwrap().is_err());
    let refused = client().get(format!("http://{}/health", server.addr)).send().await;
    assert!(refused.is_err());
}
