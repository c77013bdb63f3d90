//! What a reload costs with many tenants: one tenant's config changes, the gateway reloads.
//! Timings are printed, never asserted (the machine is shared).
//!
//! Run with: `WASMGATE_SCALE_TENANTS=100,1000,10000 cargo test --workspace --test tenants_scale -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

use std::path::Path;
use std::time::{Duration, Instant};

use wasmgate::config::Config;
use wasmgate::policy::{EngineOptions, PolicyEngine};
use wasmgate::reload::Reloader;
use wasmgate::server::{Gateway, Snapshot};
use wasmgate_test_plugins as art;

/// The gateway part of the config: a mock upstream, the two plugins every tenant chains.
fn main_text(extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin-listen = "127.0.0.1:0"

[upstreams.mock]
endpoints = ["http://127.0.0.1:9/v1"]

[[models]]
name = "mock-gpt-4o"
upstream = "mock"

[plugins.pin]
kind = "rewrite"
path = "{rw}"

[plugins.limits]
kind = "rate-limit"
path = "{rl}"
config = {{ key = "global", requests = {{ limit = 10, window-ms = 60000 }} }}

[policy]
cache-dir = "{cache}/plugin-cache"
{extra}
"#,
        rw = art::REWRITE,
        rl = art::RATE_LIMIT,
        cache = env!("CARGO_TARGET_TMPDIR"),
    )
}

/// One tenant's keys (the body of `[tenants.<id>]`), with its own configs; `rev` varies them.
fn tenant_body(id: &str, rev: u32) -> String {
    format!(
        "chain = [\"pin\", \"limits\"]\nconfig.pin = {{ system-prompt = \"You are {id}'s assistant (rev {rev}).\" }}\nconfig.limits = {{ key = \"global\", requests = {{ limit = {}, window-ms = 60000 }} }}\n",
        100 + rev
    )
}

fn tenant_id(i: usize) -> String {
    format!("t{i:05}")
}

/// Writes a config with `n` tenants, in the main file (`dir` false) or one file each in
/// `tenants.d/`.
fn write_config(root: &Path, n: usize, dir: bool) -> std::path::PathBuf {
    let config = root.join("gateway.toml");
    if dir {
        let td = root.join("tenants.d");
        std::fs::create_dir_all(&td).unwrap();
        for i in 0..n {
            let id = tenant_id(i);
            std::fs::write(td.join(format!("{id}.toml")), tenant_body(&id, 0)).unwrap();
        }
        std::fs::write(&config, main_text("tenants-dir = \"tenants.d\"\n")).unwrap();
    } else {
        let mut text = main_text("");
        for i in 0..n {
            let id = tenant_id(i);
            text.push_str(&format!("\n[tenants.{id}]\n{}", tenant_body(&id, 0)));
        }
        std::fs::write(&config, text).unwrap();
    }
    config
}

/// Changes tenant `i` to revision `rev`.
fn change_tenant(root: &Path, i: usize, rev: u32, dir: bool) {
    let id = tenant_id(i);
    if dir {
        std::fs::write(root.join("tenants.d").join(format!("{id}.toml")), tenant_body(&id, rev)).unwrap();
    } else {
        let path = root.join("gateway.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace(&tenant_body(&id, rev - 1), &tenant_body(&id, rev));
        std::fs::write(&path, text).unwrap();
    }
}

async fn measure(n: usize, dir: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), n, dir);
    let started = Instant::now();
    let c = Config::load(&config).unwrap_or_else(|e| panic!("{e}"));
    let load = started.elapsed();
    let opts = EngineOptions {
        max_instances: u32::try_from(2 * n + 100).unwrap(),
        max_memory_mib: 64,
        cache_dir: c.policy.cache_dir.clone(),
        ..Default::default()
    };
    let engine = PolicyEngine::new(opts).unwrap();
    let snapshot = Snapshot::build(c, engine).await.unwrap_or_else(|e| panic!("{e}"));
    let start = started.elapsed();
    let gw = Gateway::new(snapshot);
    let reloader = Reloader::new(gw.clone(), Some(config.clone()));
    let mut unchanged = Vec::new();
    let mut one = Vec::new();
    for rev in 1..=3u32 {
        let t = Instant::now();
        let r = reloader.reload().await;
        unchanged.push(t.elapsed());
        assert!(!r.swapped && r.config_error.is_none(), "{r:?}");
        change_tenant(tmp.path(), n / 2, rev, dir);
        let t = Instant::now();
        let r = reloader.reload().await;
        one.push(t.elapsed());
        assert!(r.swapped && r.config_error.is_none(), "{r:?}");
        assert_eq!(r.loaded.len(), 2, "only the changed tenant's two plugins load: {r:?}");
    }
    let ms = |v: &[Duration]| v.iter().map(|d| format!("{:.1}", d.as_secs_f64() * 1e3)).collect::<Vec<_>>().join(" / ");
    println!(
        "tenants={n:>6} where={:<4} config load {:>8.1} ms, start {:>8.1} ms | reload, nothing changed: {} ms | one tenant changed: {} ms",
        if dir { "dir" } else { "main" },
        load.as_secs_f64() * 1e3,
        start.as_secs_f64() * 1e3,
        ms(&unchanged),
        ms(&one),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; prints timings (see the header)"]
async fn reload_cost_by_tenant_count() {
    let counts = std::env::var("WASMGATE_SCALE_TENANTS").unwrap_or_else(|_| "100,1000".into());
    let wheres = std::env::var("WASMGATE_SCALE_WHERE").unwrap_or_else(|_| "main,dir".into());
    for n in counts.split(',').map(|s| s.trim().parse::<usize>().unwrap()) {
        for w in wheres.split(',') {
            measure(n, w.trim() == "dir").await;
        }
    }
}
