//! The crash-loop breaker over real sockets: a cancelled half-open trial (the client went
//! away mid-call) does not keep it open, tenants have their own breakers for a shared global
//! plugin, a reload that swaps in a new version resets it, and a full instance pool is
//! capacity, not a plugin fault. The `flaky` test plugin traps or spins when a header asks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::Duration;

use common::breaker::*;
use common::*;
use wasmgate_test_plugins as art;

const TRAP: &[(&str, &str)] = &[("x-flaky", "trap")];
/// Calls before a breaker opens (policy/breaker.rs `THRESHOLD`).
const THRESHOLD: usize = 5;

/// `flaky` with no `failure` in the config: its own declaration (fail-closed) applies.
fn flaky(timeout: &str) -> String {
    format!("\n[plugins.flaky]\nkind = \"rewrite\"\npath = \"{}\"\ntimeout = \"{timeout}\"\n", art::FLAKY)
}

fn chain(ids: &str) -> String {
    format!("\n[policy]\nchain = [{ids}]\ncache-dir = \"{}/plugin-cache\"\n", env!("CARGO_TARGET_TMPDIR"))
}

/// Trips the breaker of `flaky` for requests to `path`: `THRESHOLD` traps, then refusals.
async fn trip(h: &Harness, path: &str) {
    for _ in 0..THRESHOLD {
        let e = openai_error(chat_at(h, path, TRAP, CHAT).await, 503).await;
        assert_eq!(e["code"], "policy_unavailable");
        assert!(e["message"].as_str().unwrap().contains("(trap)"), "{e}");
    }
    let e = openai_error(chat_at(h, path, &[], CHAT).await, 503).await;
    assert!(e["message"].as_str().unwrap().contains("breaker_open"), "{e}");
}

async fn wait_for_state(h: &Harness, tenant: &str, want: &str, within: Duration) {
    let end = tokio::time::Instant::now() + within;
    loop {
        let state = breaker_state(h, "flaky", tenant).await;
        if state == want {
            return;
        }
        assert!(tokio::time::Instant::now() < end, "breaker still {state}, expected {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_trial_does_not_keep_the_breaker_open() {
    let h = Harness::with(recording(), &(flaky("20s") + &chain("\"flaky\""))).await;
    trip(&h, "/v1/chat/completions").await;
    let b = breaker(&h, "flaky", "").await.unwrap();
    assert_eq!((b["state"].as_str(), b["consecutive_failures"].as_u64()), (Some("open"), Some(5)), "{b}");
    assert!(b["open_until_unix_ms"].as_u64().is_some(), "{b}");
    wait_for_state(&h, "", "half-open", Duration::from_secs(5)).await;

    // The trial: the plugin spins for 10 s, the client gives up after 300 ms. Dropping the
    // request drops the call; the breaker must not wait for a verdict that never comes.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let gone = impatient
        .post(h.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-flaky", "spin-10000")
        .body(CHAT)
        .send()
        .await;
    assert!(gone.is_err_and(|e| e.is_timeout()), "the trial must still be running when the client leaves");

    // Well before the spin would have ended, a normal request is the next trial and closes it.
    let mut last = 0;
    let recovered = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            last = chat_at(&h, "/v1/chat/completions", &[], CHAT).await.status().as_u16();
            if last == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(recovered.is_ok(), "the breaker stayed open after a cancelled trial (last status {last})");
    let b = breaker(&h, "flaky", "").await.unwrap();
    assert_eq!((b["state"].as_str(), b["consecutive_failures"].as_u64()), (Some("closed"), Some(0)), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_failures_do_not_open_another_tenants_breaker() {
    let tenants = "\n[tenants.a]\nchain = []\n\n[tenants.b]\nhosts = [\"b.local\"]\nchain = []\n";
    let h = Harness::with(recording(), &(flaky("2s") + &chain("\"flaky\"") + tenants)).await;
    trip(&h, "/t/a/v1/chat/completions").await;
    assert_eq!(breaker_state(&h, "flaky", "a").await, "open");

    // Tenant b, by path and by host, is served by the same global plugin.
    let r = chat_at(&h, "/t/b/v1/chat/completions", &[], CHAT).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = chat_at(&h, "/v1/chat/completions", &[("host", "b.local")], CHAT).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let b = breaker(&h, "flaky", "b").await.unwrap();
    assert_eq!((b["state"].as_str(), b["consecutive_failures"].as_u64()), (Some("closed"), Some(0)), "{b}");
    // A path naming no configured tenant gets no breaker of its own.
    let _ = chat_at(&h, "/t/zz/v1/chat/completions", &[], CHAT).await;
    assert!(breaker(&h, "flaky", "zz").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_swaps_in_a_new_version_resets_the_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("flaky.wasm");
    let original = std::fs::read(art::FLAKY).unwrap();
    std::fs::write(&wasm, &original).unwrap();
    let mock = wasmgate::mock::MockServer::start("127.0.0.1:0".parse().unwrap(), recording()).await.unwrap();
    let plugin = "\n[plugins.flaky]\nkind = \"rewrite\"\npath = \"flaky.wasm\"\ntimeout = \"2s\"\n";
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, base_config(mock.addr, &(plugin.to_string() + &chain("\"flaky\"")))).unwrap();
    let c = wasmgate::config::Config::load(&config).unwrap();
    let snap = wasmgate::server::Snapshot::from_config(c).await.unwrap();
    let gw = wasmgate::server::start_with(snap, Some(config.clone())).await.unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let h = Harness { gw, mock, http };

    trip(&h, "/v1/chat/completions").await;
    // Unchanged plugin: a reload keeps the version, and its breaker.
    let r = h.http.post(h.admin_url("/admin/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(breaker_state(&h, "flaky", "").await, "closed");

    // A new version (same code, another custom section: another sha256) starts closed.
    let mut v2 = original.clone();
    wasmgate::policy::defaults::append_section(&mut v2, "test-version", b"2");
    let tmp = dir.path().join("flaky.tmp");
    std::fs::write(&tmp, &v2).unwrap();
    std::fs::rename(&tmp, &wasm).unwrap();
    let r = h.http.post(h.admin_url("/admin/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = h.http.get(h.admin_url("/admin/plugins")).send().await.unwrap().json().await.unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&v2));
    assert_eq!(v["plugins"][0]["sha256"], sha.as_str(), "{v}");
    assert_eq!(v["plugins"][0]["breaker_open"], false, "{v}");
    assert!(breaker(&h, "flaky", "").await.is_none(), "a fresh version has no breaker history: {v}");
    let r = chat_at(&h, "/v1/chat/completions", &[], CHAT).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_instance_pool_is_capacity_not_a_plugin_fault() {
    // Two instance slots for the whole engine: ten concurrent 300 ms calls must queue for them.
    let opts = wasmgate::policy::EngineOptions { max_instances: 2, ..Default::default() };
    let h = start_with_engine(&(flaky("2s") + &chain("\"flaky\"")), opts).await;
    let calls = (0..10).map(|_| chat_at(&h, "/v1/chat/completions", &[("x-flaky", "spin-300")], CHAT));
    let statuses: Vec<u16> = futures_util::future::join_all(calls).await.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "every call waited for an instance: {statuses:?}");
    let b = breaker(&h, "flaky", "").await.unwrap();
    assert_eq!((b["state"].as_str(), b["consecutive_failures"].as_u64()), (Some("closed"), Some(0)), "{b}");
    assert_eq!(h.mock.recorded().len(), 10);
}
