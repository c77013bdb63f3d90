//! SaaS scale over real sockets: thousands of tenants, each with its own plugin configs, on a
//! tiny shared idle budget (instances evicted and remade, never crossing tenants); instance
//! slots exhausted (calls wait, then succeed); an auth plugin with 100,000 keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::Duration;

use common::config_builder::TestConfig;
use common::*;
use serde_json::Value;
use wasmgate::mock::{MockConfig, MockServer};
use wasmgate::server::{self, Snapshot};
use wasmgate_test_plugins as art;

async fn start(config: &TestConfig) -> Harness {
    let mock = MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig::default()).await.unwrap();
    let config = config.clone().mock(mock.addr).build();
    let gw = server::start(Snapshot::from_config(config).await.unwrap_or_else(|e| panic!("{e}"))).await.unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    Harness { gw, mock, http }
}

async fn capacity(h: &Harness) -> Value {
    h.http.get(h.admin_url("/admin/capacity")).send().await.unwrap().json().await.unwrap()
}

async fn chat(h: &Harness, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let body = r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let mut r = h.http.post(h.url(path)).header("content-type", "application/json");
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    r.body(body).send().await.unwrap()
}

/// 2,000 tenants, each with the `header-echo` plugin configured to answer its own id, on an
/// idle budget of 8 instances (1 per plugin): requests in round robin keep evicting, and every
/// answer still carries its own tenant's config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_tenants_share_a_tiny_idle_budget_without_crossing() {
    const TENANTS: usize = 2000;
    let mut cfg = TestConfig::new()
        .plugin("echo", "rewrite", art::HEADER_ECHO, r#"{ name = "x-v", value = "none" }"#)
        .chain(&[])
        .set("policy.instances.idle", 8)
        .set("policy.instances.idle-per-plugin", 1);
    for i in 0..TENANTS {
        let id = format!("t{i}");
        cfg = cfg
            .tenant(&id, &["echo"], &[])
            .set(&format!("tenants.{id}.config.echo.name"), "x-v")
            .set(&format!("tenants.{id}.config.echo.value"), id.clone());
    }
    let h = start(&cfg).await;

    let idle = capacity(&h).await;
    assert_eq!(idle["idle"]["instances"], 0, "loading validated every config and kept no instance: {idle}");
    assert_eq!(idle["live"], 0, "{idle}");

    // Two rounds over a spread of tenants, the last one included.
    let picks: Vec<usize> = (0..TENANTS).step_by(97).chain([TENANTS - 1]).collect();
    for round in 0..2 {
        for &i in &picks {
            let r = chat(&h, &format!("/t/t{i}/v1/chat/completions"), &[]).await;
            assert_eq!(r.status(), 200, "round {round}, tenant t{i}");
            assert_eq!(
                r.headers().get("x-plugin-version").and_then(|v| v.to_str().ok()),
                Some(format!("t{i}").as_str()),
                "round {round}: tenant t{i} was answered with another tenant's config"
            );
        }
    }
    let c = capacity(&h).await;
    assert!(c["idle"]["instances"].as_u64().unwrap() <= 8, "over the idle budget: {c}");
    assert!(c["evicted"]["budget"].as_u64().unwrap() >= (picks.len() - 8) as u64, "nothing was evicted: {c}");
    // Every instance made was either given back to the pool or dropped: none leaked.
    assert_eq!(c["live"], c["idle"]["instances"], "{c}");
}

/// Two instance slots, a plugin that holds its instance for 300 ms, six requests at once:
/// the calls that find the slots taken wait for one (capacity is load, not a failure) and
/// every request succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_wait_for_a_free_slot_then_succeed() {
    let cfg = TestConfig::new()
        .plugin("slow", "rewrite", art::FLAKY, "{}")
        .set("plugins.slow.timeout", "2s")
        .chain(&["slow"])
        .set("policy.instances.max", 2)
        .set("policy.instances.idle", 1);
    let h = start(&cfg).await;
    let calls = (0..6).map(|_| chat(&h, "/v1/chat/completions", &[("x-flaky", "spin-300")]));
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = futures_util::future::join_all(calls).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, vec![200; 6], "after {:?}", started.elapsed());
    let c = capacity(&h).await;
    assert_eq!(c["slots"], 2, "{c}");
}

const KEYS: usize = 100_000;

/// `cfg` with plugin `auth`: `auth-keys` holding the hashes of `sk-0` … `sk-99999` (subjects
/// `user-<i>`), with room for that config in its memory.
fn with_keys(cfg: TestConfig) -> TestConfig {
    use sha2::{Digest, Sha256};
    let keys: Vec<toml::Value> = (0..KEYS)
        .map(|i| {
            let mut k = toml::Table::new();
            k.insert("sha256".into(), hex::encode(Sha256::digest(format!("sk-{i}").as_bytes())).into());
            k.insert("subject".into(), format!("user-{i}").into());
            toml::Value::Table(k)
        })
        .collect();
    let mut config = toml::Table::new();
    config.insert("keys".into(), toml::Value::Array(keys));
    cfg.plugin("auth", "auth", art::AUTH_KEYS, "{ keys = [] }")
        .set("plugins.auth.config", config)
        .set("plugins.auth.memory-limit-mib", 128)
}

/// `auth-keys` with 100,000 keys: configures at load (its own deadline, not the 50 ms of a
/// call), and finds the first, a middle and the last key, and refuses a wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_plugin_with_a_hundred_thousand_keys() {
    let cfg = with_keys(TestConfig::new()).set("policy.forward-identity", true).chain(&["auth"]);
    let h = start(&cfg).await;
    for i in [0, 50_000, KEYS - 1] {
        let r = chat(&h, "/v1/chat/completions", &[("authorization", &format!("Bearer sk-{i}"))]).await;
        assert_eq!(r.status(), 200, "key {i}");
        let rec = h.mock.recorded();
        let seen = rec.last().expect("the request reached the upstream");
        assert_eq!(seen.headers.get("x-wasmgate-subject"), Some(&format!("user-{i}")), "key {i}");
    }
    let r = chat(&h, "/v1/chat/completions", &[("authorization", "Bearer sk-100000")]).await;
    assert_eq!(r.status(), 401);
}

/// A plugin whose `configure` is slow (100,000 keys) keeps its canary, and a burst of
/// concurrent requests makes at most two more instances at a time instead of one per request:
/// the others wait for an instance to be returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_an_expensive_plugin_does_not_configure_it_once_per_request() {
    let cfg = with_keys(TestConfig::new()).chain(&["auth"]);
    let h = start(&cfg).await;
    let c = capacity(&h).await;
    assert_eq!((c["created"].as_u64(), c["idle"]["instances"].as_u64()), (Some(1), Some(1)), "canary kept: {c}");
    let calls = (0..16).map(|i| {
        let key = format!("Bearer sk-{i}");
        let h = &h;
        async move { chat(h, "/v1/chat/completions", &[("authorization", &key)]).await.status().as_u16() }
    });
    let statuses: Vec<u16> = futures_util::future::join_all(calls).await;
    assert_eq!(statuses, vec![200; 16]);
    let c = capacity(&h).await;
    assert!(c["created"].as_u64().unwrap() <= 3, "configured once per request: {c}");
}

/// An instance unused for longer than `idle-timeout` is given back, with no traffic at all to
/// trigger it (the engine's sweeper, once a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_are_given_back_after_the_idle_timeout() {
    let cfg = TestConfig::new()
        .plugin("echo", "rewrite", art::HEADER_ECHO, r#"{ name = "x-v", value = "1" }"#)
        .chain(&["echo"])
        .set("policy.instances.idle-timeout", "1s");
    let h = start(&cfg).await;
    assert_eq!(chat(&h, "/v1/chat/completions", &[]).await.status(), 200);
    let c = capacity(&h).await;
    assert_eq!((c["idle"]["instances"].as_u64(), c["live"].as_u64()), (Some(1), Some(1)), "{c}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = capacity(&h).await;
        if c["idle"]["instances"] == 0 {
            assert_eq!(c["live"], 0, "{c}");
            assert_eq!(c["evicted"]["idle"], 1, "{c}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never given back: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The plugin still answers: a new instance is made on the next call.
    assert_eq!(chat(&h, "/v1/chat/completions", &[]).await.status(), 200);
}
