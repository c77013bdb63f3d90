//! What a plugin costs: one call per reference plugin, the whole chain, the whole policy phase
//! of a request (the chain, then the rate-limit's `settle` with the response's usage), and the
//! chain with a fresh instance per request (`max-reuse = 1`); the Python and JavaScript
//! examples likewise. The allocator is the gateway binary's (mimalloc).
//!
//! Run with: cargo bench -p wasmgate-bench --bench policy

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgate::policy::{Chain, ChainOutcome, EngineOptions, Outcome, PluginSpec, PolicyEngine, Recorder, Usage};
use wasmgate_bench::{BODY_WITH_PII, allowlist_js, auth, rate_limit, redact_py, request_view, rewrite};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn chain(rt: &tokio::runtime::Runtime, engine: &PolicyEngine, specs: Vec<PluginSpec>) -> Chain {
    rt.block_on(async {
        let mut plugins = Vec::new();
        for s in specs {
            plugins.push(engine.load(s).await.unwrap());
        }
        Chain::new(plugins)
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    // Compiled once into the target dir, as a production restart finds its plugins (and a
    // profile of the bench is of the calls, not of cranelift).
    let cache_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-bench-cache");
    let engine = PolicyEngine::new(EngineOptions { cache_dir: Some(cache_dir), ..EngineOptions::default() }).unwrap();
    let cases: Vec<(&str, Vec<PluginSpec>, &[u8])> = vec![
        ("auth-keys", vec![auth(u32::MAX)], b""),
        ("rewrite", vec![rewrite(u32::MAX)], b""),
        ("rate-limit", vec![rate_limit(u32::MAX)], b""),
        (
            "chain auth+rewrite+rate-limit (reused instances)",
            vec![auth(u32::MAX), rewrite(u32::MAX), rate_limit(u32::MAX)],
            b"",
        ),
        ("chain auth+rewrite+rate-limit (fresh instance per request)", vec![auth(1), rewrite(1), rate_limit(1)], b""),
        ("allowlist-js (JavaScript auth)", vec![allowlist_js(u32::MAX)], b""),
        ("allowlist-js (fresh instance per request)", vec![allowlist_js(1)], b""),
        ("redact-py (Python rewrite, body with PII)", vec![redact_py(u32::MAX)], BODY_WITH_PII),
        ("redact-py (fresh instance per request)", vec![redact_py(1)], BODY_WITH_PII),
    ];
    let mut group = c.benchmark_group("policy");
    for (name, specs, body) in cases {
        let ch = chain(&rt, &engine, specs);
        // Sanity: the chain lets the bench request through.
        let body = bytes::Bytes::from_static(body);
        let out = rt.block_on(async {
            ch.run(0..usize::MAX, &mut request_view(), &mut Recorder::with_body(body.clone())).await.unwrap()
        });
        assert!(matches!(out, ChainOutcome::Continue), "{name}: {out:?}");
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let mut view = request_view();
                let mut edits = Recorder::with_body(body.clone());
                let out = ch.run(0..usize::MAX, &mut view, &mut edits).await.unwrap();
                std::hint::black_box((out, edits));
            })
        });
    }
    // The policy phase of one request as the gateway runs it: the chain on the request, then,
    // once the response is in, the rate-limit plugin's `settle` with its usage.
    let ch = chain(&rt, &engine, vec![auth(u32::MAX), rewrite(u32::MAX), rate_limit(u32::MAX)]);
    let usage = Usage { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 };
    // Sanity, outside the measured loop: the rate-limit reserves, so there is a settle to run.
    let reserved = rt.block_on(async {
        let mut edits = Recorder::default();
        ch.run(0..usize::MAX, &mut request_view(), &mut edits).await.unwrap();
        let n = edits.settlements.len();
        for s in edits.settlements.drain(..) {
            s.settle(Some(usage), Outcome::Completed).await;
        }
        n
    });
    assert_eq!(reserved, 1, "the rate-limit reserved");
    group.bench_function("policy phase: chain + settle", |b| {
        b.to_async(&rt).iter(|| async {
            let mut view = request_view();
            let mut edits = Recorder::default();
            let out = ch.run(0..usize::MAX, &mut view, &mut edits).await.unwrap();
            for s in edits.settlements.drain(..) {
                s.settle(Some(usage), Outcome::Completed).await;
            }
            std::hint::black_box(out);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
