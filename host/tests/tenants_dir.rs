//! Tenants in a directory (`policy.tenants-dir`), over real sockets with real plugins: files
//! added, changed, broken and removed under load, errors naming file and line, duplicates,
//! and a few thousand tenants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::reload_admin::{Watched, mock, ship, watch};
use common::{CHAT, base_config};
use wasmgate::config::Config;
use wasmgate::policy::{EngineOptions, PolicyEngine};
use wasmgate::server::{self, Snapshot};
use wasmgate_test_plugins as art;

/// The main file's extra part: the rewrite plugin `pin` every tenant chains, the tenants dir.
fn main_extra() -> String {
    format!(
        "\n[plugins.pin]\nkind = \"rewrite\"\npath = \"{rw}\"\n\n[policy]\ncache-dir = \"{cache}/plugin-cache\"\ntenants-dir = \"tenants.d\"\n",
        rw = art::REWRITE,
        cache = env!("CARGO_TARGET_TMPDIR"),
    )
}

/// A tenant file whose rewrite puts `prompt` first.
fn tenant(prompt: &str) -> String {
    format!("chain = [\"pin\"]\nconfig.pin = {{ system-prompt = \"{prompt}\" }}\n")
}

fn write_setup(root: &Path, tenants: &[(&str, &str)], mock: std::net::SocketAddr) -> std::path::PathBuf {
    let td = root.join("tenants.d");
    std::fs::create_dir_all(&td).unwrap();
    for (name, text) in tenants {
        std::fs::write(td.join(name), text).unwrap();
    }
    let config = root.join("gateway.toml");
    std::fs::write(&config, base_config(mock, &main_extra())).unwrap();
    config
}

/// Sends one chat request as tenant `id`; the status and the system prompt the mock received.
async fn as_tenant(w: &Watched, id: &str) -> (u16, Option<String>) {
    let r = w
        .http
        .post(w.url(&format!("/t/{id}/v1/chat/completions")))
        .header("content-type", "application/json")
        .body(CHAT)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let prompt = (status == 200).then(|| last_prompt(w, id)).flatten();
    (status, prompt)
}

/// The system prompt of the last request the mock received for tenant `id`.
fn last_prompt(w: &Watched, id: &str) -> Option<String> {
    w.mock
        .recorded()
        .into_iter()
        .rev()
        .find(|r| r.headers.get("x-wasmgate-tenant").map(String::as_str) == Some(id))
        .and_then(|r| r.body["messages"][0]["content"].as_str().map(str::to_string))
}

/// Polls tenant `id` until it answers `status` (and, for 200, `prompt`).
async fn until(w: &Watched, id: &str, status: u16, prompt: Option<&str>) {
    let started = std::time::Instant::now();
    loop {
        let (s, p) = as_tenant(w, id).await;
        if s == status && (status != 200 || p.as_deref() == prompt) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "tenant {id}: still {s} {p:?}, want {status} {prompt:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_files_added_changed_broken_and_removed_under_load_fail_no_request_of_the_others() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_setup(dir.path(), &[("a.toml", &tenant("A v1")), ("b.toml", &tenant("B v1"))], m.addr);
    let w = Arc::new(watch(dir, config, m).await);
    let td = w.dir.path().join("tenants.d");
    until(&w, "a", 200, Some("A v1")).await;

    // A load loop on `a` and `b` for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for id in ["a", "b", "a", "b"] {
        let (w, stop, ok, failed) = (w.clone(), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = w
                    .http
                    .post(w.url(&format!("/t/{id}/v1/chat/completions")))
                    .header("content-type", "application/json")
                    .body(CHAT)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => {
                        eprintln!("tenant {id}: {}", r.status());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("tenant {id}: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }

    // Editor leftovers and half-shipped files are not tenants.
    std::fs::write(td.join(".c.toml.swp"), "garbage").unwrap();
    std::fs::write(td.join("c.toml~"), "garbage").unwrap();
    std::fs::write(td.join("c.toml.tmp"), "garbage").unwrap();
    // Added, changed, removed.
    ship(&td.join("c.toml"), tenant("C v1").as_bytes());
    until(&w, "c", 200, Some("C v1")).await;
    ship(&td.join("c.toml"), tenant("C v2").as_bytes());
    until(&w, "c", 200, Some("C v2")).await;
    // Changed in place (not shipped by rename).
    std::fs::write(td.join("c.toml"), tenant("C v3")).unwrap();
    until(&w, "c", 200, Some("C v3")).await;

    // A broken file keeps its tenant's previous version; the error names file and line; a
    // change to another file still applies meanwhile.
    ship(&td.join("b.toml"), format!("{}\nmodel = \"typo\"\n", tenant("B v2")).as_bytes());
    let st = w
        .status_until(Duration::from_secs(15), "the broken b.toml is reported", |st| {
            st["tenant_errors"]["b"].as_str().is_some_and(|e| e.contains("b.toml") && e.contains("line 4"))
        })
        .await;
    assert!(st["config_error"].is_null(), "{st}");
    ship(&td.join("a.toml"), tenant("A v2").as_bytes());
    until(&w, "a", 200, Some("A v2")).await;
    assert_eq!(as_tenant(&w, "b").await, (200, Some("B v1".to_string())), "b keeps its previous version");
    let tenants: serde_json::Value = w.http.get(w.admin("/admin/tenants")).send().await.unwrap().json().await.unwrap();
    let b = tenants["tenants"].as_array().unwrap().iter().find(|t| t["id"] == "b").unwrap().clone();
    assert!(b["file_error"].as_str().is_some_and(|e| e.contains("model")), "{b}");
    ship(&td.join("b.toml"), tenant("B v2").as_bytes());
    until(&w, "b", 200, Some("B v2")).await;
    w.status_until(Duration::from_secs(5), "b's error is cleared", |st| st["tenant_errors"].get("b").is_none()).await;

    std::fs::remove_file(td.join("c.toml")).unwrap();
    until(&w, "c", 404, None).await;

    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "requests of the other tenants failed ({ok} succeeded)");
    assert!(ok > 20, "the load loop ran ({ok} requests)");
    let names: Vec<String> = w.status().await["tenant_errors"].as_object().unwrap().keys().cloned().collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn errors_in_tenant_files_name_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad_chain = "hosts = [\"x.local\"]\n\nchain = [\"nope\"]\n";
    let unknown_key = "chain = [\"pin\"]\nconfig.pin = {}\nmax-concurrent = 3\n";
    let config = write_setup(
        dir.path(),
        &[("ok.toml", &tenant("fine")), ("chain.toml", bad_chain), ("keys.toml", unknown_key), ("bad.id.toml", "")],
        "127.0.0.1:9".parse().unwrap(),
    );
    let e = Config::load(&config).unwrap_err().to_string();
    let td = dir.path().join("tenants.d");
    let chain = format!("{}: line 3: `chain`: no plugin named `nope`", td.join("chain.toml").display());
    assert!(e.contains(&chain), "{e}");
    let keys = format!("{}: line 3: `max-concurrent`: unknown field", td.join("keys.toml").display());
    assert!(e.contains(&keys), "{e}");
    assert!(e.contains("bad.id.toml") && e.contains("not a tenant id"), "{e}");
    assert!(!e.contains("ok.toml"), "{e}");
}

#[test]
fn a_tenant_in_both_the_main_file_and_the_dir_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_setup(dir.path(), &[("acme.toml", &tenant("dir"))], "127.0.0.1:9".parse().unwrap());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[tenants.acme]\nchain = [\"pin\"]\n");
    std::fs::write(&config, text).unwrap();
    let e = Config::load(&config).unwrap_err().to_string();
    let file = dir.path().join("tenants.d").join("acme.toml");
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(e.contains(&format!("also defined in {}", config.display())), "{e}");
    // Without the duplicate, both definitions are fine.
    std::fs::remove_file(&file).unwrap();
    let c = Config::load(&config).unwrap();
    assert!(c.tenants.contains_key("acme"));
}

#[test]
fn a_missing_tenants_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, base_config("127.0.0.1:9".parse().unwrap(), &main_extra())).unwrap();
    let e = Config::load(&config).unwrap_err().to_string();
    assert!(e.contains("policy.tenants-dir") && e.contains("tenants.d"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_tenant_files_load_and_the_last_one_answers_and_reloads() {
    const N: usize = 2000;
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<(String, String)> =
        (0..N).map(|i| (format!("t{i:04}.toml"), tenant(&format!("tenant {i}")))).collect();
    let refs: Vec<(&str, &str)> = names.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let config = write_setup(dir.path(), &refs, m.addr);
    let c = Config::load(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.tenants.len(), N);
    // One live instance per tenant plugin at load: more than the default pool.
    let opts = EngineOptions {
        cache_dir: c.policy.cache_dir.clone(),
        max_instances: u32::try_from(N + 100).unwrap(),
        max_memory_mib: 64,
        ..Default::default()
    };
    let snapshot = Snapshot::build(c, PolicyEngine::new(opts).unwrap()).await.unwrap();
    let gw = server::start_with(snapshot, Some(config.clone())).await.unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let w = Watched { dir, config, gw, mock: m, http };
    let last = format!("t{:04}", N - 1);
    assert_eq!(as_tenant(&w, &last).await, (200, Some(format!("tenant {}", N - 1))));
    ship(&w.dir.path().join("tenants.d").join(format!("{last}.toml")), tenant("last, changed").as_bytes());
    until(&w, &last, 200, Some("last, changed")).await;
    let st = w.status().await;
    assert_eq!(st["reloads"], 1, "{st}");
}
