//! The targets (issue 13, the governed fast path), judged on a run's figures for
//! wasmgate with the full chain on, over the h2c and the HTTP/1.1 upstream alike: met, or missed
//! and by how much. Never a pass/fail of the harness (timings are noisy on 2 cores).

use crate::model::{Results, Variant};
use crate::scenarios::PACED_CONNS;
use crate::systems::SystemId;

/// The chained gateways, one per upstream protocol.
const CHAINS: [(SystemId, &str); 2] = [(SystemId::WasmgateChain, "h2c"), (SystemId::WasmgateChainH1, "HTTP/1.1")];

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

/// Judges `target` on every chained gateway: `each` gives (figure, met, how far off) for one.
fn on_chains(target: &str, each: impl Fn(SystemId) -> Option<(String, bool, String)>) -> Verdict {
    let mut measured = Vec::new();
    let mut misses = Vec::new();
    let mut all_met: Option<bool> = None;
    for (id, proto) in CHAINS {
        if let Some((figure, met, miss)) = each(id) {
            measured.push(format!("{proto}: {figure}"));
            if !met {
                misses.push(format!("{proto}: {miss}"));
            }
            all_met = Some(all_met.unwrap_or(true) && met);
        }
    }
    verdict(target, measured.join("; "), all_met, misses.join("; "))
}

/// The parts of a combined target that missed, joined.
fn missed(parts: &[(bool, String)]) -> String {
    parts.iter().filter(|(ok, _)| !ok).map(|(_, what)| what.as_str()).collect::<Vec<_>>().join(", ")
}

/// Every target of issue 13.
pub fn evaluate(r: &Results) -> Vec<Verdict> {
    let handling = &r.plan.handling_conns;
    let mut out = vec![
        on_chains("chat ≥ 1.3× Go chi (both forwarding to the 0 ms mock), every connection count", |id| {
            let xs: Vec<(u32, f64)> = handling
                .iter()
                .filter_map(|&c| {
                    let (ch, go) =
                        (r.point(Variant::ChatForward, id, c)?, r.point(Variant::ChatForward, SystemId::GoChi, c)?);
                    Some((c, ch.wrk.rps / go.wrk.rps))
                })
                .collect();
            let worst = xs.iter().map(|x| x.1).reduce(f64::min)?;
            let figure = xs.iter().map(|(c, x)| format!("c={c} {x:.2}×")).collect::<Vec<_>>().join(", ");
            Some((figure, worst >= 1.3, format!("{worst:.2}× at worst")))
        }),
        on_chains("the chain costs ≤ 10 % of the no-plugin throughput (chat, 0 ms mock)", |id| {
            let plain = id.unchained()?;
            let costs: Vec<(u32, f64)> = handling
                .iter()
                .filter_map(|&c| {
                    let (ch, p) = (r.point(Variant::ChatForward, id, c)?, r.point(Variant::ChatForward, plain, c)?);
                    Some((c, (1.0 - ch.wrk.rps / p.wrk.rps) * 100.0))
                })
                .collect();
            let worst = costs.iter().map(|x| x.1).reduce(f64::max)?;
            let figure = costs.iter().map(|(c, x)| format!("c={c} −{x:.0} %")).collect::<Vec<_>>().join(", ");
            Some((figure, worst <= 10.0, format!("−{worst:.0} % at worst")))
        }),
        on_chains("the chain adds ≤ 5 µs of CPU per request (paced ~3,000 req/s)", |id| {
            let ch = r.point(Variant::Paced, id, PACED_CONNS)?;
            let plain = r.point(Variant::Paced, id.unchained()?, PACED_CONNS)?;
            let added = ch.cpu_us_per_req? - plain.cpu_us_per_req?;
            Some((format!("{added:+.1} µs"), added <= 5.0, format!("{:.1} µs over", added - 5.0)))
        }),
    ];

    out.push(on_chains("proxy at 1,000 connections: added p50 ≤ 1 ms, added p99 ≤ nginx's", |id| {
        let (ch, d, n) = (
            r.point(Variant::Proxy, id, 1000)?,
            r.point(Variant::Proxy, SystemId::Direct, 1000)?,
            r.point(Variant::Proxy, SystemId::Nginx, 1000)?,
        );
        let (a50, a99, n99) = (ch.wrk.p50_ms - d.wrk.p50_ms, ch.wrk.p99_ms - d.wrk.p99_ms, n.wrk.p99_ms - d.wrk.p99_ms);
        let parts = [
            (a50 <= 1.0, format!("added p50 {:.2} ms over 1 ms", a50 - 1.0)),
            (a99 <= n99, format!("added p99 {:.1} ms over nginx's", a99 - n99)),
        ];
        Some((
            format!("added p50 {a50:+.2} ms, p99 {a99:+.1} ms (nginx {n99:+.1} ms)"),
            parts.iter().all(|(ok, _)| *ok),
            missed(&parts),
        ))
    }));
    out.push(on_chains("proxy at 5,000 connections: req/s ≥ nginx's, p99 ≤ nginx's, 0 errors", |id| {
        let (ch, n) = (r.point(Variant::Proxy, id, 5000)?, r.point(Variant::Proxy, SystemId::Nginx, 5000)?);
        let x = ch.wrk.rps / n.wrk.rps;
        let parts = [
            (x >= 1.0, format!("{x:.2}× nginx's req/s")),
            (ch.wrk.p99_ms <= n.wrk.p99_ms, format!("p99 {:.2}× nginx's", ch.wrk.p99_ms / n.wrk.p99_ms)),
            (ch.wrk.errors() == 0, format!("{} errors", ch.wrk.errors())),
        ];
        Some((
            format!(
                "{:.0} req/s ({x:.2}× nginx), p99 {:.0} vs {:.0} ms, {} errors",
                ch.wrk.rps,
                ch.wrk.p99_ms,
                n.wrk.p99_ms,
                ch.wrk.errors()
            ),
            parts.iter().all(|(ok, _)| *ok),
            missed(&parts),
        ))
    }));
    out.push(on_chains("10,000 SSE streams: 0 errors, added TTFT p50 ≤ 5 ms, TTFT p99 ≤ nginx's", |id| {
        let (p, d, n) =
            (r.sse_point(id, 10_000)?, r.sse_point(SystemId::Direct, 10_000)?, r.sse_point(SystemId::Nginx, 10_000)?);
        let added = p.stats.ttft_p50_ms - d.stats.ttft_p50_ms;
        let parts = [
            (p.stats.errors == 0, format!("{} errors", p.stats.errors)),
            (added <= 5.0, format!("added TTFT p50 {added:+.2} ms")),
            (
                p.stats.ttft_p99_ms <= n.stats.ttft_p99_ms,
                format!("TTFT p99 {:.2}× nginx's", p.stats.ttft_p99_ms / n.stats.ttft_p99_ms),
            ),
        ];
        Some((
            format!(
                "{} errors, added p50 {added:+.2} ms, p99 {:.1} vs nginx {:.1} ms",
                p.stats.errors, p.stats.ttft_p99_ms, n.stats.ttft_p99_ms
            ),
            parts.iter().all(|(ok, _)| *ok),
            missed(&parts),
        ))
    }));
    out.push(on_chains("≤ 16 KB RSS per stream at 10,000 streams", |id| {
        let kb = r.sse_point(id, 10_000)?.kb_per_stream()?;
        Some((format!("{kb:.1} KB"), kb <= 16.0, format!("{:.1} KB over", kb - 16.0)))
    }));
    out.push(on_chains("one connection: added p99 ≤ 100 µs over direct", |id| {
        let (p, d) = (r.point(Variant::Single, id, 1)?, r.point(Variant::Single, SystemId::Direct, 1)?);
        let added = (p.wrk.p99_ms - d.wrk.p99_ms) * 1000.0;
        let a50 = (p.wrk.p50_ms - d.wrk.p50_ms) * 1000.0;
        Some((
            format!("p99 {added:+.0} µs (p50 {a50:+.0} µs)"),
            added <= 100.0,
            format!("{:.0} µs over", added - 100.0),
        ))
    }));
    out.push(on_chains("CPU per request at ~3,000 req/s ≤ ½ Go chi's", |id| {
        let ch = r.point(Variant::Paced, id, PACED_CONNS)?;
        let go = r.point(Variant::Paced, SystemId::GoChi, PACED_CONNS)?;
        let (a, b) = (ch.cpu_us_per_req?, go.cpu_us_per_req?);
        Some((format!("{a:.1} vs Go chi {b:.1} µs ({:.2}×)", a / b), a <= b / 2.0, format!("{:.2}× Go chi's", a / b)))
    }));
    out.push(on_chains("idle RSS ≤ 20 MB with the chain precompiled", |id| {
        let mib = r.idle_kb(id)? as f64 / 1024.0;
        Some((format!("{mib:.1} MB"), mib <= 20.0, format!("{:.1} MB over", mib - 20.0)))
    }));
    out
}
