//! What a run produces (serialized as `results.json`, read by the report and the charts).

use serde::Serialize;

use crate::prepare::Machine;
use crate::sse::SseStats;
use crate::systems::SystemId;
use crate::wrk::WrkStats;

/// Which load a wrk point carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Scenario 1: `GET /health`.
    Health,
    /// Scenario 2: chat parsed, validated and forwarded to a 0 ms mock (what every system can do).
    ChatForward,
    /// Scenario 2 as the report defines it for Go/Python: answered in-process by a mock handler.
    ChatLocal,
    /// Scenarios 3 and 5: chat forwarded to a 100 ms mock.
    Proxy,
    /// Chat forwarded to a 0 ms mock over a single connection (the latency a gateway adds
    /// when nothing queues; `direct` is the floor).
    Single,
    /// Chat forwarded to a 0 ms mock at a fixed pace of about 3,000 req/s (each connection waits
    /// between requests), for the CPU a request costs when the gateway is not saturated.
    Paced,
}

/// One wrk measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub variant: Variant,
    pub system: SystemId,
    pub conns: u32,
    pub wrk: WrkStats,
    /// RSS when this system's section started (after it answered, before any load), kB.
    pub rss_idle_kb: u64,
    /// Largest RSS sampled during this point, kB (0 for `direct`).
    pub rss_peak_kb: u64,
    /// The system's CPU time (user + system, all its threads) during the run divided by the
    /// requests completed, µs (`None` for `direct`).
    pub cpu_us_per_req: Option<f64>,
}

/// One SSE step (scenario 4), on a freshly started system.
#[derive(Debug, Clone, Serialize)]
pub struct SsePoint {
    pub system: SystemId,
    pub streams: u32,
    pub stats: SseStats,
    pub rss_idle_kb: u64,
    pub rss_peak_kb: u64,
}

impl SsePoint {
    /// (peak − idle) / streams, in KB (None for `direct`, whose RSS is the mock's).
    pub fn kb_per_stream(&self) -> Option<f64> {
        (self.system != SystemId::Direct && self.streams > 0)
            .then(|| self.rss_peak_kb.saturating_sub(self.rss_idle_kb) as f64 / f64::from(self.streams))
    }
}

/// Idle RSS of a freshly started system (scenario 1's section), kB.
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub system: SystemId,
    pub rss_kb: u64,
}

/// Settings of the run, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct PlanInfo {
    pub quick: bool,
    pub handling_conns: Vec<u32>,
    pub handling_seconds: u64,
    pub proxy_conns: Vec<u32>,
    pub proxy_seconds: u64,
    pub warmup_seconds: u64,
    pub sse_steps: Vec<u32>,
    pub sse_chunks: u32,
    pub sse_chunk_interval_ms: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub machine: Machine,
    pub plan: PlanInfo,
    pub systems: Vec<SystemDesc>,
    pub idle: Vec<Idle>,
    pub points: Vec<Point>,
    pub sse: Vec<SsePoint>,
    /// Correctness checks that failed (wrong status, body, missing `[DONE]`, a system that
    /// did not start). A quick run exits non-zero when this is not empty.
    pub failures: Vec<String>,
    /// Idle RSS of the chained wasmgate on its first start, compiling its plugins (the measured
    /// starts load them precompiled from `policy.cache-dir`), kB.
    pub chain_cold_idle_kb: Option<u64>,
    /// Correctness checks made (passed = checks − failures).
    pub checks: u32,
    pub wall_seconds: f64,
}

/// A system as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SystemDesc {
    pub id: SystemId,
    pub label: String,
    pub upstream: String,
}

impl Results {
    pub fn point(&self, variant: Variant, system: SystemId, conns: u32) -> Option<&Point> {
        self.points.iter().find(|p| p.variant == variant && p.system == system && p.conns == conns)
    }

    pub fn sse_point(&self, system: SystemId, streams: u32) -> Option<&SsePoint> {
        self.sse.iter().find(|p| p.system == system && p.streams == streams)
    }

    pub fn idle_kb(&self, system: SystemId) -> Option<u64> {
        self.idle.iter().find(|i| i.system == system).map(|i| i.rss_kb)
    }

    /// The systems measured, in report order.
    pub fn ids(&self) -> Vec<SystemId> {
        self.systems.iter().map(|s| s.id).collect()
    }
}
