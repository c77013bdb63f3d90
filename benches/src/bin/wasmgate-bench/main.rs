//! The gateway load harness: one command that builds wasmgate and the baselines, starts a mock
//! upstream and each system in turn on free loopback ports, drives the report's five scenarios
//! with `wrk` (and an SSE client of our own for scenario 4), and writes `REPORT.md`,
//! `results.json` and SVG charts.
//!
//! Run with: `cargo run -p wasmgate-bench --release -- all` (about 15 minutes), or
//! `cargo run -p wasmgate-bench --release -- all --quick` (under 3 minutes; checks that every
//! system answers correctly and exits non-zero if one does not, never on a timing).

mod charts;
mod model;
mod prepare;
mod probe;
mod process;
mod report;
mod rss;
mod scenarios;
mod sse;
mod systems;
mod targets;
mod tenants;
mod wrk;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "wasmgate-bench", about = "Side-by-side gateway benchmarks (wasmgate, Go chi, FastAPI, nginx)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build everything, run the five scenarios on every system, write the report.
    All(AllArgs),
    /// wasmgate alone at SaaS scale: 10 → 10,000 tenants and 1 → 100,000 API keys; writes
    /// `tenants.md`.
    Tenants(TenantsArgs),
}

#[derive(Debug, clap::Args)]
struct TenantsArgs {
    /// 10 and 100 tenants, 1 and 1,000 keys, 2 s loads.
    #[arg(long)]
    quick: bool,
    /// Where to write tenants.md (default: `benches/results`, or `target/bench-quick` with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the release build of wasmgate.
    #[arg(long)]
    no_build: bool,
}

#[derive(Debug, clap::Args)]
struct AllArgs {
    /// Every scenario briefly (< 3 minutes), as CI runs it: fails if a system answers wrongly.
    #[arg(long)]
    quick: bool,
    /// Where to write REPORT.md, results.json and the charts (default: `benches/results`, or
    /// `target/bench-quick` with --quick, so a quick run never overwrites the committed report).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the builds (binaries from an earlier run must exist).
    #[arg(long)]
    no_build: bool,
    /// Only these systems (comma-separated ids, e.g. `wasmgate,go-chi`); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::All(args) => runtime.block_on(all(args)),
        Command::Tenants(args) => runtime.block_on(tenants_scenario(args)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("FAILED: some system did not answer correctly (see the failures above and in the report)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where a report goes: `--out`, else `benches/results`, or `target/bench-quick` with --quick
/// (a quick run never overwrites the committed report); created if missing.
fn out_dir(root: &std::path::Path, out: Option<PathBuf>, quick: bool) -> Result<PathBuf> {
    let out = match out {
        Some(p) => p,
        None if quick => root.join("target/bench-quick"),
        None => root.join("benches/results"),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    Ok(out)
}

/// The `tenants` scenario alone; `Ok(false)` never (a failure is an error).
async fn tenants_scenario(args: TenantsArgs) -> Result<bool> {
    let root = prepare::workspace_root()?;
    let out = out_dir(&root, args.out, args.quick)?;
    let (tools, _scratch) = prepare::prepare_wasmgate(&root, !args.no_build).await?;
    let md = tenants::run(&tools, args.quick).await?;
    let path = out.join("tenants.md");
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    println!("{md}\nreport: {}", path.display());
    Ok(true)
}

/// Runs everything; `Ok(false)` when a correctness check failed.
async fn all(args: AllArgs) -> Result<bool> {
    let root = prepare::workspace_root()?;
    let out = out_dir(&root, args.out, args.quick)?;
    let (tools, _scratch) = prepare::prepare(&root, !args.no_build).await?;
    let plan = scenarios::Plan::new(args.quick);
    let systems = systems::SystemId::selected(&args.only)?;
    let started = std::time::Instant::now();
    let results = scenarios::run_all(&tools, &plan, &systems).await?;
    let ok = results.failures.is_empty();
    let mut results = results;
    results.wall_seconds = started.elapsed().as_secs_f64();
    report::write(&out, &results)?;
    charts::write(&out, &results)?;
    println!("report: {}", out.join("REPORT.md").display());
    for f in &results.failures {
        eprintln!("check failed: {f}");
    }
    let failed = results.failures.len();
    println!("bench checks: {} passed, {failed} failed", (results.checks as usize).saturating_sub(failed));
    Ok(ok)
}
