//! The Python and JavaScript plugins through the real gateway, over sockets: the same worlds
//! and failure policies as the Rust plugins. They are built by `host/build_polyglot.rs` only
//! when `plugins/polyglot-tools.sh` has installed their toolchains; without them every test
//! here fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use common::*;
use serde_json::json;
use wasmgate::mock::MockConfig;
use wasmgate_test_plugins as art;

/// The path of a Python/JS plugin; fails the test (with what to run) if it was not built.
fn built(path: &'static str) -> &'static str {
    art::polyglot(path).unwrap_or_else(|why| panic!("{why}"))
}

/// Precompiled plugins are shared by every test of every test binary (and survive runs): a
/// Python or JS component takes seconds to compile.
fn cache_dir() -> String {
    format!("{}/plugin-cache", env!("CARGO_TARGET_TMPDIR"))
}

/// Serializes gateway starts in this file. Each test's gateway has its own engine, so tests
/// starting together would each compile the same multi-megabyte component at once (on CI's 2
/// cores, minutes each); one at a time, the first compiles into the disk cache and the others
/// load the `.cwasm` in milliseconds.
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(cfg: &str) -> Harness {
    let _one_at_a_time = STARTING.lock().await;
    Harness::with(MockConfig::default(), cfg).await
}

fn plugin(id: &str, kind: &str, path: &str, extra: &str) -> String {
    format!("\n[plugins.{id}]\nkind = \"{kind}\"\npath = \"{path}\"\n{extra}\n")
}

fn chain(ids: &[&str]) -> String {
    let list: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
    format!("\n[policy]\nchain = [{}]\ncache-dir = \"{}\"\n", list.join(", "), cache_dir())
}

fn sha256(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn redact(extra: &str) -> String {
    plugin("redact", "rewrite", built(art::REDACT_PY), &format!("body = true\n{extra}"))
}

fn allowlist(extra: &str) -> String {
    plugin("allow", "auth", built(art::ALLOWLIST_JS), extra)
}

async fn chat(h: &Harness, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut r = h.http.post(h.url("/v1/chat/completions")).header("content-type", "application/json");
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    r.body(body.to_string()).send().await.unwrap()
}

const PII: &str = r#"{"model":"mock-gpt-4o","messages":[
    {"role":"system","content":"Support bot. Escalate to ops@example.com."},
    {"role":"user","content":[{"type":"text","text":"I am ann@example.org, call +1 415 555 2671"},{"type":"image_url","image_url":{"url":"https://img.example/x.png"}}]}]}"#;

#[tokio::test]
async fn python_redaction_changes_what_the_upstream_receives() {
    let cfg =
        redact(r#"config = { replacement = "[{detector}]", count-header = "x-redactions" }"#) + &chain(&["redact"]);
    let h = start(&cfg).await;

    let r = chat(&h, &[], PII).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-redactions"], "3");
    let sent = h.mock.recorded().pop().unwrap().body;
    assert_eq!(sent["messages"][0]["content"], "Support bot. Escalate to [email].");
    assert_eq!(sent["messages"][1]["content"][0]["text"], "I am [email], call [phone]");
    assert_eq!(sent["messages"][1]["content"][1]["image_url"]["url"], "https://img.example/x.png");
    assert_eq!(sent["model"], "mock-gpt-4o");

    // Nothing to redact: the body goes up as the client sent it.
    let r = chat(&h, &[], CHAT).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-redactions").is_none());
    assert_eq!(h.mock.recorded().pop().unwrap().body["messages"], json!([{"role":"user","content":"Hello there"}]));
}

#[tokio::test]
async fn python_plugin_serves_concurrent_requests_on_several_instances() {
    let h = start(&(redact("") + &chain(&["redact"]))).await;
    let body = r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"mail me: bob@example.net"}]}"#;
    let calls = (0..12).map(|_| chat(&h, &[], body));
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.status(), 200);
    }
    let recorded = h.mock.recorded();
    assert_eq!(recorded.len(), 12);
    assert!(recorded.iter().all(|r| r.body["messages"][0]["content"] == "mail me: [REDACTED]"));
}

#[tokio::test]
async fn js_allowlist_allows_by_address_or_key_and_refuses_others() {
    let cfg = allowlist(&format!(
        r#"config = {{ client-ip-header = "x-forwarded-for", ips = ["10.0.0.0/8", "2001:db8::/32"], keys = [{{ sha256 = "{}", subject = "alice", tenant = "acme", metadata = {{ plan = "pro" }} }}] }}"#,
        sha256("sk-alice")
    )) + &chain(&["allow"]);
    let h = start(&cfg).await;

    let r = chat(&h, &[("x-forwarded-for", "203.0.113.9, 10.1.2.3")], CHAT).await;
    assert_eq!(r.status(), 200);
    let up = h.mock.recorded().pop().unwrap();
    assert_eq!(up.headers.get("x-wasmgate-subject").map(String::as_str), Some("ip:10.1.2.3"));

    let r = chat(&h, &[("x-forwarded-for", "2001:db8::42")], CHAT).await;
    assert_eq!(r.status(), 200);

    let r = chat(&h, &[("authorization", "Bearer sk-alice"), ("x-forwarded-for", "8.8.8.8")], CHAT).await;
    assert_eq!(r.status(), 200);
    let up = h.mock.recorded().pop().unwrap();
    assert_eq!(up.headers.get("x-wasmgate-subject").map(String::as_str), Some("alice"));
    assert_eq!(up.headers.get("x-wasmgate-tenant").map(String::as_str), Some("acme"));
    assert!(!up.headers.contains_key("authorization"));

    let r = chat(&h, &[("x-forwarded-for", "8.8.8.8")], CHAT).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let e = openai_error(r, 401).await;
    assert_eq!(
        e,
        json!({"message":"Missing API key: send it as `Authorization: Bearer <key>`.","type":"invalid_request_error","param":null,"code":"invalid_api_key"})
    );
    let e = openai_error(chat(&h, &[("authorization", "Bearer sk-bob")], CHAT).await, 401).await;
    assert_eq!(e["message"], "Incorrect API key provided.");
    assert_eq!(h.mock.stats.snapshot().requests, 3, "refused requests must not reach the upstream");
}

#[tokio::test]
async fn js_allowlist_requiring_both_answers_403_outside_the_ranges() {
    let cfg = allowlist(&format!(
        r#"config = {{ client-ip-header = "x-forwarded-for", require = "both", ips = ["192.168.1.64/27"], keys = [{{ sha256 = "{}", subject = "svc" }}] }}"#,
        sha256("k1")
    )) + &chain(&["allow"]);
    let h = start(&cfg).await;
    let key = ("authorization", "Bearer k1");
    assert_eq!(chat(&h, &[key, ("x-forwarded-for", "192.168.1.70")], CHAT).await.status(), 200);
    let e = openai_error(chat(&h, &[key, ("x-forwarded-for", "192.168.1.96")], CHAT).await, 403).await;
    assert_eq!(
        e,
        json!({"message":"Requests from this address are not allowed.","type":"invalid_request_error","param":null,"code":"ip_not_allowed"})
    );
    let e = openai_error(chat(&h, &[key], CHAT).await, 403).await;
    assert_eq!(e["code"], "ip_not_allowed");
    assert_eq!(h.mock.stats.snapshot().requests, 1);
}

#[tokio::test]
async fn js_allowlist_by_default_trusts_the_tcp_peer_not_a_forged_header() {
    let h = start(&(allowlist(r#"config = { ips = ["10.0.0.0/8"] }"#) + &chain(&["allow"]))).await;
    let e = openai_error(chat(&h, &[("x-forwarded-for", "10.1.2.3")], CHAT).await, 403).await;
    assert_eq!(e["code"], "ip_not_allowed");
    assert_eq!(h.mock.stats.snapshot().requests, 0);
}

#[tokio::test]
async fn js_auth_python_rewrite_and_rust_rewrite_in_one_chain() {
    let cfg = allowlist(r#"config = { ips = ["127.0.0.1"], ip-subject = "office" }"#)
        + &redact("")
        + &plugin(
            "rw",
            "rewrite",
            art::REWRITE,
            r#"config = { system-prompt = "Be brief.", set-headers = { x-team = "blue" } }"#,
        )
        + &chain(&["allow", "redact", "rw"]);
    let h = start(&cfg).await;

    let body = r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"reach me at 0612345678"}]}"#;
    // Allowed by the TCP peer (127.0.0.1), whatever a header claims.
    let r = chat(&h, &[("x-forwarded-for", "8.8.8.8")], body).await;
    assert_eq!(r.status(), 200);
    let up = h.mock.recorded().pop().unwrap();
    assert_eq!(up.headers.get("x-wasmgate-subject").map(String::as_str), Some("office"));
    assert_eq!(up.headers.get("x-team").map(String::as_str), Some("blue"));
    assert_eq!(
        up.body["messages"],
        json!([{"role":"system","content":"Be brief."},{"role":"user","content":"reach me at [REDACTED]"}])
    );

    // From another address (127.0.0.2 is loopback too on Linux): refused before the rewrites.
    let other =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let r = other.post(h.url("/v1/chat/completions")).body(body.to_string()).send().await.unwrap();
    assert_eq!(openai_error(r, 403).await["code"], "ip_not_allowed");
    assert_eq!(h.mock.stats.snapshot().requests, 1);
}

async fn load_error(id: &str, kind: &str, path: &str, extra: &str) -> String {
    let mock = wasmgate::mock::MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig::default()).await.unwrap();
    let text = base_config(mock.addr, &(plugin(id, kind, path, extra) + &chain(&[id])));
    let config = wasmgate::config::Config::parse(&text, None).unwrap();
    let _one_at_a_time = STARTING.lock().await;
    match wasmgate::server::Snapshot::from_config(config).await {
        Ok(_) => panic!("{path} should not load"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_config_refused_by_configure_is_a_load_error_naming_the_plugin() {
    let e = load_error("redact-bad", "rewrite", built(art::REDACT_PY), r#"config = { detectors = ["email", "ssn"] }"#)
        .await;
    assert!(e.contains("`redact-bad` rejected its config"), "{e}");
    assert!(e.contains("invalid config at `detectors[1]`: unknown detector `ssn`"), "{e}");
    let e = load_error("redact-typo", "rewrite", built(art::REDACT_PY), r#"config = { replacment = "x" }"#).await;
    assert!(e.contains("invalid config at `replacment`: unknown field"), "{e}");

    let e = load_error("allow-bad", "auth", built(art::ALLOWLIST_JS), r#"config = { ips = ["10.0.0.300"] }"#).await;
    assert!(e.contains("`allow-bad` rejected its config"), "{e}");
    assert!(e.contains("invalid config at `ips[0]`: `10.0.0.300` is not an IP address"), "{e}");

    // The world check tolerates the Python component's extra `exports` interface, and still
    // tells worlds apart.
    let e = load_error("wrong", "auth", built(art::REDACT_PY), "").await;
    assert!(e.contains("implements world `wasmgate:policy/rewrite` but is configured as kind `auth`"), "{e}");
}

async fn metric(h: &Harness, needle: &str) -> bool {
    let text = h.http.get(h.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().any(|l| l.contains(needle))
}

#[tokio::test]
async fn a_raising_or_throwing_plugin_is_contained_by_its_failure_policy() {
    for (id, kind, path) in [("raise", "rewrite", built(art::RAISE_PY)), ("throw", "auth", built(art::THROW_JS))] {
        let cfg = plugin(id, kind, path, "failure = \"fail-closed\"") + &chain(&[id]);
        let h = start(&cfg).await;
        for _ in 0..3 {
            let e = openai_error(h.post("/v1/chat/completions", CHAT).await, 503).await;
            assert_eq!(e["code"], "policy_unavailable");
            let msg = e["message"].as_str().unwrap();
            assert!(msg.contains(&format!("`{id}`")), "message must name the plugin: {msg}");
            assert!(!msg.contains("refusing") && !msg.contains("wasm"), "no internals: {msg}");
        }
        assert!(metric(&h, &format!(r#"wasmgate_plugin_calls_total{{plugin="{id}",result="trap"}}"#)).await, "{id}");
        assert_eq!(h.http.get(h.url("/health")).send().await.unwrap().status(), 200, "gateway must stay up");
        assert_eq!(h.mock.stats.snapshot().requests, 0, "{id}: nothing forwarded");

        let cfg = plugin(id, kind, path, "failure = \"fail-open\"") + &chain(&[id]);
        let h = start(&cfg).await;
        for _ in 0..2 {
            assert_eq!(h.post("/v1/chat/completions", CHAT).await.status(), 200, "{id}: fail-open skips the plugin");
        }
        assert_eq!(h.mock.stats.snapshot().requests, 2);
    }
}
