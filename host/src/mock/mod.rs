//! The mock upstream: an OpenAI-compatible server for the embedded default, tests and benches.
//!
//! It answers chat, completions, embeddings and models, streams SSE with configurable chunk
//! count and interval, reports usage, and obeys per-request control headers:
//!
//! | header | effect |
//! |---|---|
//! | `x-mock-latency-ms: N` | delay before the response (before the first chunk of a stream) |
//! | `x-mock-chunks: N` | content chunks in a stream (and words in a reply) |
//! | `x-mock-chunk-interval-ms: N` | delay between stream chunks |
//! | `x-mock-status: 429` | answer that status with an OpenAI-shaped error (429 adds `retry-after: 1`) |
//! | `x-mock-error-body: …` | with `x-mock-status`, this raw body instead |
//! | `x-mock-stall: headers` | never answer; `body`: send the first chunk, then stall |
//!
//! Every non-streamed reply (and a stream's first chunk) carries `mock_echo`: the headers, model,
//! `max_tokens` and messages as they reached the mock, so tests can see what the gateway sent.

mod replies;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Settings of a mock server; per-request headers override them.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Delay before the response headers (non-stream) or before the first chunk (stream).
    pub latency: Duration,
    /// Content chunks in a stream. Default 8.
    pub chunks: u32,
    /// Delay between chunks. Default 0.
    pub chunk_interval: Duration,
    /// Served by `/v1/models`.
    pub models: Vec<String>,
    /// Keep the last 256 requests for [`MockServer::recorded`]. Default true.
    pub record: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            latency: Duration::ZERO,
            chunks: 8,
            chunk_interval: Duration::ZERO,
            models: vec!["mock-gpt-4o".into(), "mock-gpt-4o-mini".into(), "mock-embedding".into()],
            record: true,
        }
    }
}

/// Counters a test can read (also at `GET /_mock/stats`).
#[derive(Debug, Default)]
pub struct MockStats {
    pub requests: AtomicU64,
    pub streams_started: AtomicU64,
    pub streams_completed: AtomicU64,
    /// Streams whose body was dropped before `[DONE]` (the client went away).
    pub streams_cancelled: AtomicU64,
    pub in_flight: AtomicU64,
}

/// A copy of [`MockStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MockStatsSnapshot {
    pub requests: u64,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_cancelled: u64,
    pub in_flight: u64,
}

impl MockStats {
    pub fn snapshot(&self) -> MockStatsSnapshot {
        MockStatsSnapshot {
            requests: self.requests.load(Ordering::SeqCst),
            streams_started: self.streams_started.load(Ordering::SeqCst),
            streams_completed: self.streams_completed.load(Ordering::SeqCst),
            streams_cancelled: self.streams_cancelled.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
        }
    }
}

/// One request as the mock received it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Lower-case names; repeated headers keep the last value.
    pub headers: BTreeMap<String, String>,
    pub body: serde_json::Value,
}

const RECORD_LIMIT: usize = 256;

/// The last requests received, newest last.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<VecDeque<RecordedRequest>>);

impl Recorder {
    fn push(&self, r: RecordedRequest) {
        if let Ok(mut q) = self.0.lock() {
            if q.len() == RECORD_LIMIT {
                q.pop_front();
            }
            q.push_back(r);
        }
    }

    fn all(&self) -> Vec<RecordedRequest> {
        self.0.lock().map(|q| q.iter().cloned().collect()).unwrap_or_default()
    }
}

#[derive(Clone)]
pub(crate) struct MockState {
    cfg: Arc<MockConfig>,
    stats: Arc<MockStats>,
    recorder: Arc<Recorder>,
    ids: Arc<AtomicU64>,
}

/// A mock running in the background.
#[derive(Clone)]
pub struct MockServer {
    pub addr: SocketAddr,
    pub stats: Arc<MockStats>,
    recorder: Arc<Recorder>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl MockServer {
    /// Binds `addr` (`127.0.0.1:0` for an ephemeral port) and serves in a background task.
    pub async fn start(addr: SocketAddr, cfg: MockConfig) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(MockStats::default());
        let recorder = Arc::new(Recorder::default());
        let app = router(cfg, stats.clone(), recorder.clone());
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            let server = axum::serve(listener, app);
            tokio::select! {
                r = server => if let Err(e) = r { tracing::warn!(error = %e, "mock upstream stopped") },
                _ = rx.wait_for(|s| *s) => {},
            }
        });
        Ok(MockServer { addr, stats, recorder, stop })
    }

    /// `http://{addr}/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The last requests received (at most 256), newest last.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.recorder.all()
    }

    /// Stops the server (open connections are dropped).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

/// The mock's routes.
pub fn router(cfg: MockConfig, stats: Arc<MockStats>, recorder: Arc<Recorder>) -> Router {
    let state = MockState { cfg: Arc::new(cfg), stats, recorder, ids: Arc::new(AtomicU64::new(0)) };
    Router::new()
        .route("/v1/chat/completions", post(replies::chat))
        .route("/v1/completions", post(replies::completions))
        .route("/v1/embeddings", post(replies::embeddings))
        .route("/v1/models", get(replies::models))
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/_mock/stats", get(replies::stats))
        .route("/_mock/requests", get(replies::requests))
        .with_state(state)
}

/// Serves until `shutdown` resolves (for `wasmgate mock-upstream`).
pub async fn serve(
    listener: TcpListener,
    cfg: MockConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(cfg, Arc::new(MockStats::default()), Arc::new(Recorder::default()));
    tokio::select! {
        r = axum::serve(listener, app) => r,
        () = shutdown => Ok(()),
    }
}
