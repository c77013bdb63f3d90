//! One slow reader must never stall others: clients that open a stream and stop reading, over
//! an HTTP/1 and an HTTP/2 (h2c) upstream, while normal requests still succeed; stalled streams
//! dropped after `client-stall-timeout`; an upstream gone silent ended by `chunk-idle-timeout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::{Duration, Instant};

use common::upstream::{metrics_text, sample, stalled_client};
use common::*;
use futures_util::future::join_all;
use wasmgate::mock::{MockConfig, MockServer};

/// Words per stalled stream: enough output (about 7 MB) to fill every buffer between the
/// gateway and a client that reads nothing, and then the upstream's flow-control windows.
const STALL_WORDS: &str = "40000";
const STALLED: usize = 50;
const STREAM: &str = r#"{"model":"mock-gpt-4o","stream":true,"messages":[{"role":"user","content":"Hello there"}]}"#;

async fn gateway(http2: bool, limits: &str) -> Harness {
    let mock = MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig { record: 0, ..MockConfig::default() })
        .await
        .unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin-listen = "127.0.0.1:0"
shutdown-grace = "1s"

[upstreams.mock]
endpoints = ["http://{}/v1"]
http2 = {http2}
first-byte-timeout = "10s"
{limits}

[[models]]
name = "mock-gpt-4o"
upstream = "mock"
"#,
        mock.addr
    );
    Harness::with_config_text(mock, &text).await
}

/// Opens `n` streams that are never read and waits until the upstream started them all.
async fn stall(h: &Harness, n: usize) -> Vec<tokio::net::TcpStream> {
    let headers = [("x-mock-chunks", STALL_WORDS)];
    let clients = join_all((0..n).map(|_| stalled_client(h.gw.addr, "/v1/chat/completions", &headers, STREAM))).await;
    assert!(
        eventually(Duration::from_secs(20), || h.mock.stats.snapshot().streams_started >= n as u64).await,
        "{:?}",
        h.mock.stats.snapshot()
    );
    // Let them fill every buffer and window they can.
    tokio::time::sleep(Duration::from_secs(2)).await;
    clients
}

/// A normal chat and a normal stream, each answered in full well within `bound`.
async fn normal_requests_succeed(h: &Harness, bound: Duration) {
    let started = Instant::now();
    let chats = (0..5).map(|_| async move {
        let resp = tokio::time::timeout(bound, h.post("/v1/chat/completions", CHAT)).await.expect("chat stalled");
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert!(v["choices"][0]["message"]["content"].is_string());
    });
    let streams = (0..5).map(|_| async move {
        let body =
            tokio::time::timeout(bound, async move { h.post("/v1/chat/completions", STREAM).await.text().await })
                .await
                .expect("stream stalled")
                .unwrap();
        assert_eq!(sse_data(&body).last().map(String::as_str), Some("[DONE]"), "{body}");
    });
    tokio::join!(join_all(chats), join_all(streams));
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
}

async fn stalled_readers_do_not_stall_others(http2: bool) {
    // A stall timeout far beyond the test: only the windows and lanes may keep others going.
    let h = gateway(http2, "client-stall-timeout = \"10m\"").await;
    let stalled = stall(&h, STALLED).await;
    normal_requests_succeed(&h, Duration::from_secs(10)).await;
    assert_eq!(h.mock.stats.snapshot().streams_cancelled, 0, "the stalled streams are still open");
    if http2 {
        let opened = h.mock.stats.snapshot().connections_accepted;
        assert!(opened >= 16, "streams spread over the endpoint's connections: {opened}");
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_do_not_stall_others_over_http1() {
    stalled_readers_do_not_stall_others(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_do_not_stall_others_over_http2() {
    stalled_readers_do_not_stall_others(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_streams_are_dropped_after_the_stall_timeout() {
    // Fewer clients: each must first push megabytes into the buffers before it counts as
    // stalled, and the 2-core test machine is shared.
    const DROPPED: usize = 10;
    let h = gateway(true, "client-stall-timeout = \"2s\"").await;
    let _stalled = stall(&h, DROPPED).await;
    assert!(
        eventually(Duration::from_secs(60), || h.mock.stats.snapshot().streams_cancelled >= DROPPED as u64).await,
        "the upstream streams of stalled clients must be cancelled: {:?}",
        h.mock.stats.snapshot()
    );
    let text = metrics_text(&h).await;
    assert_eq!(sample(&text, "wasmgate_stream_cutoffs_total", &["reason=\"client_stalled\""]), DROPPED as f64);
    assert_eq!(h.mock.stats.snapshot().in_flight, 0, "{:?}", h.mock.stats.snapshot());
    normal_requests_succeed(&h, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn an_upstream_that_goes_silent_mid_stream_is_ended_with_an_error_event() {
    let h = gateway(false, "chunk-idle-timeout = \"1s\"").await;
    let started = Instant::now();
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-mock-stall", "body")
        .body(STREAM)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let events = sse_data(&body);
    assert!(events.len() >= 2, "{body}");
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{body}");
    assert_eq!(last["error"]["type"], "upstream_error");
    assert!(last["error"]["message"].as_str().unwrap().contains("sent nothing for 1s"), "{last}");
    assert!(last["error"].get("param").is_some());
    let text = metrics_text(&h).await;
    assert_eq!(sample(&text, "wasmgate_stream_cutoffs_total", &["reason=\"upstream_idle\""]), 1.0);
    assert!(eventually(Duration::from_secs(5), || h.mock.stats.snapshot().streams_cancelled == 1).await);
}
