//! The `tenants` scenario (issue 16): wasmgate alone, at SaaS scale.
//!
//! Tenant curve: N tenants, each with its own `rewrite` + `rate-limit` chain and configs, one
//! global `auth-keys` holding one key per tenant; for each N: start time (spawn to `/health`,
//! plugins precompiled by an earlier start), idle RSS, the latency of a cold tenant's first
//! request against the same tenant warm (single requests on fresh connections, 40 tenants),
//! reloading one tenant's config (`POST /admin/reload`), warm throughput of one tenant with
//! `wrk`, and `wrk` round robin over up to 1,000 tenants' keys with errors and RSS.
//!
//! Key curve: the global `auth-keys` alone with K keys; gateway CPU per request (`utime +
//! stime` from `/proc/PID/stat` over a `wrk` run divided by the requests served).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::process::{Proc, free_ports};
use crate::systems::{MockSettings, Tools, start_mock};
use crate::{probe, rss, wrk};

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;

fn key(i: usize) -> String {
    format!("sk-tenant-{i}")
}

fn sha(k: &str) -> String {
    hex::encode(Sha256::digest(k.as_bytes()))
}

/// Config with `tenants` tenants (`t0`…) and a global auth-keys holding `keys` keys (the first
/// `tenants` bound to their tenant; with `tenants == 0` only the global chain).
fn config(
    listen: SocketAddr,
    admin: SocketAddr,
    upstream: SocketAddr,
    cache: &Path,
    tenants: usize,
    keys: usize,
) -> String {
    let mut t = format!(
        "[server]\nlisten = \"{listen}\"\nadmin-listen = \"{admin}\"\n\n[upstreams.mock]\nendpoints = [\"http://{upstream}/v1\"]\nhttp2 = true\n\n\
         [[models]]\nname = \"mock-gpt-4o-mini\"\nupstream = \"mock\"\n\n[[models]]\nname = \"gpt-4o-mini\"\nupstream = \"mock\"\n\n\
         [plugins.auth]\nkind = \"auth\"\npath = \"builtin:auth-keys\"\nmemory-limit-mib = 256\nconfig.keys = [\n"
    );
    for i in 0..keys.max(1) {
        let tenant = if i < tenants { format!(", tenant = \"t{i}\"") } else { String::new() };
        let _ = writeln!(t, "  {{ sha256 = \"{}\", subject = \"u{i}\"{tenant} }},", sha(&key(i)));
    }
    t.push_str("]\n\n[plugins.rewrite]\nkind = \"rewrite\"\npath = \"builtin:rewrite\"\nconfig = {}\n\n");
    t.push_str("[plugins.limits]\nkind = \"rate-limit\"\npath = \"builtin:rate-limit\"\nconfig = { key = \"identity\", requests = { limit = 1000000000000, window-ms = 60000 } }\n\n");
    let _ = writeln!(t, "[policy]\nchain = [\"auth\"]\ncache-dir = \"{}\"\n", cache.display());
    for i in 0..tenants {
        let _ = write!(
            t,
            "[tenants.t{i}]\nchain = [\"rewrite\", \"limits\"]\n\
             config.rewrite = {{ model-aliases = {{ \"gpt-4o-mini\" = \"mock-gpt-4o-mini\" }}, max-tokens-cap = {} }}\n\
             config.limits = {{ key = \"identity\", requests = {{ limit = {}, window-ms = 60000 }} }}\n\n",
            1000 + i,
            1_000_000_000_000u64 + i as u64
        );
    }
    t
}

struct Gateway {
    proc: Proc,
    addr: SocketAddr,
    admin: SocketAddr,
    config: PathBuf,
    started_in: Duration,
}

async fn start(tools: &Tools, name: &str, text: impl Fn(SocketAddr, SocketAddr) -> String) -> Result<Gateway> {
    let ports = free_ports(2)?;
    let (addr, admin) = (ports[0], ports[1]);
    let config = tools.tmp.join(format!("{name}.toml"));
    std::fs::write(&config, text(addr, admin)).with_context(|| format!("writing {}", config.display()))?;
    let mut cmd = Command::new(&tools.wasmgate);
    cmd.arg("serve").arg("--config").arg(&config).env("WASMGATE_LOG", "warn");
    let began = Instant::now();
    let mut proc = Proc::spawn(name, cmd, &tools.tmp.join(format!("{name}.log")))?;
    proc.wait_ready(addr, "/health").await?;
    Ok(Gateway { proc, addr, admin, config, started_in: began.elapsed() })
}

/// A wrk script POSTing the chat body with keys `0..n` in turn (one per request, round robin).
fn rotating_script(dir: &Path, name: &str, n: usize) -> Result<wrk::Load> {
    let path = dir.join(format!("{name}.lua"));
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = '{CHAT}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         local i = 0\nrequest = function()\n  i = (i + 1) % {n}\n  \
         return wrk.format(nil, nil, {{[\"Authorization\"] = \"Bearer sk-tenant-\" .. i}})\nend\n"
    );
    std::fs::write(&path, lua).with_context(|| format!("writing {}", path.display()))?;
    Ok(wrk::Load::PostJson(path))
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn timed_chat(addr: SocketAddr, k: &str) -> Result<f64> {
    let began = Instant::now();
    let r = probe::post_json(addr, "/v1/chat/completions", CHAT, k).await?;
    if r.status != 200 {
        bail!("chat with key {k}: {} {}", r.status, r.text());
    }
    Ok(began.elapsed().as_secs_f64() * 1000.0)
}

/// Runs both curves; returns the markdown report.
pub async fn run(tools: &Tools, quick: bool) -> Result<String> {
    let (mock, upstream) = start_mock(tools, MockSettings { latency_ms: 0, chunks: 4, chunk_interval_ms: 0 }).await?;
    let cache = tools.tmp.join("plugin-cache");
    let load_for = Duration::from_secs(if quick { 2 } else { 5 });
    let mut md = String::from(
        "# Tenants and keys at scale\n\nOne run of `wasmgate-bench tenants`; wasmgate release build, mock upstream over h2c, \
         wrk -t2 on the same 2 cores.\n\n\
         | tenants | start s | idle RSS MB | cold first request p50 / p99 ms | warm p50 / p99 ms | reload one tenant ms | warm tenant req/s | round robin over | rr req/s | rr errors | RSS after rr MB |\n\
         |---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let steps: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000, 10_000] };
    // A first start compiles the plugins into the cache, as a production restart finds them.
    let warmup = start(tools, "tenants-warmup", |a, b| config(a, b, upstream, &cache, 1, 1)).await?;
    warmup.proc.stop();
    for &n in steps {
        println!("== tenants: {n}");
        let gw = start(tools, &format!("tenants-{n}"), |a, b| config(a, b, upstream, &cache, n, n)).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_mb = rss::rss_kb(gw.proc.pid) as f64 / 1024.0;
        // One request first, of a tenant outside the sample: the upstream connection and the
        // global chain's instance are then warm, and the sample measures a cold tenant only.
        timed_chat(gw.addr, &key(0)).await?;
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        let sample: Vec<usize> = (1..n).rev().step_by((n / 40).max(1)).take(40).collect();
        for &i in &sample {
            cold.push(timed_chat(gw.addr, &key(i)).await?);
            warm.push(timed_chat(gw.addr, &key(i)).await?);
        }
        // Reload after editing one tenant's rewrite config.
        let text = std::fs::read_to_string(&gw.config)?;
        let edited =
            text.replacen(&format!("max-tokens-cap = {}", 1000 + n / 2), &format!("max-tokens-cap = {}", 999_999), 1);
        std::fs::write(&gw.config, edited)?;
        let began = Instant::now();
        let r = probe::post(gw.admin, "/admin/reload").await?;
        let reload_ms = began.elapsed().as_secs_f64() * 1000.0;
        if r.status != 200 {
            bail!("reload at {n} tenants: {} {}", r.status, r.text());
        }
        let one_key = rotating_script(&tools.tmp, "tenant-one", 1)?;
        let warm_rps =
            wrk::run(&format!("http://{}/v1/chat/completions", gw.addr), 50, load_for, &one_key, &tools.tmp).await?;
        let rr_n = n.min(1000);
        let rr = rotating_script(&tools.tmp, "tenant-rr", rr_n)?;
        let rr_stats =
            wrk::run(&format!("http://{}/v1/chat/completions", gw.addr), 50, load_for, &rr, &tools.tmp).await?;
        let rr_mb = rss::rss_kb(gw.proc.pid) as f64 / 1024.0;
        let _ = writeln!(
            md,
            "| {n} | {:.2} | {idle_mb:.1} | {:.2} / {:.2} | {:.2} / {:.2} | {reload_ms:.0} | {:.0} | {rr_n} | {:.0} | {} | {rr_mb:.1} |",
            gw.started_in.as_secs_f64(),
            percentile(cold.clone(), 0.5),
            percentile(cold, 0.99),
            percentile(warm.clone(), 0.5),
            percentile(warm, 0.99),
            warm_rps.rps,
            rr_stats.rps,
            rr_stats.errors(),
        );
        gw.proc.stop();
    }
    md.push_str(
        "\n## Keys\n\nThe global `auth-keys` alone; wrk -c50 with one valid key; CPU = the gateway's utime + stime over the run / requests.\n\n\
         | keys | start s | idle RSS MB | req/s | gateway CPU µs / request |\n|---:|---:|---:|---:|---:|\n",
    );
    let key_steps: &[usize] = if quick { &[1, 1000] } else { &[1, 1000, 10_000, 100_000] };
    for &k in key_steps {
        println!("== keys: {k}");
        let gw = start(tools, &format!("keys-{k}"), |a, b| config(a, b, upstream, &cache, 0, k)).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle_mb = rss::rss_kb(gw.proc.pid) as f64 / 1024.0;
        let load = rotating_script(&tools.tmp, "key-last", 1)?;
        let before = crate::process::cpu_seconds(gw.proc.pid);
        let s = wrk::run(&format!("http://{}/v1/chat/completions", gw.addr), 50, load_for, &load, &tools.tmp).await?;
        let cpu = crate::process::cpu_seconds(gw.proc.pid) - before;
        let per = if s.requests > 0 { cpu / s.requests as f64 * 1e6 } else { 0.0 };
        let _ = writeln!(md, "| {k} | {:.2} | {idle_mb:.1} | {:.0} | {per:.1} |", gw.started_in.as_secs_f64(), s.rps);
        if s.errors() > 0 {
            bail!("{} errors with {k} keys", s.errors());
        }
        gw.proc.stop();
    }
    mock.stop();
    Ok(md)
}
