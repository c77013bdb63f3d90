//! The targets, judged on a run's figures for wasmgate with the full chain on: met, or
//! missed and by how much. Never a pass/fail of the harness (timings are noisy on 2 cores).

use crate::model::{Results, Variant};
use crate::systems::SystemId;

const CHAIN: SystemId = SystemId::WasmgateChain;

/// One target's line in the report.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub target: String,
    pub measured: String,
    pub verdict: String,
}

fn verdict(target: &str, measured: String, met: Option<bool>, miss: String) -> Verdict {
    let verdict = match met {
        Some(true) => "met".to_string(),
        Some(false) => format!("**missed**: {miss}"),
        None => "not measured in this run".to_string(),
    };
    Verdict { target: target.into(), measured, verdict }
}

/// Ratio target `chain / go ≥ want` over every connection count of a handling variant.
fn ratio_target(r: &Results, variant: Variant, want: f64, target: &str) -> Verdict {
    let mut parts = Vec::new();
    let mut worst: Option<f64> = None;
    for &c in &r.plan.handling_conns {
        if let (Some(ch), Some(go)) = (r.point(variant, CHAIN, c), r.point(variant, SystemId::GoChi, c)) {
            let x = ch.wrk.rps / go.wrk.rps;
            parts.push(format!("c={c}: {:.0} vs {:.0} req/s = {x:.2}×", ch.wrk.rps, go.wrk.rps));
            worst = Some(worst.map_or(x, |w: f64| w.min(x)));
        }
    }
    let miss = worst
        .map(|w| format!("{w:.2}× at worst, {:.0} % short of {want}×", (1.0 - w / want) * 100.0))
        .unwrap_or_default();
    verdict(target, parts.join("; "), worst.map(|w| w >= want), miss)
}

/// Every target of issue 7.
pub fn evaluate(r: &Results) -> Vec<Verdict> {
    let mut out = vec![
        ratio_target(r, Variant::ChatForward, 1.3, "chat throughput ≥ 1.3× Go chi (both forwarding to the 0 ms mock)"),
        ratio_target(r, Variant::Health, 1.5, "health throughput ≥ 1.5× Go chi"),
    ];

    let at = |s, c| r.point(Variant::Proxy, s, c);
    let (ch, direct, nginx) = (at(CHAIN, 1000), at(SystemId::Direct, 1000), at(SystemId::Nginx, 1000));
    out.push(match (ch, direct) {
        (Some(ch), Some(d)) => {
            let added = ch.wrk.p50_ms - d.wrk.p50_ms;
            verdict(
                "proxy added latency p50 ≤ 0.5 ms at 1,000 connections",
                format!("{:+.2} ms ({:.2} vs {:.2} ms direct)", added, ch.wrk.p50_ms, d.wrk.p50_ms),
                Some(added <= 0.5),
                format!("{:.2} ms over the 0.5 ms budget", added - 0.5),
            )
        }
        _ => verdict("proxy added latency p50 ≤ 0.5 ms at 1,000 connections", "—".into(), None, String::new()),
    });
    out.push(match (ch, nginx) {
        (Some(ch), Some(n)) => verdict(
            "proxy p99 at 1,000 connections no worse than nginx's",
            format!("{:.1} ms vs nginx {:.1} ms", ch.wrk.p99_ms, n.wrk.p99_ms),
            Some(ch.wrk.p99_ms <= n.wrk.p99_ms),
            format!("{:+.1} ms ({:.2}× nginx's)", ch.wrk.p99_ms - n.wrk.p99_ms, ch.wrk.p99_ms / n.wrk.p99_ms),
        ),
        _ => verdict("proxy p99 at 1,000 connections no worse than nginx's", "—".into(), None, String::new()),
    });
    out.push(match (at(CHAIN, 5000), at(SystemId::Nginx, 5000)) {
        (Some(ch), Some(n)) => verdict(
            "proxy throughput at 5,000 connections ≥ nginx's",
            format!("{:.0} vs nginx {:.0} req/s ({:.2}×)", ch.wrk.rps, n.wrk.rps, ch.wrk.rps / n.wrk.rps),
            Some(ch.wrk.rps >= n.wrk.rps),
            format!("{:.0} % below nginx", (1.0 - ch.wrk.rps / n.wrk.rps) * 100.0),
        ),
        _ => verdict("proxy throughput at 5,000 connections ≥ nginx's", "—".into(), None, String::new()),
    });

    let sse = r.sse_point(CHAIN, 10_000);
    let sse_direct = r.sse_point(SystemId::Direct, 10_000);
    out.push(match sse {
        Some(p) => verdict(
            "10,000 concurrent SSE streams, all complete",
            format!(
                "{} completed, {} errors, {} open at once",
                p.stats.completed, p.stats.errors, p.stats.max_concurrent
            ),
            Some(p.stats.errors == 0 && p.stats.max_concurrent >= 10_000),
            format!("{} errors, peak {} open", p.stats.errors, p.stats.max_concurrent),
        ),
        None => verdict("10,000 concurrent SSE streams, all complete", "—".into(), None, String::new()),
    });
    out.push(match sse.and_then(|p| p.kb_per_stream()) {
        Some(kb) => verdict(
            "≤ 16 KB RSS per stream at 10,000 streams",
            format!("{kb:.1} KB"),
            Some(kb <= 16.0),
            format!("{:.1} KB over ({:.1}×)", kb - 16.0, kb / 16.0),
        ),
        None => verdict("≤ 16 KB RSS per stream at 10,000 streams", "—".into(), None, String::new()),
    });
    out.push(match (sse, sse_direct) {
        (Some(p), Some(d)) if p.stats.completed > 0 => {
            let added = p.stats.ttft_p50_ms - d.stats.ttft_p50_ms;
            verdict(
                "≤ 1 ms added time to first token (p50) at 10,000 streams",
                format!(
                    "{:+.2} ms ({:.2} vs {:.2} ms direct; p99 {:.1} vs {:.1} ms)",
                    added, p.stats.ttft_p50_ms, d.stats.ttft_p50_ms, p.stats.ttft_p99_ms, d.stats.ttft_p99_ms
                ),
                Some(added <= 1.0),
                format!("{:.2} ms over", added - 1.0),
            )
        }
        _ => verdict("≤ 1 ms added time to first token (p50) at 10,000 streams", "—".into(), None, String::new()),
    });
    out.push(match at(CHAIN, 10_000) {
        Some(p) => verdict(
            "zero errors at 10,000 proxy connections",
            format!("{} errors in {} requests", p.wrk.errors(), p.wrk.requests),
            Some(p.wrk.errors() == 0),
            format!("{} errors", p.wrk.errors()),
        ),
        None => verdict("zero errors at 10,000 proxy connections", "—".into(), None, String::new()),
    });
    out.push(match r.idle_kb(CHAIN) {
        Some(kb) => {
            let mib = kb as f64 / 1024.0;
            let mb = |k: Option<u64>| k.map(|k| format!("{:.1} MB", k as f64 / 1024.0)).unwrap_or_else(|| "—".into());
            verdict(
                "idle RSS ≤ 30 MB",
                format!(
                    "{mib:.1} MB with the plugins precompiled in `policy.cache-dir`; first start, compiling them: {}; no plugins: {}",
                    mb(r.chain_cold_idle_kb),
                    mb(r.idle_kb(SystemId::Wasmgate))
                ),
                Some(mib <= 30.0),
                format!("{:.1} MB over", mib - 30.0),
            )
        }
        None => verdict("idle RSS ≤ 30 MB", "—".into(), None, String::new()),
    });
    out
}
