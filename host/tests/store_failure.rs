//! The chain against a quota store that never answers: a host failure, never a guest trap,
//! never counted by the plugin's breaker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use wasmgate::policy::quota::{BoxFuture, QuotaStatus, QuotaStore};
use wasmgate::policy::{
    Chain, ChainOutcome, EngineOptions, FailureKind, FailurePolicy, PluginKind, PluginSource, PluginSpec, PolicyEngine,
    Recorder, RequestView,
};
use wasmgate_test_plugins as art;

/// A store whose every call hangs (an unreachable Redis, say).
struct Stalled;

impl QuotaStore for Stalled {
    fn consume<'a>(&'a self, _: &'a str, _: u64, _: u64, _: Duration) -> BoxFuture<'a, QuotaStatus> {
        Box::pin(std::future::pending())
    }
    fn adjust<'a>(&'a self, _: &'a str, _: i64, _: Duration, _: u64) -> BoxFuture<'a, ()> {
        Box::pin(std::future::pending())
    }
}

fn spec(failure: FailurePolicy) -> PluginSpec {
    PluginSpec {
        id: "limits".into(),
        kind: PluginKind::RateLimit,
        source: PluginSource::Path(art::RATE_LIMIT.into()),
        config_json: r#"{"key":"global","requests":{"limit":100,"window-ms":60000}}"#.into(),
        namespace: "global".into(),
        failure,
        failure_explicit: true,
        body_limit: None,
        timeout: Duration::from_millis(50),
        configure_timeout: Duration::from_secs(10),
        memory_limit_bytes: 64 << 20,
        pass_body: false,
        max_reuse: 1000,
    }
}

fn view() -> RequestView {
    RequestView { id: "t".into(), model: "m".into(), endpoint: "chat", ..RequestView::default() }
}

#[tokio::test]
async fn a_stalled_store_fails_the_call_as_the_stores_and_never_opens_the_breaker() {
    let engine = PolicyEngine::with_quota_store(EngineOptions::default(), Arc::new(Stalled)).unwrap();
    let chain = Chain::new(vec![engine.load(spec(FailurePolicy::FailClosed)).await.unwrap()]);
    // More calls than any breaker threshold: every one is the store's failure, none a trap.
    for i in 0..8 {
        let err = chain.run(0..1, &mut view(), &mut Recorder::with_body(Bytes::new())).await.unwrap_err();
        assert_eq!(err.kind, FailureKind::StoreUnavailable, "call {i}: {err}");
    }
    let p = &chain.plugins()[0];
    assert!(!p.breaker_open());
    assert!(p.breaker_states().iter().all(|b| b.consecutive_failures == 0), "{:?}", p.breaker_states());
}

#[tokio::test]
async fn a_fail_open_plugin_over_a_stalled_store_is_skipped() {
    let engine = PolicyEngine::with_quota_store(EngineOptions::default(), Arc::new(Stalled)).unwrap();
    let chain = Chain::new(vec![engine.load(spec(FailurePolicy::FailOpen)).await.unwrap()]);
    let out = chain.run(0..1, &mut view(), &mut Recorder::with_body(Bytes::new())).await.unwrap();
    assert!(matches!(out, ChainOutcome::Continue));
}
