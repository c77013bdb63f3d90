//! The five scenarios, run system after system in one process so every ratio compares points
//! measured minutes apart on the same machine:
//!
//! - handling (1 + 2): a 0 ms mock; `GET /health`, chat forwarded to the mock, and (Go, Python)
//!   chat answered in-process; then chat over one connection (latency added over `direct`) and
//!   chat paced at ~3,000 req/s (CPU per request below saturation);
//! - proxy (3 + 5): a 100 ms mock; chat forwarded at each connection count (scenario 3 reads the
//!   100 and 1,000 points against `direct`);
//! - SSE (4): a streaming mock; N concurrent streams on a freshly started system per step.
//!
//! Correctness is checked before any load (status, body, the chain refusing a bad key) and on
//! the smallest load step (no non-2xx, every stream ends with `[DONE]`); failures are collected,
//! never a timing threshold.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::model::{Idle, PlanInfo, Point, Results, SsePoint, SystemDesc, Variant};
use crate::prepare;
use crate::probe;
use crate::process;
use crate::rss::{self, Sampler};
use crate::sse;
use crate::systems::{self, MockSettings, Running, SystemId, Tools};
use crate::wrk::{self, Load};

/// The non-streaming chat request (the report's body).
pub const CHAT_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"test"}]}"#;
const CHAT_PATH: &str = "/v1/chat/completions";
/// The paced chat load: this many connections, each waiting [`PACE_DELAY_MS`] before every
/// request: about 3,000 req/s against a 0 ms mock.
pub const PACED_CONNS: u32 = 30;
const PACE_DELAY_MS: u32 = 10;

/// How much of everything to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub info: PlanInfo,
    /// Wait after a system answers before reading its idle RSS.
    pub idle_wait: Duration,
    /// Extra time a stream may take beyond ramp + ideal duration before it counts as `timeout`.
    pub sse_slack: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        let info = if quick {
            PlanInfo {
                quick,
                handling_conns: vec![50],
                handling_seconds: 1,
                proxy_conns: vec![100, 1000],
                proxy_seconds: 1,
                warmup_seconds: 0,
                sse_steps: vec![100],
                sse_chunks: 5,
                sse_chunk_interval_ms: 100,
            }
        } else {
            PlanInfo {
                quick,
                handling_conns: vec![50, 256],
                handling_seconds: 8,
                proxy_conns: vec![100, 500, 1000, 5000, 10_000],
                proxy_seconds: 8,
                warmup_seconds: 2,
                sse_steps: vec![100, 1000, 10_000],
                sse_chunks: 20,
                sse_chunk_interval_ms: 250,
            }
        };
        let (idle_wait, sse_slack) = if quick {
            (Duration::from_millis(300), Duration::from_secs(10))
        } else {
            (Duration::from_secs(1), Duration::from_secs(20))
        };
        Plan { info, idle_wait, sse_slack }
    }

    /// Streams are opened evenly over this ramp (10,000 connects at once would measure the
    /// accept backlog, not the relay).
    fn sse_ramp(&self, streams: u32) -> Duration {
        match streams {
            0..=100 => Duration::from_millis(200),
            101..=1000 => Duration::from_secs(1),
            _ => Duration::from_secs(2),
        }
    }
}

/// Runs every section on `systems`; never stops at the first failure.
pub async fn run_all(tools: &Tools, plan: &Plan, systems: &[SystemId]) -> Result<Results> {
    let mut results = Results {
        machine: prepare::machine(tools),
        plan: plan.info.clone(),
        systems: systems
            .iter()
            .map(|s| SystemDesc { id: *s, label: s.label().into(), upstream: s.upstream_note() })
            .collect(),
        idle: Vec::new(),
        points: Vec::new(),
        sse: Vec::new(),
        failures: Vec::new(),
        chain_cold_idle_kb: None,
        checks: 0,
        wall_seconds: 0.0,
    };
    let chat = wrk::post_script(&tools.tmp, "chat", CHAT_BODY)?;
    let paced = wrk::paced_script(&tools.tmp, "chat-paced", CHAT_BODY, PACE_DELAY_MS)?;
    if let Some(&chain) = systems.iter().find(|s| s.is_chain()) {
        results.chain_cold_idle_kb = cold_start(tools, plan, chain).await;
    }
    handling(tools, plan, systems, (&chat, &paced), &mut results).await?;
    proxy(tools, plan, systems, &chat, &mut results).await?;
    streaming(tools, plan, systems, &mut results).await?;
    Ok(results)
}

/// Starts the chained wasmgate once with an empty plugin cache (it compiles the plugins and
/// fills `policy.cache-dir`); returns its idle RSS. Every measured start then loads them
/// precompiled, as a production restart does.
async fn cold_start(tools: &Tools, plan: &Plan, chain: SystemId) -> Option<u64> {
    let (mock, upstream) =
        systems::start_mock(tools, MockSettings { latency_ms: 0, chunks: 8, chunk_interval_ms: 0 }).await.ok()?;
    let running = systems::start(chain, tools, upstream).await.ok()?;
    tokio::time::sleep(plan.idle_wait).await;
    let idle = running.pid().map(rss::rss_kb);
    running.stop();
    mock.stop();
    idle
}

/// Starts `id`, records its idle RSS the first time; a start failure is recorded, not fatal.
async fn start(
    id: SystemId,
    tools: &Tools,
    plan: &Plan,
    upstream: std::net::SocketAddr,
    r: &mut Results,
) -> Option<Running> {
    match systems::start(id, tools, upstream).await {
        Ok(running) => {
            tokio::time::sleep(plan.idle_wait).await;
            if let Some(pid) = running.pid()
                && r.idle_kb(id).is_none()
            {
                r.idle.push(Idle { system: id, rss_kb: rss::rss_kb(pid) });
            }
            Some(running)
        }
        Err(e) => {
            check(r, id, "start", Err(e));
            None
        }
    }
}

/// Scenarios 1 and 2, then one connection and the paced load (`direct`: one connection only).
async fn handling(
    tools: &Tools,
    plan: &Plan,
    systems: &[SystemId],
    (chat, paced): (&Load, &Load),
    r: &mut Results,
) -> Result<()> {
    println!("== scenarios 1 and 2: health and chat (0 ms mock); one connection; paced");
    let (mock, upstream) =
        systems::start_mock(tools, MockSettings { latency_ms: 0, chunks: 8, chunk_interval_ms: 0 }).await?;
    let seconds = plan.info.handling_seconds;
    let single = Step { variant: Variant::Single, path: CHAT_PATH, load: chat, conns: 1, seconds, smallest: true };
    for &id in systems.iter().filter(|s| s.in_handling_scenarios() || **s == SystemId::Direct) {
        let Some(running) = start(id, tools, plan, upstream, r).await else { continue };
        if id == SystemId::Direct {
            measure(r, tools, plan, &running, single.clone()).await;
            continue;
        }
        check(r, id, "GET /health", check_health(&running).await);
        check(r, id, "POST chat (forwarded)", check_chat(&running, CHAT_PATH).await);
        if id.is_chain() {
            check(r, id, "chain refuses a wrong key", check_refuses_bad_key(&running).await);
        }
        if let Some(local) = id.local_chat_path() {
            check(r, id, "POST chat (in-process)", check_chat(&running, local).await);
        }
        for (i, &c) in plan.info.handling_conns.iter().enumerate() {
            let first = i == 0;
            let seconds = plan.info.handling_seconds;
            let step = |variant, path, load| Step { variant, path, load, conns: c, seconds, smallest: first };
            measure(r, tools, plan, &running, step(Variant::Health, "/health", &Load::Get)).await;
            measure(r, tools, plan, &running, step(Variant::ChatForward, CHAT_PATH, chat)).await;
            if let Some(local) = id.local_chat_path() {
                measure(r, tools, plan, &running, step(Variant::ChatLocal, local, chat)).await;
            }
        }
        measure(r, tools, plan, &running, single.clone()).await;
        let paced_step =
            Step { variant: Variant::Paced, path: CHAT_PATH, load: paced, conns: PACED_CONNS, seconds, smallest: true };
        measure(r, tools, plan, &running, paced_step).await;
        running.stop();
    }
    mock.stop();
    Ok(())
}

/// Scenarios 3 and 5.
async fn proxy(tools: &Tools, plan: &Plan, systems: &[SystemId], chat: &Load, r: &mut Results) -> Result<()> {
    println!("== scenarios 3 and 5: proxy to a 100 ms mock");
    let (mock, upstream) =
        systems::start_mock(tools, MockSettings { latency_ms: 100, chunks: 8, chunk_interval_ms: 0 }).await?;
    for &id in systems {
        let Some(running) = start(id, tools, plan, upstream, r).await else { continue };
        check(r, id, "POST chat (100 ms upstream)", check_chat(&running, CHAT_PATH).await);
        for (i, &c) in plan.info.proxy_conns.iter().enumerate() {
            let step = Step {
                variant: Variant::Proxy,
                path: CHAT_PATH,
                load: chat,
                conns: c,
                seconds: plan.info.proxy_seconds,
                smallest: i == 0,
            };
            measure(r, tools, plan, &running, step).await;
        }
        running.stop();
    }
    mock.stop();
    Ok(())
}

/// Scenario 4.
async fn streaming(tools: &Tools, plan: &Plan, systems: &[SystemId], r: &mut Results) -> Result<()> {
    println!("== scenario 4: SSE streams");
    let settings = MockSettings {
        latency_ms: 0,
        chunks: plan.info.sse_chunks,
        chunk_interval_ms: plan.info.sse_chunk_interval_ms,
    };
    let (mock, upstream) = systems::start_mock(tools, settings).await?;
    let ideal = Duration::from_millis(u64::from(plan.info.sse_chunks) * plan.info.sse_chunk_interval_ms);
    for &id in systems {
        for (i, &n) in plan.info.sse_steps.iter().enumerate() {
            // A fresh system per step, so (peak − idle) / streams is this step's memory per stream.
            let Some(running) = start(id, tools, plan, upstream, r).await else { break };
            let idle = running.pid().map(rss::rss_kb).unwrap_or(0);
            let sampler = running.pid().map(Sampler::start);
            let ramp = plan.sse_ramp(n);
            let stats = sse::run(running.addr, CHAT_PATH, n, ramp, ramp + ideal + plan.sse_slack).await;
            let peak = match sampler {
                Some(s) => s.finish().await,
                None => 0,
            };
            println!(
                "  {:<16} streams {:>6}: completed {:>6}, errors {:>5}, TTFT p50 {:.2} ms p99 {:.2} ms, RSS {} → {} kB",
                id.id(),
                n,
                stats.completed,
                stats.errors,
                stats.ttft_p50_ms,
                stats.ttft_p99_ms,
                idle,
                peak
            );
            if i == 0 {
                // Role chunk + one per word + finish chunk.
                let want = f64::from(plan.info.sse_chunks + 2);
                let ok = if stats.errors > 0 {
                    Err(anyhow::anyhow!("{} of {n} streams failed: {:?}", stats.errors, stats.error_kinds))
                } else if stats.events_per_stream < want {
                    Err(anyhow::anyhow!("{:.1} events per stream, expected at least {want}", stats.events_per_stream))
                } else {
                    Ok(())
                };
                check(r, id, &format!("{n} SSE streams end with [DONE]"), ok);
            }
            r.sse.push(SsePoint { system: id, streams: n, stats, rss_idle_kb: idle, rss_peak_kb: peak });
            running.stop();
        }
    }
    mock.stop();
    Ok(())
}

/// One wrk point to measure.
#[derive(Clone)]
struct Step<'a> {
    variant: Variant,
    path: &'a str,
    load: &'a Load,
    conns: u32,
    seconds: u64,
    /// The smallest connection count of its series: a non-2xx reply there is a failure.
    smallest: bool,
}

/// One wrk point (after a warm-up run that is thrown away), with the RSS peak sampled during it.
async fn measure(r: &mut Results, tools: &Tools, plan: &Plan, running: &Running, step: Step<'_>) {
    let Step { variant, path, load, conns, seconds, smallest } = step;
    let url = format!("http://{}{path}", running.addr);
    if plan.info.warmup_seconds > 0 {
        let _ = wrk::run(&url, conns, Duration::from_secs(plan.info.warmup_seconds), load, &tools.tmp).await;
    }
    let sampler = running.pid().map(Sampler::start);
    let cpu_before = running.pid().map(process::cpu_seconds);
    let stats = wrk::run(&url, conns, Duration::from_secs(seconds), load, &tools.tmp).await;
    let cpu = running.pid().map(process::cpu_seconds).zip(cpu_before).map(|(after, before)| after - before);
    let peak = match sampler {
        Some(s) => s.finish().await,
        None => 0,
    };
    let id = running.id;
    match stats {
        Ok(w) => {
            let cpu_us_per_req = cpu.filter(|_| w.requests > 0).map(|s| s * 1e6 / w.requests as f64);
            println!(
                "  {:<18} {:<11} c={:<6} {:>10.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  errors {:>6}  CPU {:>6} µs/req  peak RSS {} kB",
                id.id(),
                format!("{variant:?}"),
                conns,
                w.rps,
                w.p50_ms,
                w.p99_ms,
                w.errors(),
                cpu_us_per_req.map_or_else(|| "—".to_string(), |c| format!("{c:.1}")),
                peak
            );
            if smallest {
                let ok = match (w.non_2xx, w.requests) {
                    (0, 1..) => Ok(()),
                    (0, 0) => Err(anyhow::anyhow!("no request completed")),
                    (n, _) => Err(anyhow::anyhow!("{n} non-2xx replies")),
                };
                check(r, id, &format!("{variant:?} at c={conns}"), ok);
            }
            let rss_idle_kb = r.idle_kb(id).unwrap_or(0);
            r.points.push(Point { variant, system: id, conns, wrk: w, rss_idle_kb, rss_peak_kb: peak, cpu_us_per_req });
        }
        Err(e) => check(r, id, &format!("{variant:?} at c={conns}"), Err(e)),
    }
}

fn check(r: &mut Results, id: SystemId, what: &str, outcome: Result<()>) {
    r.checks += 1;
    if let Err(e) = outcome {
        r.failures.push(format!("{}: {what}: {e:#}", id.id()));
    }
}

async fn check_health(running: &Running) -> Result<()> {
    let reply = probe::get(running.addr, "/health").await?;
    if reply.status != 200 || !reply.text().contains("ok") {
        bail!("status {} body {:?}", reply.status, reply.text());
    }
    Ok(())
}

/// A 200 `chat.completion` with a choice.
async fn check_chat(running: &Running, path: &str) -> Result<()> {
    let reply = probe::post_json(running.addr, path, CHAT_BODY, systems::DEMO_KEY).await?;
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let is_completion = json["object"] == "chat.completion" && json["choices"][0]["message"]["role"] == "assistant";
    if reply.status != 200 || !is_completion || !reply.content_type.starts_with("application/json") {
        bail!("status {} content-type {:?} body {:?}", reply.status, reply.content_type, reply.text());
    }
    Ok(())
}

/// The chain is really on: a wrong key gets 401.
async fn check_refuses_bad_key(running: &Running) -> Result<()> {
    let reply = probe::post_json(running.addr, CHAT_PATH, CHAT_BODY, "sk-wrong").await?;
    if reply.status != 401 {
        bail!("expected 401 for a wrong key, got {} {:?}", reply.status, reply.text());
    }
    Ok(())
}
