//! Helpers for the upstream tests: clients that stop reading, metrics and quota headers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use super::Harness;

/// Opens a connection with a tiny receive buffer, sends `body` to `path` with `headers`, and
/// never reads: the gateway's writes back up as soon as its socket buffers are full.
pub async fn stalled_client(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    stream
}

/// The admin `/metrics` text.
pub async fn metrics_text(h: &Harness) -> String {
    h.http.get(h.admin_url("/metrics")).send().await.unwrap().text().await.unwrap()
}

/// The value of the first sample of `name` whose labels include every one of `labels`
/// (`plugin="limits"`), or 0.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|lab| l.contains(lab)))
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Successful calls of plugin `id` so far (admissions and settlements).
pub async fn plugin_calls_ok(h: &Harness, id: &str) -> u64 {
    let plugin = format!("plugin=\"{id}\"");
    sample(&metrics_text(h).await, "wasmgate_plugin_calls_total", &[&plugin, "result=\"ok\""]) as u64
}

/// Polls until plugin `id` has `n` successful calls (or 20 s pass); returns the last count.
pub async fn wait_for_plugin_calls(h: &Harness, id: &str, n: u64) -> u64 {
    let end = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let seen = plugin_calls_ok(h, id).await;
        if seen >= n || tokio::time::Instant::now() > end {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// `x-ratelimit-remaining-tokens` of a response.
pub fn remaining_tokens(resp: &reqwest::Response) -> u64 {
    let v = resp.headers().get("x-ratelimit-remaining-tokens").unwrap_or_else(|| panic!("no token headers"));
    v.to_str().unwrap().parse().unwrap()
}
