//! Hot reload under load, over real sockets: plugin files swapped by rename while 32 clients
//! keep the gateway busy, broken files, config edits that change limits, and old versions freed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::Value;
use wasmgate::config::Config;
use wasmgate::mock::{MockConfig, MockServer};
use wasmgate::server::{self, RunningGateway, Snapshot};
use wasmgate_test_plugins as art;

/// Ships a file the safe way: write a temporary name, then rename over the target.
fn ship(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    gw: RunningGateway,
    mock: MockServer,
    http: reqwest::Client,
}

fn config_text(mock: std::net::SocketAddr, plugins: &str, chain: &[&str]) -> String {
    let list: Vec<String> = chain.iter().map(|c| format!("\"{c}\"")).collect();
    let cache = format!("{}/plugin-cache", env!("CARGO_TARGET_TMPDIR"));
    base_config(mock, &format!("{plugins}\n[policy]\nchain = [{}]\ncache-dir = \"{cache}\"\n", list.join(", ")))
}

async fn setup(mock_cfg: MockConfig, files: &[(&str, &str)], plugins: &str, chain: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    for (name, src) in files {
        ship(&dir.path().join(name), &std::fs::read(src).unwrap());
    }
    let mock = MockServer::start("127.0.0.1:0".parse().unwrap(), mock_cfg).await.unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, config_text(mock.addr, plugins, chain)).unwrap();
    let c = Config::load(&config).unwrap_or_else(|e| panic!("{e}"));
    let gw = server::start_with(Snapshot::from_config(c).await.unwrap(), Some(config.clone())).await.unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    Setup { dir, config, gw, mock, http }
}

impl Setup {
    fn url(&self, p: &str) -> String {
        format!("http://{}{p}", self.gw.addr)
    }
    fn admin(&self, p: &str) -> String {
        format!("http://{}{p}", self.gw.admin_addr)
    }
    async fn version(&self) -> String {
        let r = self.http.post(self.url("/v1/chat/completions")).body(CHAT).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["x-plugin-version"].to_str().unwrap().to_string()
    }
}

const ECHO: &str = "\n[plugins.echo]\nkind = \"rewrite\"\npath = \"echo.wasm\"\nfailure = \"fail-closed\"\nconfig = { name = \"x-v\" }\n";

/// One client request; returns an error string on any failure or version mismatch.
async fn one_request(http: &reqwest::Client, url: &str, stream: bool) -> Result<String, String> {
    let body = if stream {
        r#"{"model":"mock-gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
    } else {
        CHAT
    };
    let r = http.post(url).body(body).send().await.map_err(|e| e.to_string())?;
    if r.status() != 200 {
        return Err(format!("status {}", r.status()));
    }
    let client_sees = r.headers().get("x-plugin-version").ok_or("no x-plugin-version")?.to_str().unwrap().to_string();
    let upstream_saw = if stream {
        let mut s = r.bytes_stream();
        let mut text = String::new();
        while let Some(c) = s.next().await {
            text.push_str(&String::from_utf8_lossy(&c.map_err(|e| e.to_string())?));
        }
        let data = sse_data(&text);
        if data.last().map(String::as_str) != Some("[DONE]") {
            return Err("stream cut short".into());
        }
        let first: Value = serde_json::from_str(&data[0]).map_err(|e| e.to_string())?;
        first["mock_echo"]["headers"]["x-v"].as_str().unwrap_or("").to_string()
    } else {
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        v["mock_echo"]["headers"]["x-v"].as_str().unwrap_or("").to_string()
    };
    if client_sees != upstream_saw {
        return Err(format!("mixed versions: client saw {client_sees}, upstream saw {upstream_saw}"));
    }
    Ok(client_sees)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_a_plugin_20_times_under_load_fails_no_request() {
    let mock_cfg = MockConfig { chunks: 10, chunk_interval: Duration::from_millis(30), ..MockConfig::default() };
    let s = setup(mock_cfg, &[("echo.wasm", art::HEADER_ECHO)], ECHO, &["echo"]).await;
    assert_eq!(s.version().await, "1");

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let url = s.url("/v1/chat/completions");
    let mut clients = Vec::new();
    for i in 0..32 {
        let (http, url, stop, ok) = (s.http.clone(), url.clone(), stop.clone(), ok.clone());
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match one_request(&http, &url, i % 4 == 0).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.push(e),
                }
            }
            failures
        }));
    }

    let files = [art::HEADER_ECHO_V2, art::HEADER_ECHO];
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut delays = Vec::new();
    for swap in 0..20 {
        let want = if swap % 2 == 0 { "2" } else { "1" };
        let started = Instant::now();
        ship(&s.dir.path().join("echo.wasm"), &bytes[swap % 2]);
        loop {
            if s.version().await == want {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "swap {swap}: new version not served after 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays.push(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for c in clients {
        failures.extend(c.await.unwrap());
    }
    delays.sort();
    eprintln!(
        "hot swap: {} requests ok during 20 swaps; rename → new version served: p50 {:?}, max {:?}",
        ok.load(Ordering::Relaxed),
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert!(failures.is_empty(), "{} failed requests, e.g. {:?}", failures.len(), &failures[..failures.len().min(5)]);
    assert!(ok.load(Ordering::Relaxed) > 100, "the load did not run");
    // Old versions are freed once their last request ended.
    assert!(
        eventually(Duration::from_secs(3), || wasmgate::policy::versions_alive("echo") == 1).await,
        "versions alive: {}",
        wasmgate::policy::versions_alive("echo")
    );
    s.mock.shutdown();
}

#[tokio::test]
async fn a_broken_file_keeps_the_old_version_and_a_fixed_one_is_picked_up() {
    let plugins = ECHO.replace("echo.wasm", "echo-b.wasm").replace("[plugins.echo]", "[plugins.echo-b]");
    let s = setup(MockConfig::default(), &[("echo-b.wasm", art::HEADER_ECHO)], &plugins, &["echo-b"]).await;
    assert_eq!(s.version().await, "1");

    // Not a component at all, then a half-written one.
    let good = std::fs::read(art::HEADER_ECHO_V2).unwrap();
    for broken in [b"this is not wasm".to_vec(), good[..good.len() / 2].to_vec()] {
        ship(&s.dir.path().join("echo-b.wasm"), &broken);
        let admin = s.admin("/admin/plugins");
        let http = s.http.clone();
        let mut shown = None;
        for _ in 0..200 {
            let v: Value = http.get(&admin).send().await.unwrap().json().await.unwrap();
            if let Some(e) = v["plugins"][0]["last_error"].as_str() {
                shown = Some(e.to_string());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let err = shown.expect("the admin API must show the failed reload");
        assert!(err.contains("echo-b") && err.contains("keeping"), "{err}");
        assert_eq!(s.version().await, "1", "the old version keeps serving");
        // Clear the error for the next round by reloading the good old file.
        ship(&s.dir.path().join("echo-b.wasm"), &std::fs::read(art::HEADER_ECHO).unwrap());
        let r: Value = s.http.post(s.admin("/admin/reload")).send().await.unwrap().json().await.unwrap();
        assert!(r["config_error"].is_null(), "{r}");
    }

    ship(&s.dir.path().join("echo-b.wasm"), &good);
    let started = Instant::now();
    while s.version().await != "2" {
        assert!(started.elapsed() < Duration::from_secs(5), "fixed file not picked up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let v: Value = s.http.get(s.admin("/admin/plugins")).send().await.unwrap().json().await.unwrap();
    assert!(v["plugins"][0]["last_error"].is_null(), "{v}");
    assert_eq!(v["plugins"][0]["sha256"].as_str().unwrap().len(), 64);
}

fn limits_plugin(limit: u64) -> String {
    format!(
        "\n[plugins.rl]\nkind = \"rate-limit\"\npath = \"{}\"\nconfig = {{ key = \"global\", requests = {{ limit = {limit}, window-ms = 86400000 }} }}\n",
        art::RATE_LIMIT
    )
}

async fn remaining(s: &Setup) -> u64 {
    let r = s.http.post(s.url("/v1/chat/completions")).body(CHAT).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-ratelimit-remaining-requests"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn config_edits_change_limits_without_resetting_counters_and_bad_edits_are_rejected() {
    let s = setup(MockConfig::default(), &[], &limits_plugin(5), &["rl"]).await;
    assert_eq!(remaining(&s).await, 4);
    assert_eq!(remaining(&s).await, 3);

    // Raise the limit: 2 were used, the third request leaves 10 - 3.
    ship(&s.config, config_text(s.mock.addr, &limits_plugin(10), &["rl"]).as_bytes());
    let started = Instant::now();
    loop {
        let r: Value = s.http.get(s.admin("/admin/reload")).send().await.unwrap().json().await.unwrap();
        if r["reloads"].as_u64().unwrap() >= 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "config change not picked up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(remaining(&s).await, 7, "the counter must survive the reload");

    // An invalid edit is rejected and reported; the old config keeps serving.
    ship(&s.config, b"[server\nlisten = 1\n");
    let started = Instant::now();
    let err = loop {
        let r: Value = s.http.get(s.admin("/admin/reload")).send().await.unwrap().json().await.unwrap();
        if let Some(e) = r["config_error"].as_str() {
            break e.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "bad config not reported");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(err.contains("line 1"), "{err}");
    assert_eq!(remaining(&s).await, 6);
    let r = s.http.post(s.admin("/admin/reload")).send().await.unwrap();
    assert_eq!(r.status(), 422);
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[tokio::test]
async fn two_hundred_reloads_free_old_versions_and_do_not_grow_memory() {
    let plugin = |v: &str| {
        format!(
            "\n[plugins.churn]\nkind = \"rewrite\"\npath = \"{}\"\nconfig = {{ name = \"x-v\", value = \"{v}\" }}\n",
            art::HEADER_ECHO
        )
    };
    let s = setup(MockConfig::default(), &[], &plugin("a"), &["churn"]).await;
    let mut rss_after_warmup = 0;
    for i in 0..220 {
        std::fs::write(&s.config, config_text(s.mock.addr, &plugin(&i.to_string()), &["churn"])).unwrap();
        let report = s.gw.reloader.reload().await;
        assert!(report.swapped && report.config_error.is_none(), "{report:?}");
        assert_eq!(s.version().await, i.to_string());
        if i == 19 {
            rss_after_warmup = rss_kib();
        }
    }
    assert!(eventually(Duration::from_secs(3), || wasmgate::policy::versions_alive("churn") == 1).await);
    let growth = rss_kib().saturating_sub(rss_after_warmup);
    eprintln!("RSS growth over 200 reloads: {growth} KiB");
    assert!(growth < 32 * 1024, "RSS grew by {growth} KiB over 200 reloads");
}
