//! Scenario 4's load client: N concurrent SSE streams, each on its own HTTP/1.1 connection (as N
//! separate API clients would open them), started evenly over a ramp. For each stream it
//! measures the time to the first `data:` event (TTFT) and to `data: [DONE]`, and counts every
//! stream that did not end with `[DONE]` as an error, by reason.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

/// The streaming chat request every system gets.
pub const STREAM_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"test"}],"stream":true}"#;

/// What one run of N streams gave.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SseStats {
    pub requested: u32,
    pub completed: u32,
    pub errors: u32,
    /// Error count per reason (`connect`, `status 502`, `timeout`, `no [DONE]`, ...).
    pub error_kinds: BTreeMap<String, u32>,
    /// Streams open at once at the peak (headers received, `[DONE]` not yet).
    pub max_concurrent: u64,
    pub ttft_p50_ms: f64,
    pub ttft_p99_ms: f64,
    pub duration_p50_ms: f64,
    pub duration_p99_ms: f64,
    /// `data:` events seen per completed stream, on average.
    pub events_per_stream: f64,
}

/// Per-stream measurement.
struct StreamOutcome {
    ttft: Duration,
    total: Duration,
    events: u64,
}

/// Opens `n` streams to `addr` `path`, spread evenly over `ramp`; every stream must end within
/// `deadline` of the start of the run (later ones are cut and counted as `timeout`).
pub async fn run(addr: SocketAddr, path: &str, n: u32, ramp: Duration, deadline: Duration) -> SseStats {
    let open = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let delay = ramp.mul_f64(f64::from(i) / f64::from(n.max(1)));
        let (open, peak, path) = (open.clone(), peak.clone(), path.to_string());
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let left = deadline.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, one(addr, &path, &open, &peak)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow!("timeout")),
            }
        });
    }
    let mut stats = SseStats { requested: n, ..SseStats::default() };
    let (mut ttfts, mut totals, mut events) = (Vec::new(), Vec::new(), 0u64);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(o)) => {
                stats.completed += 1;
                ttfts.push(o.ttft.as_secs_f64() * 1000.0);
                totals.push(o.total.as_secs_f64() * 1000.0);
                events += o.events;
            }
            Ok(Err(e)) => {
                stats.errors += 1;
                *stats.error_kinds.entry(e.to_string()).or_default() += 1;
            }
            Err(e) => {
                stats.errors += 1;
                *stats.error_kinds.entry(format!("task: {e}")).or_default() += 1;
            }
        }
    }
    stats.max_concurrent = peak.load(Ordering::Relaxed);
    stats.ttft_p50_ms = percentile(&mut ttfts, 0.50);
    stats.ttft_p99_ms = percentile(&mut ttfts, 0.99);
    stats.duration_p50_ms = percentile(&mut totals, 0.50);
    stats.duration_p99_ms = percentile(&mut totals, 0.99);
    if stats.completed > 0 {
        stats.events_per_stream = events as f64 / f64::from(stats.completed);
    }
    stats
}

/// Keeps the open-stream count and its peak right, however the stream ends.
struct OpenGuard<'a>(&'a AtomicU64);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn one(addr: SocketAddr, path: &str, open: &AtomicU64, peak: &AtomicU64) -> Result<StreamOutcome> {
    let sent = Instant::now();
    let stream = TcpStream::connect(addr).await.map_err(|e| anyhow!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|_| anyhow!("handshake"))?;
    let driver = tokio::spawn(conn);
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {}", crate::systems::DEMO_KEY))
        .body(Full::new(Bytes::from_static(STREAM_BODY.as_bytes())))?;
    let resp = sender.send_request(req).await.map_err(|_| anyhow!("no response headers"))?;
    if resp.status() != 200 {
        driver.abort();
        bail!("status {}", resp.status().as_u16());
    }
    let now_open = open.fetch_add(1, Ordering::Relaxed) + 1;
    let _guard = OpenGuard(open);
    peak.fetch_max(now_open, Ordering::Relaxed);
    let mut body = resp.into_body();
    let mut ttft = None;
    let mut events = 0u64;
    // The tail of the previous frame, so a marker split across frames is still found.
    let mut carry: Vec<u8> = Vec::new();
    let result = loop {
        let Some(frame) = body.frame().await else { break Err(anyhow!("no [DONE]")) };
        let Ok(frame) = frame else { break Err(anyhow!("body cut")) };
        let Some(data) = frame.data_ref() else { continue };
        let scanned = carry.len();
        carry.extend_from_slice(data);
        // Events that end in the new bytes (those wholly in the carried tail were counted before).
        let found = carry.windows(5).enumerate().filter(|(i, w)| *w == b"data:" && i + 5 > scanned).count();
        if found > 0 && ttft.is_none() {
            ttft = Some(sent.elapsed());
        }
        events += found as u64;
        if find(&carry, b"data: [DONE]").is_some() {
            break Ok(());
        }
        // Keep only what could be the start of a marker split across frames.
        let keep = carry.len().min(11);
        carry.drain(..carry.len() - keep);
    };
    driver.abort();
    result?;
    Ok(StreamOutcome { ttft: ttft.unwrap_or_default(), total: sent.elapsed(), events })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `q` quantile (nearest rank) of `v`, 0 when empty.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut [], 0.5), 0.0);
    }
}
