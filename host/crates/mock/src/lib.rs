//! The mock upstream: an in-process, OpenAI-compatible server for the embedded default config,
//! the integration tests and the benches.
//!
//! It answers `/v1/chat/completions`, `/v1/completions` (both also as SSE streams),
//! `/v1/embeddings` and `/v1/models` deterministically, speaks HTTP/1.1 and HTTP/2 with prior
//! knowledge (h2c) on one port, and is steered per request by `x-mock-*` headers (see
//! [`controls`]): latency, chunk count and interval, injected error statuses, stalls.
//!
//! Every non-stream `/v1` response (and the first chunk of a stream) carries a top-level
//! `mock_echo` object with the request headers, `model`, `max_tokens` and `messages` exactly as
//! received, so a test can see what reached the upstream. Counters are in [`MockStats`]
//! (`GET /_mock/stats`), the last requests in [`MockServer::recorded`] (`GET /_mock/requests`).
//!
//! ```text
//! curl -s localhost:8081/v1/chat/completions -d '{"model":"m","messages":[{"role":"user","content":"hi"}]}'
//! curl -sN localhost:8081/v1/chat/completions -H 'x-mock-chunk-interval-ms: 100' \
//!   -d '{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}'
//! ```

mod completion;
pub mod controls;
mod embeddings;
mod record;
mod serve;
mod sse;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use record::{RecordedRequest, RequestRecorder};

use state::MockState;

/// Largest request body the mock accepts; far above any prompt a bench sends.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Settings of a mock server; per-request `x-mock-*` headers override them.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Delay before the response headers (non-stream) or before the first chunk (stream). Default 0.
    pub latency: Duration,
    /// Number of content chunks (= words = completion tokens) in a reply. Default 8.
    pub chunks: u32,
    /// Delay before each content chunk of a stream. Default 0.
    pub chunk_interval: Duration,
    /// Model ids served by `/v1/models`. Default `["mock-gpt-4o", "mock-gpt-4o-mini", "mock-embedding"]`.
    /// Any model id is accepted by the other endpoints.
    pub models: Vec<String>,
    /// How many of the last requests (bodies included) [`MockServer::recorded`] keeps; 0 keeps
    /// none and skips the one lock on the request path. Default 256, for tests that read what
    /// reached the upstream; the embedded default and `wasmgate mock-upstream` use 0, since
    /// a long-running mock would hold up to 256 request bodies for nobody.
    pub record: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunks: 8,
            chunk_interval: Duration::ZERO,
            models: ["mock-gpt-4o", "mock-gpt-4o-mini", "mock-embedding"].into_iter().map(String::from).collect(),
            record: record::CAPACITY,
        }
    }
}

/// Counters a test can read (also served as JSON at `GET /_mock/stats`).
///
/// Only `/v1/...` requests are counted, so polling `/_mock/*` or `/health` does not move the
/// request counters (connections are counted whatever they carry).
#[derive(Debug, Default)]
pub struct MockStats {
    /// `/v1` requests received (including those answered with an injected error).
    pub requests: AtomicU64,
    /// Streaming responses whose headers were produced.
    pub streams_started: AtomicU64,
    /// Streams that yielded `data: [DONE]`.
    pub streams_completed: AtomicU64,
    /// Streams whose body was dropped before `[DONE]` (the client went away mid-stream).
    pub streams_cancelled: AtomicU64,
    /// `/v1` requests being served right now, open streams included.
    pub in_flight: AtomicU64,
    /// TCP connections accepted so far (shows whether a client multiplexes over h2c).
    pub connections_accepted: AtomicU64,
    /// TCP connections open right now.
    pub connections_open: AtomicU64,
}

/// A plain copy of [`MockStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MockStatsSnapshot {
    pub requests: u64,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_cancelled: u64,
    pub in_flight: u64,
    pub connections_accepted: u64,
    pub connections_open: u64,
}

impl MockStats {
    /// Read every counter (each individually atomic; the set is not a consistent cut).
    pub fn snapshot(&self) -> MockStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MockStatsSnapshot {
            requests: get(&self.requests),
            streams_started: get(&self.streams_started),
            streams_completed: get(&self.streams_completed),
            streams_cancelled: get(&self.streams_cancelled),
            in_flight: get(&self.in_flight),
            connections_accepted: get(&self.connections_accepted),
            connections_open: get(&self.connections_open),
        }
    }
}

/// A running mock server. Clones share it; it stops on [`MockServer::shutdown`] or when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct MockServer {
    /// The bound address (the real port when started on port 0).
    pub addr: SocketAddr,
    /// Live counters.
    pub stats: Arc<MockStats>,
    recorder: Arc<RequestRecorder>,
    /// Dropping the last sender also stops the server.
    stop: Arc<watch::Sender<bool>>,
}

impl MockServer {
    /// Bind `addr` (use `127.0.0.1:0` for an ephemeral port) and serve in a spawned tokio task
    /// until shut down or dropped.
    pub async fn start(addr: SocketAddr, cfg: MockConfig) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(MockStats::default());
        let recorder = Arc::new(RequestRecorder::with_capacity(cfg.record));
        let app = router(cfg, stats.clone(), recorder.clone());
        let server_stats = stats.clone();
        let (stop, mut stopped) = watch::channel(false);
        // Resolves on `shutdown()` and also when every `MockServer` clone (the sender) is gone.
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        #[allow(clippy::disallowed_methods, reason = "the mock's server task, ended by its shutdown signal")]
        tokio::spawn(async move {
            if let Err(error) = serve::run(listener, app, Some(server_stats), shutdown).await {
                tracing::warn!(%error, "mock upstream stopped");
            }
        });
        Ok(MockServer { addr, stats, recorder, stop: Arc::new(stop) })
    }

    /// `http://{addr}/v1`: what an OpenAI client or a gateway upstream entry takes.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The last requests received (at most [`MockConfig::record`]), oldest first.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.recorder.snapshot()
    }

    /// Forget the requests recorded so far (e.g. between phases of one test).
    pub fn clear_recorded(&self) {
        self.recorder.clear();
    }

    /// Stop accepting, let open connections finish for a short grace period (0.5 s), then
    /// cut them. Returns at once; the port is released asynchronously.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// The mock's routes, for embedding in another server (used by [`MockServer::start`]).
pub fn router(cfg: MockConfig, stats: Arc<MockStats>, recorder: Arc<RequestRecorder>) -> Router {
    let state = Arc::new(MockState::new(cfg, stats, recorder));
    Router::new()
        .route("/v1/chat/completions", post(completion::chat))
        .route("/v1/completions", post(completion::legacy))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/models", get(state::list_models))
        .route("/v1/models/{id}", get(state::get_model))
        .route("/health", get(state::health))
        .route("/_mock/stats", get(state::stats))
        .route("/_mock/requests", get(state::requests))
        .fallback(state::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serve the mock on `listener` until `shutdown` resolves (used by `wasmgate mock-upstream`).
/// Prints nothing itself.
pub async fn serve(
    listener: TcpListener,
    cfg: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stats = Arc::new(MockStats::default());
    let recorder = Arc::new(RequestRecorder::with_capacity(cfg.record));
    let app = router(cfg, stats.clone(), recorder);
    serve::run(listener, app, Some(stats), shutdown).await
}
