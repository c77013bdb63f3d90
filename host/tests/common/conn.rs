//! Raw-socket helpers for the connection-layer tests: hostile clients the HTTP clients
//! cannot imitate (slow heads, silent sockets, trickled bodies), and an h2c client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::Instant;

use super::{CHAT, Harness};

/// Reads (and discards) until the peer closes; the time that took, or `None` if the socket
/// was still open after `within`.
pub async fn closed_within(read: &mut OwnedReadHalf, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|()| start.elapsed())
}

/// Reads until `needle` has arrived (or the peer closes / `within` passes); all that was read.
pub async fn read_until(read: &mut OwnedReadHalf, needle: &str, within: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(within, async {
        while !String::from_utf8_lossy(&got).contains(needle) {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

/// Writes `bytes` one at a time, `every` apart, until done or the peer is gone.
pub fn trickle(mut write: tokio::net::tcp::OwnedWriteHalf, bytes: Vec<u8>, every: Duration) {
    tokio::spawn(async move {
        for b in bytes {
            if write.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
        // Keep the write side open: a FIN would end the exchange on its own.
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

pub async fn connect(addr: SocketAddr) -> (OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf) {
    TcpStream::connect(addr).await.unwrap().into_split()
}

/// A client speaking HTTP/2 with prior knowledge (h2c).
pub fn h2c_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).http2_only(true).build_http()
}

/// POSTs `body` over h2c; status and body text.
pub async fn h2c_post(client: &Client<HttpConnector, Full<Bytes>>, url: &str, body: &str) -> (u16, String) {
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// After a hostile case: the gateway still answers `/health` and a chat completion.
pub async fn assert_healthy(h: &Harness) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let r = client.get(h.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "/health");
    let r = client
        .post(h.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(CHAT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "chat completion");
}

/// A harness whose `[server]` table also has `server_keys` (TOML lines).
pub async fn harness_with_server(server_keys: &str) -> Harness {
    let mock = wasmgate::mock::MockServer::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
    let text = super::base_config(mock.addr, "");
    let anchor = "shutdown-grace = \"5s\"\n";
    assert!(text.contains(anchor), "base_config changed: {text}");
    let text = text.replacen(anchor, &format!("{anchor}{server_keys}\n"), 1);
    Harness::with_config_text(mock, &text).await
}
