//! Driving `wrk` (Debian's, closed-loop, 2 threads) and reading its summary: requests/s, the
//! p50/p99 of its latency distribution, socket errors and non-2xx replies.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

use crate::process::Proc;

/// One wrk run's summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WrkStats {
    pub rps: f64,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Socket errors by kind: connect, read, write, timeout.
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    pub timeouts: u64,
    pub non_2xx: u64,
}

impl WrkStats {
    /// Everything that was not a 2xx answer: socket errors, timeouts and non-2xx replies.
    pub fn errors(&self) -> u64 {
        self.connect_errors + self.read_errors + self.write_errors + self.timeouts + self.non_2xx
    }
}

/// What to send: a GET, or a POST of a JSON body (with the demo key).
#[derive(Debug, Clone)]
pub enum Load {
    Get,
    PostJson(PathBuf),
}

/// Writes the Lua script that POSTs `body` as JSON with the demo key.
pub fn post_script(dir: &Path, name: &str, body: &str) -> Result<Load> {
    script(dir, name, body, "")
}

/// [`post_script`], paced: each connection waits `delay_ms` before each request (wrk's
/// `delay()` hook), so `c` connections send about `c / (delay + latency)` requests a second.
pub fn paced_script(dir: &Path, name: &str, body: &str, delay_ms: u32) -> Result<Load> {
    script(dir, name, body, &format!("function delay() return {delay_ms} end\n"))
}

fn script(dir: &Path, name: &str, body: &str, extra: &str) -> Result<Load> {
    let path = dir.join(format!("{name}.lua"));
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {}\"\n{extra}",
        crate::systems::DEMO_KEY
    );
    std::fs::write(&path, lua).with_context(|| format!("writing {}", path.display()))?;
    Ok(Load::PostJson(path))
}

/// Runs `wrk -t2 -c{conns} -d{duration} --timeout 10s --latency` against `url`; its output goes
/// to a file in `scratch` (std's process API, polled: no tokio `process` feature, which would
/// make this crate's build of wasmgate differ from `cargo build -p wasmgate`).
pub async fn run(url: &str, conns: u32, duration: Duration, load: &Load, scratch: &Path) -> Result<WrkStats> {
    let mut cmd = Command::new("wrk");
    // Two threads, or one for a single connection (wrk needs a connection per thread).
    cmd.arg(format!("-t{}", conns.clamp(1, 2)))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--timeout", "10s", "--latency"]);
    if let Load::PostJson(script) = load {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(url);
    let log = scratch.join("wrk.out");
    let mut wrk = Proc::spawn("wrk", cmd, &log).context("running wrk (apt-get install wrk)")?;
    // wrk stops by itself after `duration`; the margin covers connecting 10,000 sockets and the
    // 10 s request timeout.
    let bound = duration + Duration::from_secs(30);
    let status = wrk.wait_exit(bound).await.ok_or_else(|| anyhow!("wrk on {url} did not finish within {bound:?}"))?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if !status.success() {
        return Err(anyhow!("wrk failed ({status}): {text}"));
    }
    parse(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

/// Parses wrk's `--latency` summary.
pub fn parse(text: &str) -> Result<WrkStats> {
    let mut s = WrkStats::default();
    let mut saw_rps = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => s.p50_ms = duration_ms(v)?,
            ["99%", v] => s.p99_ms = duration_ms(v)?,
            ["Requests/sec:", v] => {
                s.rps = v.parse()?;
                saw_rps = true;
            }
            [n, "requests", "in", ..] => s.requests = n.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => s.non_2xx = n.parse()?,
            ["Socket", "errors:", "connect", c, "read", r, "write", w, "timeout", t] => {
                let num = |x: &str| x.trim_end_matches(',').parse::<u64>();
                s.connect_errors = num(c)?;
                s.read_errors = num(r)?;
                s.write_errors = num(w)?;
                s.timeouts = num(t)?;
            }
            _ => {}
        }
    }
    if !saw_rps {
        return Err(anyhow!("no Requests/sec line"));
    }
    Ok(s)
}

/// `380.00us`, `7.10ms`, `1.20s`, `2.00m` → milliseconds.
fn duration_ms(v: &str) -> Result<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(|| anyhow!("no unit in {v}"))?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse()?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return Err(anyhow!("unknown unit in {v}")),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_a_summary_with_errors() {
        let out = "Running 2s test @ http://127.0.0.1:1/health\n  2 threads and 50 connections\n  Latency Distribution\n     50%  380.00us\n     75%    1.00ms\n     90%    2.00ms\n     99%    1.20s\n  1234 requests in 2.00s, 1.00MB read\n  Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 5\nRequests/sec:  94890.12\nTransfer/sec: 1MB\n";
        let s = parse(out).unwrap();
        assert_eq!(s.requests, 1234);
        assert!((s.p50_ms - 0.38).abs() < 1e-9);
        assert!((s.p99_ms - 1200.0).abs() < 1e-9);
        assert_eq!(s.errors(), 15);
        assert!((s.rps - 94890.12).abs() < 1e-6);
    }
}
