//! Token quotas settle what a request really cost, however it ends: an abandoned stream is
//! charged the output it received, a client that leaves before the upstream answers still
//! settles, a settlement lands in its reservation's window, and every string of the request
//! counts in the prompt estimate. Through the real gateway with `builtin:rate-limit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::upstream::{remaining_tokens, wait_for_plugin_calls};
use common::*;
use futures_util::StreamExt;
use wasmgate::mock::MockConfig;

const LIMIT: u64 = 1_000_000;
/// `CHAT`'s reservation: prompt estimate 4 (4 + 11 bytes) + the default 1024 `max_tokens`.
const CHAT_RESERVATION: u64 = 1028;

/// Each test names its plugin: metrics are process-wide and the tests run in parallel.
fn config(id: &str, tokens: &str) -> String {
    format!(
        r#"
[plugins.{id}]
kind = "rate-limit"
path = "builtin:rate-limit"
config = {{ key = "global", tokens = {tokens} }}

[policy]
chain = ["{id}"]
cache-dir = "{}/plugin-cache"
"#,
        env!("CARGO_TARGET_TMPDIR")
    )
}

async fn gateway(id: &str, tokens: &str) -> Harness {
    Harness::with(MockConfig::default(), &config(id, tokens)).await
}

async fn chat(h: &Harness, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = h.http.post(h.url("/v1/chat/completions")).header("content-type", "application/json");
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    r.body(body.to_string()).send().await.unwrap()
}

/// What the global token counter holds now, learnt from a `CHAT` request's admission.
async fn used_before_chat(h: &Harness) -> u64 {
    let resp = chat(h, CHAT, &[]).await;
    assert_eq!(resp.status(), 200);
    LIMIT - CHAT_RESERVATION - remaining_tokens(&resp)
}

#[tokio::test]
async fn an_abandoned_long_stream_is_charged_the_output_it_received() {
    let h = gateway("abort", &format!("{{ limit = {LIMIT}, window-ms = 86400000 }}")).await;
    let stream_body = r#"{"model":"mock-gpt-4o","stream":true,"messages":[{"role":"user","content":"Hello there"}]}"#;
    // 3,000 words, 1 ms apart: the upstream is still generating when the client leaves.
    let resp = chat(&h, stream_body, &[("x-mock-chunks", "3000"), ("x-mock-chunk-interval-ms", "1")]).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let (mut text, mut words) = (String::new(), 0usize);
    while words < 2900 {
        let chunk = body.next().await.expect("stream ended early").unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            if text[..end].contains(r#""content":""#) && !text[..end].contains(r#""content":"""#) {
                words += 1;
            }
            text.drain(..end + 2);
        }
    }
    drop(body); // disconnect before the usage chunk
    assert_eq!(wait_for_plugin_calls(&h, "abort", 2).await, 2, "admit + settle");

    let charged = used_before_chat(&h).await;
    // At least the prompt and the 2,900 words received; at most the 3,000 words at the
    // estimator's 4 bytes a token (the mock's words are 4 to 9 bytes).
    assert!(charged >= 4 + 2900, "charged {charged}, the reservation was {CHAT_RESERVATION}");
    assert!(charged <= 4 + 3000 * 9 / 4, "charged {charged}");
}

#[tokio::test]
async fn a_client_that_leaves_while_the_upstream_thinks_still_settles() {
    let h = gateway("early", &format!("{{ limit = {LIMIT}, window-ms = 86400000 }}")).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(400)).build().unwrap();
    let sent = impatient
        .post(h.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-mock-latency-ms", "5000")
        .body(CHAT)
        .send()
        .await;
    assert!(sent.is_err(), "the client gave up before the headers");
    // Before, the reservation's owner was dropped unsettled with the request future.
    assert_eq!(wait_for_plugin_calls(&h, "early", 2).await, 2, "admit + settle");
    let charged = used_before_chat(&h).await;
    assert_eq!(charged, CHAT_RESERVATION, "an abort without output keeps the reservation");
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[tokio::test]
async fn a_request_spanning_a_window_boundary_settles_in_its_own_window() {
    const WINDOW: u64 = 6000;
    let h = gateway("window", &format!("{{ limit = {LIMIT}, window-ms = {WINDOW} }}")).await;
    assert_eq!(chat(&h, CHAT, &[]).await.status(), 200); // instantiate the plugin
    wait_for_plugin_calls(&h, "window", 2).await;

    // A: admitted 1 s before the window ends, answered 0.9 s into the next one (within the
    // harness's 2 s first-byte timeout).
    let phase = now_ms() % WINDOW;
    tokio::time::sleep(Duration::from_millis((WINDOW - 1000 + WINDOW - phase) % WINDOW)).await;
    let window_a = now_ms() / WINDOW;
    let a_body = r#"{"model":"mock-gpt-4o","max_tokens":1000,"messages":[{"role":"user","content":"Hello there"}]}"#;
    let a = {
        let (http, url) = (h.http.clone(), h.url("/v1/chat/completions"));
        tokio::spawn(async move {
            let r = http.post(url).header("content-type", "application/json").header("x-mock-latency-ms", "1900");
            r.body(a_body).send().await.unwrap().status()
        })
    };
    // B: early in the next window, before A settles: 503 tokens (3 prompt + 500 words).
    tokio::time::sleep(Duration::from_millis(WINDOW - now_ms() % WINDOW + 150)).await;
    let window_b = now_ms() / WINDOW;
    assert_eq!(chat(&h, CHAT, &[("x-mock-chunks", "500")]).await.status(), 200);
    assert_eq!(a.await.unwrap(), 200);
    // A's settlement refunds 1004 - 11: it must not free tokens of B's window.
    assert_eq!(wait_for_plugin_calls(&h, "window", 6).await, 6);
    let used = used_before_chat(&h).await;
    let window_c = now_ms() / WINDOW;
    assert!(
        window_a + 1 == window_b && window_b == window_c,
        "timing precondition failed (machine too slow): windows {window_a} {window_b} {window_c}"
    );
    assert_eq!(used, 503, "window of B holds exactly B's settled cost");
}

/// The `Requested N` of a 429 from a quota too small for any request.
async fn requested(h: &Harness, body: &str) -> u64 {
    let e = openai_error(chat(h, body, &[]).await, 429).await;
    let msg = e["message"].as_str().unwrap();
    let n = msg.split("Requested ").nth(1).unwrap_or_else(|| panic!("{msg}"));
    n.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn tools_and_schemas_raise_the_prompt_estimate() {
    let h = gateway("tools", "{ limit = 1, window-ms = 86400000 }").await;
    let plain = r#"{"model":"mock-gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"Hello there"}]}"#;
    let description = "Looks a city up in the atlas. ".repeat(150); // 4,500 bytes
    let with_tools = format!(
        r#"{{"model":"mock-gpt-4o","max_tokens":10,"messages":[{{"role":"user","content":"Hello there"}}],"tools":[{{"type":"function","function":{{"name":"lookup","description":"{description}","parameters":{{"type":"object","properties":{{"city":{{"type":"string"}}}}}}}}}}]}}"#
    );
    let (a, b) = (requested(&h, plain).await, requested(&h, &with_tools).await);
    assert_eq!(a, 4 + 10);
    assert!(b >= a + 4500 / 4, "the tools must be reserved for: {a} → {b}");
}
