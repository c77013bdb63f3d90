//! Clarity and least surprise (issue 11, item 9): `/v1/models` behind auth and the tenant's
//! allow-list, auth before the body, errors naming the field, tenant assignment rules, and
//! the embedded default's mock and log output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::edge::{auth_keys_plugin, raw_request};
use common::*;
use serde_json::Value;
use wasmgate::mock::MockConfig;

fn model_ids(v: &Value) -> Vec<String> {
    v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

async fn get(h: &Harness, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut r = h.http.get(h.url(path));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap()
}

async fn post_as(h: &Harness, path: &str, key: Option<&str>, host: Option<&str>, body: &str) -> reqwest::Response {
    let mut r = h.http.post(h.url(path)).header("content-type", "application/json").body(body.to_string());
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if let Some(host) = host {
        r = r.header("host", host);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn models_need_credentials_and_list_only_what_a_tenant_may_use() {
    // Global auth.
    let cfg = format!("{}\n[policy]\nchain = [\"auth\"]\n", auth_keys_plugin("auth", &[("sk-g", "gina", None)]));
    let h = Harness::with(MockConfig::default(), &cfg).await;
    let e = openai_error(get(&h, "/v1/models", None).await, 401).await;
    assert_eq!(e["code"], "invalid_api_key", "{e}");
    openai_error(get(&h, "/v1/models", Some("sk-wrong")).await, 401).await;
    let r = get(&h, "/v1/models", Some("sk-g")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(model_ids(&r.json().await.unwrap()), ["mock-gpt-4o", "mock-embedding"]);

    // Tenants with their own auth and allow-lists.
    let cfg = format!(
        "{}\n[tenants.a]\nchain = [\"keys\"]\nmodels = [\"mock-gpt-*\"]\n[tenants.b]\nhosts = [\"b.local\"]\nchain = [\"keys\"]\n",
        auth_keys_plugin("keys", &[("sk-a", "ann", Some("a")), ("sk-b", "ben", Some("b"))])
    );
    let h = Harness::with(MockConfig::default(), &cfg).await;
    openai_error(get(&h, "/t/a/v1/models", None).await, 401).await;
    let r = get(&h, "/t/a/v1/models", Some("sk-a")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(model_ids(&r.json().await.unwrap()), ["mock-gpt-4o"], "a's allow-list");
    let r = h.http.get(h.url("/v1/models")).header("host", "b.local").bearer_auth("sk-b").send().await.unwrap();
    assert_eq!(model_ids(&r.json().await.unwrap()), ["mock-gpt-4o", "mock-embedding"], "b has no allow-list");
    let e = openai_error(get(&h, "/v1/models", Some("sk-a")).await, 401).await;
    assert_eq!(e["code"], "tenant_not_identified", "{e}");
}

#[tokio::test]
async fn anonymous_callers_get_401_before_the_body_is_read() {
    let cfg = format!(
        "{}\n[plugins.limits]\nkind = \"rate-limit\"\npath = \"builtin:rate-limit\"\nconfig = {{ key = \"identity\", requests = {{ limit = 100, window-ms = 60000 }} }}\n[policy]\nchain = [\"auth\", \"limits\"]\n",
        auth_keys_plugin("auth", &[("sk-g", "gina", None)])
    );
    let h = Harness::with(MockConfig::default(), &cfg).await;
    // Not JSON at all: without a key that is a 401, not a validation error.
    let e = openai_error(post_as(&h, "/v1/chat/completions", None, None, "{not json").await, 401).await;
    assert_eq!(e["code"], "invalid_api_key", "{e}");
    // With the key, the body is parsed and validated as before; the rest of the chain runs.
    let e = openai_error(post_as(&h, "/v1/chat/completions", Some("sk-g"), None, "{not json").await, 400).await;
    assert_eq!(e["code"], "invalid_json", "{e}");
    let r = post_as(&h, "/v1/chat/completions", Some("sk-g"), None, CHAT).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "99", "rate-limit ran after parsing");

    // A body announced but never sent: the 401 comes at once, the gateway does not wait for it.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 60000",
        h.gw.addr
    );
    let started = Instant::now();
    let resp = raw_request(h.gw.addr, &head, b"{", Duration::from_secs(10)).await;
    let resp = resp.expect("the gateway must answer without the body");
    assert_eq!(resp.status, 401, "{}", resp.body);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // The same for a tenant's own auth (no global chain).
    let cfg = format!("{}\n[tenants.a]\nchain = [\"keys\"]\n", auth_keys_plugin("keys", &[("sk-a", "ann", Some("a"))]));
    let t = Harness::with(MockConfig::default(), &cfg).await;
    openai_error(post_as(&t, "/t/a/v1/chat/completions", None, None, "{not json").await, 401).await;
    assert_eq!(post_as(&t, "/t/a/v1/chat/completions", Some("sk-a"), None, CHAT).await.status(), 200);
}

#[tokio::test]
async fn wrong_types_and_duplicate_keys_name_the_field() {
    let h = Harness::start().await;
    let msg = r#""messages":[{"role":"user","content":"hi"}]"#;
    for (field, value) in [
        ("temperature", r#""hot""#),
        ("top_p", "[]"),
        ("n", "1.5"),
        ("presence_penalty", "true"),
        ("frequency_penalty", "{}"),
    ] {
        let body = format!(r#"{{"model":"mock-gpt-4o",{msg},"{field}":{value}}}"#);
        let e = openai_error(h.post("/v1/chat/completions", &body).await, 400).await;
        assert_eq!(e["param"], field, "{e}");
    }
    let body = format!(r#"{{"model":"mock-gpt-4o","model":"mock-embedding",{msg}}}"#);
    let e = openai_error(h.post("/v1/chat/completions", &body).await, 400).await;
    assert_eq!(e["param"], "model", "{e}");
    // Valid sampling values still reach the upstream.
    let body = format!(r#"{{"model":"mock-gpt-4o",{msg},"temperature":0.5,"n":1}}"#);
    assert_eq!(h.post("/v1/chat/completions", &body).await.status(), 200);
    assert_eq!(h.mock.recorded().pop().unwrap().body["temperature"], 0.5);
}

#[tokio::test]
async fn tenant_paths_on_a_gateway_without_tenants_are_not_found() {
    let h = Harness::start().await;
    let e = openai_error(h.post("/t/anything/v1/chat/completions", CHAT).await, 404).await;
    assert_eq!(e["code"], "tenant_not_found", "{e}");
    let e = openai_error(get(&h, "/t/anything/v1/models", None).await, 404).await;
    assert_eq!(e["code"], "tenant_not_found", "{e}");
    assert_eq!(h.mock.stats.snapshot().requests, 0);
}

#[tokio::test]
async fn a_tenant_less_global_identity_picks_a_tenant_only_where_allowed() {
    let cfg = format!(
        "{}\n[policy]\nchain = [\"auth\"]\n[tenants.a]\nhosts = [\"a.local\"]\n[tenants.open]\nallow-global-identities = true\n",
        auth_keys_plugin("auth", &[("sk-any", "ops", None), ("sk-a", "ann", Some("a"))])
    );
    let h = Harness::with(MockConfig::default(), &cfg).await;
    let e = openai_error(post_as(&h, "/t/a/v1/chat/completions", Some("sk-any"), None, CHAT).await, 403).await;
    assert_eq!(e["code"], "tenant_mismatch", "{e}");
    let e = openai_error(post_as(&h, "/v1/chat/completions", Some("sk-any"), Some("a.local"), CHAT).await, 403).await;
    assert_eq!(e["code"], "tenant_mismatch", "{e}");
    assert_eq!(h.mock.stats.snapshot().requests, 0);
    // The tenant's own keys, and a tenant that opted in, still work.
    assert_eq!(post_as(&h, "/t/a/v1/chat/completions", Some("sk-a"), None, CHAT).await.status(), 200);
    assert_eq!(post_as(&h, "/t/open/v1/chat/completions", Some("sk-any"), None, CHAT).await.status(), 200);
}

/// `wasmgate serve` on the embedded default, stderr to a pipe: its mock keeps no request, its
/// log has no colour codes.
#[tokio::test]
async fn the_embedded_default_records_nothing_and_logs_without_colours() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("WASMGATE_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut gw, mut mock) = (None, None);
    while gw.is_none() || mock.is_none() {
        let line = lines.next().expect("serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("wasmgate listening on http://") {
            gw = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.strip_prefix("embedded default: mock upstream on ") {
            mock = rest.split(',').next().map(str::to_string);
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (gw, mock) = (gw.unwrap(), mock.unwrap());
    let http = reqwest::Client::new();
    let body = r#"{"model":"mock-gpt-4o-mini","messages":[{"role":"user","content":"a secret prompt"}]}"#;
    let r = http
        .post(format!("http://{gw}/v1/chat/completions"))
        .bearer_auth(wasmgate::config::DEMO_API_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let kept: Value = http.get(format!("http://{mock}/_mock/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(kept, serde_json::json!([]), "the embedded mock must not keep request bodies");

    // SIGTERM (to the child we started, by its id) makes it log its shutdown.
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = log.join().unwrap();
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI codes in a log that is not a terminal: {log:?}");
}
