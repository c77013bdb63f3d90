//! The connection layer over real sockets: hostile and idle clients are cut within their
//! deadlines, the connection cap sheds idle connections first, and h1 / h2c still work.
//! After each case the gateway still answers `/health` and a chat completion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::Duration;

use common::conn::{
    assert_healthy, closed_within, connect, h2c_client, h2c_post, harness_with_server, read_until, trickle,
};
use common::{CHAT, sse_data};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// Short deadlines so the cases are fast; the bounds below are generous (noisy 2-core box).
const FAST: &str = r#"header-read-timeout = "1s"
idle-timeout = "3s"
body-timeout = "2s""#;
/// Closed well within this, or the deadline did not work (before the fix: open > 30 s).
const BOUND: Duration = Duration::from_secs(8);

#[tokio::test]
async fn slowloris_head_is_closed_within_the_header_deadline() {
    let h = harness_with_server(FAST).await;
    let (mut read, write) = connect(h.gw.addr).await;
    let head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n".to_vec();
    // 1 byte / 0.5 s: the head would take 40 s.
    trickle(write, head, Duration::from_millis(500));
    let closed = closed_within(&mut read, BOUND).await.expect("slow head still open");
    assert!(closed >= Duration::from_millis(500), "closed before the deadline: {closed:?}");
    assert_healthy(&h).await;
}

#[tokio::test]
async fn a_silent_socket_is_closed() {
    let h = harness_with_server(FAST).await;
    let (mut read, _write) = connect(h.gw.addr).await;
    closed_within(&mut read, BOUND).await.expect("silent socket still open");
    assert_healthy(&h).await;
}

#[tokio::test]
async fn a_partial_h2_preface_is_closed() {
    let h = harness_with_server(FAST).await;
    let (mut read, mut write) = connect(h.gw.addr).await;
    // 23 of the preface's 24 bytes: protocol detection waits for one more.
    write.write_all(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..23]).await.unwrap();
    closed_within(&mut read, BOUND).await.expect("partial preface still open");
    assert_healthy(&h).await;
}

#[tokio::test]
async fn an_idle_h1_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let h = harness_with_server(FAST).await;
    let (mut read, mut write) = connect(h.gw.addr).await;
    write.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let got = read_until(&mut read, r#"{"status":"ok"}"#, BOUND).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let idle = closed_within(&mut read, BOUND).await.expect("idle keep-alive connection still open");
    // The idle timeout (3 s), not the head deadline (1 s), governs a connection that was used.
    assert!(idle >= Duration::from_secs(2), "closed after {idle:?}");
    assert_healthy(&h).await;
}

#[tokio::test]
async fn an_idle_h2_connection_is_closed_after_the_idle_timeout() {
    let h = harness_with_server(FAST).await;
    let stream = tokio::net::TcpStream::connect(h.gw.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<bytes::Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(h.url("/health")).body(http_body_util::Empty::new()).unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    let start = Instant::now();
    // The connection future ends when the gateway sends GOAWAY and closes.
    tokio::time::timeout(BOUND, conn).await.expect("idle h2 connection still open").unwrap().ok();
    assert!(start.elapsed() >= Duration::from_secs(2), "closed after {:?}", start.elapsed());
    assert_healthy(&h).await;
}

#[tokio::test]
async fn a_trickled_body_gets_408_within_the_body_deadline() {
    let h = harness_with_server(FAST).await;
    let (mut read, mut write) = connect(h.gw.addr).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        CHAT.len()
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    // 1 byte/s: each byte arrives well within any per-chunk timeout; the total must cut it.
    trickle(write, CHAT.as_bytes().to_vec(), Duration::from_secs(1));
    let got = read_until(&mut read, "request_timeout", BOUND).await;
    let took = start.elapsed();
    assert!(got.starts_with("HTTP/1.1 408"), "after {took:?}: {got}");
    assert!(got.contains(r#""type":"invalid_request_error""#), "{got}");
    assert!(took >= Duration::from_millis(1500) && took < BOUND, "answered after {took:?}");
    assert_healthy(&h).await;
}

#[tokio::test]
async fn the_connection_cap_sheds_the_longest_idle_connections_first() {
    // A long head deadline: only shedding may close the idle sockets here.
    let h = harness_with_server("header-read-timeout = \"30s\"\nmax-connections = 4").await;
    // A busy connection (a slow upstream answer) that is the oldest: it must survive.
    let busy = {
        let client = reqwest::Client::new();
        let req = client
            .post(h.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-mock-latency-ms", "1500")
            .body(CHAT);
        tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 3 idle sockets fill the cap; 2 more shed the two oldest idle ones, in order.
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(connect(h.gw.addr).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // A normal request gets in too (shedding the third-oldest idle socket).
    let fresh = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let r = fresh.get(h.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(busy.await.unwrap().unwrap(), 200, "the busy connection was cut");
    let mut closed = Vec::new();
    for (i, (read, _)) in idle.iter_mut().enumerate() {
        let within = if i < 3 { Duration::from_secs(5) } else { Duration::from_millis(300) };
        closed.push(closed_within(read, within).await.is_some());
    }
    assert_eq!(closed, [true, true, true, false, false], "which idle sockets were shed");
    drop(idle);
    assert_healthy(&h).await;
}

#[tokio::test]
async fn h1_and_h2c_requests_and_streams_still_work() {
    let h = harness_with_server(FAST).await;
    let stream_req = r#"{"model":"mock-gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    // h1
    let r = h.post("/v1/chat/completions", CHAT).await;
    assert_eq!(r.status(), 200);
    let r = h.post("/v1/chat/completions", stream_req).await;
    assert_eq!(r.status(), 200);
    let events = sse_data(&r.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{events:?}");
    // h2c (prior knowledge), several requests multiplexed on one connection
    let client = h2c_client();
    let url = h.url("/v1/chat/completions");
    let (status, body) = h2c_post(&client, &url, CHAT).await;
    assert_eq!(status, 200, "{body}");
    let (a, b) = tokio::join!(h2c_post(&client, &url, stream_req), h2c_post(&client, &url, stream_req));
    for (status, body) in [a, b] {
        assert_eq!(status, 200, "{body}");
        assert_eq!(sse_data(&body).last().map(String::as_str), Some("[DONE]"), "{body}");
    }
    assert_healthy(&h).await;
}

#[tokio::test]
async fn a_connection_busy_longer_than_the_idle_timeout_is_not_cut() {
    let h = harness_with_server("idle-timeout = \"1s\"\nheader-read-timeout = \"1s\"").await;
    let req = r#"{"model":"mock-gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-mock-chunks", "6")
        .header("x-mock-chunk-interval-ms", "500")
        .body(req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // 3 s of streaming on a connection whose idle timeout is 1 s.
    let events = sse_data(&r.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{events:?}");
    assert_healthy(&h).await;
}
