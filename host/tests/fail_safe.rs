//! Fail-open must not leak data, over real sockets: a plugin declares its own failure default
//! (`wasmgate:defaults`), the config overrides it, a body over a plugin's `body-limit` is
//! refused (fail-closed, 413 naming the plugin) or skips the plugin (fail-open) without calling
//! it or counting against its breaker, and the shipped redaction plugin never lets an e-mail
//! address of a megabyte prompt through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use common::breaker::*;
use common::*;
use wasmgate_test_plugins as art;

const TRAP: &[(&str, &str)] = &[("x-flaky", "trap")];

fn chain(ids: &str) -> String {
    format!("\n[policy]\nchain = [{ids}]\ncache-dir = \"{}/plugin-cache\"\n", env!("CARGO_TARGET_TMPDIR"))
}

/// `flaky` with the body, a 1000-byte body limit and `extra` lines.
fn flaky(extra: &str) -> String {
    format!(
        "\n[plugins.flaky]\nkind = \"rewrite\"\npath = \"{}\"\nbody = true\nbody-limit = 1000\n{extra}\n",
        art::FLAKY
    )
}

/// A chat body of about `n` bytes.
fn body_of(n: usize) -> String {
    chat_body(&"x".repeat(n))
}

async fn start(extra: &str) -> Harness {
    Harness::with(recording(), extra).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_declared_fail_closed_applies_unless_the_config_says_otherwise() {
    // rewrite plugins default to fail-open; flaky declares fail-closed.
    let h = start(&(flaky("") + &chain("\"flaky\""))).await;
    let e = openai_error(chat_at(&h, "/v1/chat/completions", TRAP, CHAT).await, 503).await;
    assert_eq!(e["code"], "policy_unavailable");
    assert!(h.mock.recorded().is_empty(), "nothing forwarded");
    let v: serde_json::Value = h.http.get(h.admin_url("/admin/plugins")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["plugins"][0]["failure"], "fail-closed", "{v}");
    assert_eq!(v["plugins"][0]["body_limit"], 1000, "{v}");

    // The config wins over the declaration.
    let h = start(&(flaky("failure = \"fail-open\"") + &chain("\"flaky\""))).await;
    let r = chat_at(&h, "/v1/chat/completions", TRAP, CHAT).await;
    assert_eq!(r.status(), 200, "fail-open: skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_a_fail_closed_plugins_limit_is_413_and_the_plugin_is_not_called() {
    let h = start(&(flaky("") + &chain("\"flaky\""))).await;
    // Would trap if called; ten of them would open the breaker if they counted.
    for _ in 0..10 {
        let e = openai_error(chat_at(&h, "/v1/chat/completions", TRAP, &body_of(2000)).await, 413).await;
        assert_eq!(e["code"], "request_too_large");
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains("`flaky`") && msg.contains("1000 bytes"), "{msg}");
    }
    assert!(h.mock.recorded().is_empty(), "nothing forwarded");
    assert_eq!(breaker_state(&h, "flaky", "").await, "closed");
    let r = chat_at(&h, "/v1/chat/completions", &[], &body_of(100)).await;
    assert_eq!(r.status(), 200, "a body under the limit goes through the plugin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_a_fail_open_plugins_limit_skips_the_plugin() {
    let h = start(&(flaky("failure = \"fail-open\"") + &chain("\"flaky\""))).await;
    for _ in 0..10 {
        let r = chat_at(&h, "/v1/chat/completions", TRAP, &body_of(2000)).await;
        assert_eq!(r.status(), 200, "skipped, not called (it would trap)");
    }
    assert_eq!(h.mock.recorded().len(), 10);
    assert!(breaker(&h, "flaky", "").await.is_none(), "never called: no breaker history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_is_validated() {
    let err = wasmgate::config::Config::parse(
        &base_config("127.0.0.1:9".parse().unwrap(), &(flaky("").replace("1000", "0") + &chain("\"flaky\""))),
        None,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("plugins.flaky.body-limit"), "{err}");
}

fn redact_config(mock: std::net::SocketAddr) -> String {
    let path = art::polyglot(art::REDACT_PY).unwrap_or_else(|why| panic!("{why}"));
    // As the plugin's README configures it: no `failure`, the plugin's declaration decides.
    let plugin = format!(
        "\n[plugins.redact]\nkind = \"rewrite\"\npath = \"{path}\"\nbody = true\nconfig = {{ replacement = \"[{{detector}}]\" }}\n"
    );
    big_body_config(mock, &(plugin + &chain("\"redact\"")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_prompt_never_reaches_the_upstream_unredacted() {
    let mock = wasmgate::mock::MockServer::start("127.0.0.1:0".parse().unwrap(), recording()).await.unwrap();
    let text = redact_config(mock.addr);
    let h = Harness::with_config_text(mock, &text).await;
    let big = chat_body(&format!("{} write to bob@example.com", "lorem ipsum ".repeat(1_000_000 / 12)));
    assert!(big.len() > 1_000_000);
    for _ in 0..7 {
        let r = chat_at(&h, "/v1/chat/completions", &[], &big).await;
        assert_ne!(r.status(), 200, "a megabyte prompt is refused, not forwarded");
    }
    // Another user's small prompt is still redacted: no breaker opened to skip redaction.
    let r = chat_at(&h, "/v1/chat/completions", &[], &chat_body("mail carol@example.org please")).await;
    assert_eq!(r.status(), 200);
    let seen = serde_json::to_string(&h.mock.recorded()).unwrap();
    assert!(!seen.contains("bob@example.com") && !seen.contains("carol@example.org"), "leaked upstream");
    assert!(seen.contains("[email]"), "the small prompt went up redacted");
}

#[test]
fn plugin_check_prints_the_declared_defaults() {
    let bin = env!("CARGO_BIN_EXE_wasmgate");
    let redact = art::polyglot(art::REDACT_PY).unwrap_or_else(|why| panic!("{why}"));
    for (file, want) in [(redact, "failure = \"fail-closed\""), (art::FLAKY, "failure = \"fail-closed\"")] {
        let out = std::process::Command::new(bin).args(["plugin", "check", file]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout.lines().find(|l| l.starts_with("defaults:")).unwrap_or_default();
        assert!(line.contains(want), "{file}: {stdout}");
    }
    // The reference plugins declare the request headers they read (only those are handed in).
    for (file, want) in [
        (art::REWRITE, "defaults: headers = [] "),
        (art::AUTH_KEYS, "defaults: headers = [\"authorization\", \"x-api-key\"] "),
        // Both macros write into one section: the linker joins them.
        (art::AUTH_JWT, "defaults: failure = \"fail-closed\", headers = [\"authorization\"] "),
    ] {
        let out = std::process::Command::new(bin).args(["plugin", "check", file]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(want), "{file}: {stdout}");
    }
    let out = std::process::Command::new(bin).args(["plugin", "check", art::TRAP]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("defaults: none declared"), "{stdout}");
}
