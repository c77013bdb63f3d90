//! The `wasmgate` binary as a user runs it: `serve` on the embedded default, `mock-upstream`,
//! `config check`, and the official `openai` Python client pointed at the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_wasmgate");
const DEMO_KEY: &str = "sk-wasmgate-demo";

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and waits for the stdout line starting with `marker`; returns the URL in it.
fn spawn(args: &[&str], marker: &str) -> (Proc, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("WASMGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().unwrap_or_else(|| panic!("{args:?} exited before printing `{marker}`")).unwrap();
        if let Some(rest) = line.strip_prefix(marker) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), url)
}

fn python_has_openai() -> bool {
    Command::new("python3").args(["-c", "import openai"]).output().map(|o| o.status.success()).unwrap_or(false)
}

const PY_CLIENT: &str = r#"
import sys, openai
client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key=sys.argv[2], max_retries=0)
models = [m.id for m in client.models.list()]
assert "mock-gpt-4o-mini" in models, models
r = client.chat.completions.create(model="mock-gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}])
assert r.choices[0].message.content, r
assert r.usage.total_tokens > 0, r
parts = []
for chunk in client.chat.completions.create(model="mock-gpt-4o-mini", stream=True,
        messages=[{"role": "user", "content": "Stream please"}]):
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
assert len(parts) >= 2, parts
e = client.embeddings.create(model="mock-embedding", input="hi")
assert len(e.data[0].embedding) > 0
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected NotFoundError")
except openai.NotFoundError as err:
    assert err.body["code"] == "model_not_found", err.body
print("python-openai-ok")
"#;

fn run_python_client(base: &str, key: &str) {
    if !python_has_openai() {
        eprintln!("SKIPPED: python3 has no `openai` package (CI installs it: pip install openai)");
        return;
    }
    let out = Command::new("python3").args(["-c", PY_CLIENT, base, key]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("python-openai-ok"),
        "python openai client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn serve_runs_the_embedded_default_for_curl_and_the_openai_sdk() {
    let (proc_, base) =
        spawn(&["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"], "wasmgate listening on ");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(DEMO_KEY)
        .header("content-type", "application/json")
        .body(r#"{"model":"mock-gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let base2 = base.clone();
    tokio::task::spawn_blocking(move || run_python_client(&base2, DEMO_KEY)).await.unwrap();

    // SIGTERM: graceful exit with status 0.
    let mut proc_ = proc_;
    let pid = proc_.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut waited = 0;
    let status = loop {
        if let Some(s) = proc_.0.try_wait().unwrap() {
            break s;
        }
        assert!(waited < 100, "gateway did not exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    };
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn serve_with_a_config_against_mock_upstream_on_another_port() {
    let (_mock, mock_url) =
        spawn(&["mock-upstream", "--listen", "127.0.0.1:0", "--chunks", "3"], "wasmgate mock upstream listening on ");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[upstreams.m]\nendpoints = [\"{mock_url}\"]\nhttp2 = true\n\n[[models]]\nname = \"mock-gpt-4o-mini\"\nupstream = \"m\"\n\n[[models]]\nname = \"mock-embedding\"\nupstream = \"m\"\n"
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let (_gw, base) = spawn(
        &["serve", "--config", &cfg, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        "wasmgate listening on ",
    );
    let base2 = base.clone();
    tokio::task::spawn_blocking(move || run_python_client(&base2, "unused")).await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .body(r#"{"model":"mock-gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]}"#)
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
}

#[test]
fn config_check_reports_every_error_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"not-an-address\"\n\n[[models]]\nname = \"m\"\nupstream = \"missing\"\n")
        .unwrap();
    let out = Command::new(BIN).args(["config", "check", bad.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 errors"), "{err}");
    assert!(err.contains("line 2: `server.listen`"), "{err}");
    assert!(err.contains("line 6: `models[0].upstream`"), "{err}");

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[upstreams.u]\nendpoints = [\"http://127.0.0.1:1/v1\"]\n[[models]]\nname = \"m\"\nupstream = \"u\"\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["config", "check", good.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).trim_end().ends_with(": OK"));
    let out = Command::new(BIN).args(["config", "check", "--print", good.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OK") && text.contains("first-byte-timeout = \"1m\""), "{text}");
    // What it prints is a config file that checks too.
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, text.as_bytes()).unwrap();
    let out = Command::new(BIN).args(["config", "check", printed.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn plugin_check_names_the_world_and_runs_configure() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).env("WASMGATE_LOG", "warn").output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = run(&["plugin", "check", wasmgate_test_plugins::REWRITE]);
    assert!(ok, "{err}");
    assert!(out.contains("world:    wasmgate:policy/rewrite") && out.contains("exports:  configure, rewrite"), "{out}");
    assert!(out.contains("configure: ok"), "{out}");

    let (ok, _, err) = run(&["plugin", "check", wasmgate_test_plugins::WRONG_WORLD]);
    assert!(!ok && err.contains("not a wasmgate plugin"), "{err}");
    let (ok, _, err) = run(&["plugin", "check", wasmgate_test_plugins::BAD_CONFIGURE]);
    assert!(!ok && err.contains("rejected its config: bad-configure"), "{err}");
    let (ok, _, err) = run(&["plugin", "check", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")]);
    assert!(!ok && err.contains("not a WebAssembly component"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("auth.toml");
    std::fs::write(&cfg, "keys = [{ sha256 = \"zz\", subject = \"x\" }]\n").unwrap();
    let (ok, _, err) = run(&["plugin", "check", wasmgate_test_plugins::AUTH_KEYS, "--config", cfg.to_str().unwrap()]);
    assert!(!ok && err.contains("keys[0].sha256"), "{err}");
}
