//! Tenants over real sockets: assignment (path, host, API key), per-tenant chains and configs,
//! isolation of quotas and of failing plugins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use wasmgate::mock::MockConfig;
use wasmgate_test_plugins as art;

fn sha(k: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(k.as_bytes()))
}

/// Global auth (keys bound to tenants `a`, `b`, `c`), then per-tenant chains:
/// - `a` (path /t/a): requests limited to 2 per day;
/// - `b` (host b.local): the same rate-limit plugin with its own limit (5), and a rewrite that
///   pins the model and adds a system prompt;
/// - `c` (API key only): a plugin chosen by the test (`{C_PLUGIN}`).
fn config(c_plugin: &str) -> String {
    format!(
        r#"
[plugins.auth]
kind = "auth"
path = "{auth}"
config.keys = [
  {{ sha256 = "{ka}", subject = "alice", tenant = "a" }},
  {{ sha256 = "{kb}", subject = "bob", tenant = "b" }},
  {{ sha256 = "{kc}", subject = "carol", tenant = "c" }},
  {{ sha256 = "{kn}", subject = "nobody" }},
]

[plugins.limits]
kind = "rate-limit"
path = "{rl}"
config = {{ key = "global", requests = {{ limit = 2, window-ms = 86400000 }} }}

[plugins.pin]
kind = "rewrite"
path = "{rw}"
config = {{ model-aliases = {{ "mock-embedding" = "mock-gpt-4o" }}, system-prompt = "You are tenant B's assistant." }}

{c_plugin}

[policy]
chain = ["auth"]
cache-dir = "{cache}/plugin-cache"

[tenants.a]
chain = ["limits"]

[tenants.b]
hosts = ["b.local"]
chain = ["limits", "pin"]
models = ["mock-gpt-4o"]
config.limits = {{ key = "global", requests = {{ limit = 5, window-ms = 86400000 }} }}

[tenants.c]
chain = ["cplug"]
"#,
        auth = art::AUTH_KEYS,
        rl = art::RATE_LIMIT,
        rw = art::REWRITE,
        ka = sha("key-a"),
        kb = sha("key-b"),
        kc = sha("key-c"),
        kn = sha("key-none"),
        cache = env!("CARGO_TARGET_TMPDIR"),
    )
}

fn c_plugin(path: &str, extra: &str) -> String {
    format!("[plugins.cplug]\nkind = \"rewrite\"\npath = \"{path}\"\nfailure = \"fail-closed\"\n{extra}\n")
}

async fn req(h: &Harness, path: &str, key: &str, host: Option<&str>, body: &str) -> reqwest::Response {
    let mut r =
        h.http.post(h.url(path)).bearer_auth(key).header("content-type", "application/json").body(body.to_string());
    if let Some(host) = host {
        r = r.header("host", host);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn tenants_get_their_own_chains_configs_and_quotas() {
    let h =
        Harness::with(MockConfig::default(), &config(&c_plugin(art::HEADER_ECHO, "config = { name = \"x-c\" }"))).await;

    // a: path prefix; its own limit of 2.
    for _ in 0..2 {
        assert_eq!(req(&h, "/t/a/v1/chat/completions", "key-a", None, CHAT).await.status(), 200);
    }
    let e = openai_error(req(&h, "/t/a/v1/chat/completions", "key-a", None, CHAT).await, 429).await;
    assert_eq!(e["code"], "rate_limit_exceeded");

    // b: host name; the same plugin with the same key name, but b's own counter and limit.
    let r = req(&h, "/v1/chat/completions", "key-b", Some("b.local:8080"), CHAT).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "4", "a's requests must not count for b");
    let sent = h.mock.recorded().pop().unwrap();
    assert_eq!(sent.body["messages"][0]["content"], "You are tenant B's assistant.");
    assert_eq!(sent.headers.get("x-wasmgate-tenant").map(String::as_str), Some("b"));
    // b's model allow-list, after b's rewrite.
    let e = openai_error(
        req(
            &h,
            "/v1/chat/completions",
            "key-b",
            Some("b.local"),
            r#"{"model":"mock-gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#,
        )
        .await,
        404,
    )
    .await;
    assert_eq!(e["code"], "model_not_found");

    // c: by API key only; its own plugin.
    let r = req(&h, "/v1/chat/completions", "key-c", None, CHAT).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.mock.recorded().pop().unwrap().headers.get("x-c").map(String::as_str), Some("1"));

    // No tenant, unknown tenant, somebody else's tenant.
    let e = openai_error(req(&h, "/v1/chat/completions", "key-none", None, CHAT).await, 401).await;
    assert_eq!(e["code"], "tenant_not_identified");
    let e = openai_error(req(&h, "/t/zzz/v1/chat/completions", "key-none", None, CHAT).await, 404).await;
    assert_eq!(e["code"], "tenant_not_found");
    let e = openai_error(req(&h, "/t/b/v1/chat/completions", "key-a", None, CHAT).await, 403).await;
    assert_eq!(e["code"], "tenant_mismatch");

    let t: Value = h.http.get(h.admin_url("/admin/tenants")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = t["tenants"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["a", "b", "c"]);
    assert_eq!(t["tenants"][1]["chain"][1]["id"], "b/pin");
    assert_eq!(t["tenants"][1]["chain"][1]["sha256"].as_str().unwrap().len(), 64);
}

/// Tenant c's plugin misbehaves while tenant b sends traffic at the same time.
async fn isolation(c: &str) {
    let h = Harness::with(MockConfig::default(), &config(c)).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (http, url) = (h.http.clone(), h.url("/v1/chat/completions"));
        tasks.push(tokio::spawn(async move {
            let (key, host) = if i % 2 == 0 { ("key-c", "c.example") } else { ("key-b", "b.local") };
            let r = http.post(url).bearer_auth(key).header("host", host).body(CHAT).send().await.unwrap();
            (i % 2 == 0, r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    let (mut b_ok, mut c_failed) = (0, 0);
    for t in tasks {
        let (is_c, status, body) = t.await.unwrap();
        if is_c {
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("c/cplug"), "{body}");
            c_failed += 1;
        } else if status == 200 || status == 429 {
            // b's own limit (5) applies; what matters is that c never breaks b.
            assert!(!body.contains("policy_unavailable"), "{body}");
            b_ok += 1;
        } else {
            panic!("tenant b got {status}: {body}");
        }
    }
    assert_eq!((b_ok, c_failed), (20, 20));
}

#[tokio::test]
async fn a_looping_tenant_plugin_fails_only_that_tenant() {
    isolation(&c_plugin(art::BUSY_LOOP, "timeout = \"30ms\"")).await;
}

#[tokio::test]
async fn a_trapping_tenant_plugin_fails_only_that_tenant() {
    isolation(&c_plugin(art::TRAP, "")).await;
}

#[tokio::test]
async fn tenant_quota_and_kv_keys_are_namespaced_even_with_the_same_plugin_and_key() {
    // Same plugin file, same config, same quota key name in a and b: separate counters.
    let h =
        Harness::with(MockConfig::default(), &config(&c_plugin(art::HEADER_ECHO, "config = { name = \"x-c\" }"))).await;
    for _ in 0..2 {
        assert_eq!(req(&h, "/t/a/v1/chat/completions", "key-a", None, CHAT).await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let r = req(&h, "/t/b/v1/chat/completions", "key-b", None, CHAT).await;
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "4");
    assert_eq!(req(&h, "/t/a/v1/chat/completions", "key-a", None, CHAT).await.status(), 429);
}

#[tokio::test]
async fn a_tenant_cannot_take_more_than_its_share_of_plugin_calls() {
    // c's plugin holds its call for its whole 300 ms deadline; c may run one chain at a time.
    let cfg = config(&c_plugin(art::BUSY_LOOP, "timeout = \"300ms\""))
        .replace("[tenants.c]\n", "[tenants.c]\nmax-concurrent-plugin-calls = 1\n");
    let h = Harness::with(MockConfig::default(), &cfg).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, url) = (h.http.clone(), h.url("/v1/chat/completions"));
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).bearer_auth("key-c").body(CHAT).send().await.unwrap();
            r.json::<Value>().await.unwrap()["error"]["code"].as_str().unwrap_or("").to_string()
        }));
    }
    let codes: Vec<String> = futures_util::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(codes.iter().any(|c| c == "tenant_busy"), "{codes:?}");
    // Meanwhile b is served.
    assert_eq!(req(&h, "/v1/chat/completions", "key-b", Some("b.local"), CHAT).await.status(), 200);
    let text = h.http.get(h.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"wasmgate_tenant_requests_total{tenant="c",status="503"}"#), "{text}");
    assert!(text.contains(r#"wasmgate_tenant_requests_total{tenant="b",status="200"}"#), "{text}");
}

#[tokio::test]
async fn a_broken_reload_of_one_tenants_plugin_leaves_the_others_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let echo = dir.path().join("c-echo.wasm");
    std::fs::copy(art::HEADER_ECHO, &echo).unwrap();
    let mock = wasmgate::mock::MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig::default()).await.unwrap();
    let text = base_config(mock.addr, &config(&c_plugin(echo.to_str().unwrap(), "config = { name = \"x-c\" }")));
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, text).unwrap();
    let c = wasmgate::config::Config::load(&path).unwrap();
    let gw = wasmgate::server::start_with(wasmgate::server::Snapshot::from_config(c).await.unwrap(), Some(path))
        .await
        .unwrap();
    let h = Harness { gw, mock, http: reqwest::Client::new() };

    std::fs::write(dir.path().join("tmp.wasm"), b"garbage").unwrap();
    std::fs::rename(dir.path().join("tmp.wasm"), &echo).unwrap();
    let mut err = None;
    for _ in 0..300 {
        let v: Value = h.http.get(h.admin_url("/admin/plugins")).send().await.unwrap().json().await.unwrap();
        if let Some(p) =
            v["plugins"].as_array().unwrap().iter().find(|p| p["id"] == "c/cplug" && !p["last_error"].is_null())
        {
            err = Some(p["last_error"].to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(err.is_some(), "the failed reload must be reported");
    // c keeps its old version, b is untouched.
    assert_eq!(req(&h, "/v1/chat/completions", "key-c", None, CHAT).await.status(), 200);
    assert_eq!(h.mock.recorded().pop().unwrap().headers.get("x-c").map(String::as_str), Some("1"));
    let r = req(&h, "/v1/chat/completions", "key-b", Some("b.local"), CHAT).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.mock.recorded().pop().unwrap().body["messages"][0]["content"], "You are tenant B's assistant.");
}

#[tokio::test]
async fn a_tenant_can_bring_its_own_upstream() {
    let own = wasmgate::mock::MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig::default()).await.unwrap();
    let cfg = config(&c_plugin(art::HEADER_ECHO, "config = { name = \"x-c\" }"))
        .replace("[tenants.b]\n", "[tenants.b]\nupstream-overrides = { mock = \"mock-b\" }\n")
        + &format!("\n[upstreams.mock-b]\nendpoints = [\"http://{}/v1\"]\n", own.addr);
    let h = Harness::with(MockConfig::default(), &cfg).await;
    assert_eq!(req(&h, "/v1/chat/completions", "key-b", Some("b.local"), CHAT).await.status(), 200);
    assert_eq!(own.stats.snapshot().requests, 1, "b's request goes to b's own upstream");
    assert_eq!(h.mock.stats.snapshot().requests, 0);
    assert_eq!(req(&h, "/t/a/v1/chat/completions", "key-a", None, CHAT).await.status(), 200);
    assert_eq!(h.mock.stats.snapshot().requests, 1, "other tenants keep the shared upstream");
}
