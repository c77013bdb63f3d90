//! Hot reload that cannot open the gateway, over real sockets with a watched config file: a
//! config written in two steps never serves an unauthenticated request, an empty file is
//! rejected, a refused change applies only when forced, one change is one reload, a
//! Kubernetes ConfigMap symlink swap is seen, the precompiled-plugin cache is private, and a
//! change to keys read only at start applies the rest and names those keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::reload_admin::*;
use common::*;
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_written_in_two_steps_never_serves_an_unauthenticated_request() {
    let w = watched(&auth_chain()).await;
    assert_eq!(w.chat(None).await, 401);
    assert_eq!(w.chat(Some(KEY)).await, 200);

    // Anonymous clients hammer the gateway for the whole rewrite.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, sent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (http, url, stop, ok, sent) =
            (w.http.clone(), w.url("/v1/chat/completions"), stop.clone(), ok.clone(), sent.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if chat(&http, &url, None).await == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // The first half has server, upstream and models (it validates) but not the auth plugin.
    let full = std::fs::read_to_string(&w.config).unwrap();
    let cut = full.find("[plugins.keys]").unwrap();
    let mut f = std::fs::File::create(&w.config).unwrap();
    f.write_all(&full.as_bytes()[..cut]).unwrap();
    f.flush().unwrap();
    // The half file is stable for well over 250 ms: it is read, then refused.
    let st = w.status_until(WITHIN, "half file refused", |s| s["rejected"].as_u64() >= Some(1)).await;
    let err = st["config_error"].as_str().unwrap();
    assert!(err.contains("refused") && err.contains("every auth plugin") && err.contains("`keys`"), "{err}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    f.write_all(&full.as_bytes()[cut..]).unwrap();
    drop(f);

    // The whole file is the serving config again: the error clears, nothing was swapped.
    let st = w.status_until(WITHIN, "full file read", |s| s["config_error"].is_null()).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(sent.load(Ordering::Relaxed) > 20, "the clients did not run");
    assert_eq!(ok.load(Ordering::Relaxed), 0, "unauthenticated requests got 200 during the rewrite");
    assert_eq!(st["reloads"], 0, "{st}");
    assert_eq!(w.chat(None).await, 401);
    assert_eq!(w.chat(Some(KEY)).await, 200);
}

#[tokio::test]
async fn an_empty_file_is_rejected_and_counted() {
    let w = watched(&auth_chain()).await;
    std::fs::File::create(&w.config).unwrap();
    let st = w.status_until(WITHIN, "empty file rejected", |s| s["config_error"].is_string()).await;
    assert!(st["config_error"].as_str().unwrap().contains("is empty"), "{st}");
    assert_eq!(st["reloads"], 0);
    assert_eq!(w.chat(None).await, 401, "the old config keeps serving");
    assert_eq!(w.chat(Some(KEY)).await, 200);
    // Not even forced: an empty file is never a config.
    let r = w.http.post(w.admin("/admin/reload?force=true")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let metrics = w.http.get(w.admin("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wasmgate_reloads_total{result=\"rejected\"}"), "{metrics}");
}

#[tokio::test]
async fn a_change_that_drops_auth_is_refused_until_forced() {
    let w = watched(&auth_chain()).await;
    ship(&w.config, base_config(w.mock.addr, "").as_bytes());
    let st = w.status_until(WITHIN, "refusal", |s| s["config_error"].is_string()).await;
    assert!(st["config_error"].as_str().unwrap().contains("force=true"), "{st}");
    assert_eq!(w.chat(None).await, 401);

    // An explicit reload is refused the same way, with its own status.
    let r = w.http.post(w.admin("/admin/reload")).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["refused"], true, "{v}");
    assert_eq!(w.chat(None).await, 401);
    let r = w.http.post(w.admin("/admin/reload?force=maybe")).send().await.unwrap();
    openai_error(r, 400).await;

    let r = w.http.post(w.admin("/admin/reload?force=true")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["swapped"], true, "{v}");
    assert_eq!(w.chat(None).await, 200, "forced: the chain without auth serves");
    let st = w.status().await;
    assert!(st["config_error"].is_null(), "{st}");
}

#[tokio::test]
async fn one_change_causes_exactly_one_reload() {
    let w = watched(&auth_chain()).await;
    let changed =
        base_config(w.mock.addr, &format!("[[models]]\nname = \"one-more\"\nupstream = \"mock\"\n{}", auth_chain()));
    ship(&w.config, changed.as_bytes());
    w.status_until(WITHIN, "the change", |s| s["reloads"] == 1).await;
    // The reload's own reads of the files must not trigger further reloads.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let st = w.status().await;
    assert_eq!((st["reloads"].as_u64(), st["attempts"].as_u64()), (Some(1), Some(1)), "{st}");

    // The same bytes again (a new inode and mtime, same content) are not a change.
    ship(&w.config, changed.as_bytes());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let st = w.status().await;
    assert_eq!(st["attempts"], 1, "{st}");
}

#[tokio::test]
async fn a_reload_applies_what_it_can_and_names_the_keys_that_need_a_restart() {
    let w = watched(&auth_chain()).await;
    let grace_and_more = "listen-backlog = 77\nidle-timeout = \"9s\"\nbody-timeout = \"3s\"\n";
    let changed = base_config(
        w.mock.addr,
        &format!(
            "[[models]]\nname = \"one-more\"\nupstream = \"mock\"\nupstream-model = \"mock-gpt-4o\"\n{}",
            auth_chain()
        ),
    )
    .replace("\nlisten = \"127.0.0.1:0\"\n", "\nlisten = \"127.0.0.1:1\"\n")
    .replace("admin-listen = \"127.0.0.1:0\"\n", &format!("admin-listen = \"127.0.0.1:2\"\n{grace_and_more}"))
    .replace("shutdown-grace = \"5s\"", "shutdown-grace = \"7s\"")
    .replace("[policy]\n", &format!("[policy]\ncache-dir = \"{}\"\n", w.dir.path().join("cache").display()));
    ship(&w.config, changed.as_bytes());
    let want = [
        "policy.cache-dir",
        "server.admin-listen",
        "server.idle-timeout",
        "server.listen",
        "server.listen-backlog",
        "server.shutdown-grace",
    ];
    let names = |v: &Value| {
        let mut k: Vec<String> =
            v["restart_required"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
        k.sort();
        k
    };
    let r = w.http.post(w.admin("/admin/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(names(&report), want, "{report}");
    assert!(report["config_error"].is_null(), "{report}");
    let st = w.status_until(WITHIN, "the change", |s| s["reloads"] == 1).await;
    assert_eq!(names(&st), want, "{st}");

    // Everything else applied: the new model serves, and so does the old listener.
    let body = serde_json::json!({"model": "one-more", "messages": [{"role": "user", "content": "hi"}]});
    let r = w.http.post(w.url("/v1/chat/completions")).bearer_auth(KEY).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // What serves says what runs: the started values, with the per-request body timeout new.
    let text = w.http.get(w.admin("/admin/config")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("shutdown-grace = \"5s\"") && text.contains("body-timeout = \"3s\""), "{text}");
    assert!(!text.contains("listen-backlog = 77") && !text.contains("cache-dir"), "{text}");

    // Back to the started values: nothing waits for a restart any more.
    ship(&w.config, base_config(w.mock.addr, &auth_chain()).as_bytes());
    let report: Value = w.http.post(w.admin("/admin/reload")).send().await.unwrap().json().await.unwrap();
    assert_eq!(names(&report), Vec::<String>::new(), "{report}");
    let st = w.status().await;
    assert_eq!(names(&st), Vec::<String>::new(), "{st}");
}

/// Kubernetes mounts a ConfigMap as `gateway.toml -> ..data/gateway.toml`, `..data ->
/// ..2026_01_01_00_00_00.1`, and updates it by renaming a new `..data` symlink over the old.
#[cfg(unix)]
#[tokio::test]
async fn a_configmap_symlink_swap_triggers_a_reload() {
    use std::os::unix::fs::symlink;
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let version = |name: &str, extra: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("gateway.toml"), base_config(mock.addr, extra)).unwrap();
    };
    version("..2026_01_01_00_00_00.1", "");
    symlink("..2026_01_01_00_00_00.1", dir.path().join("..data")).unwrap();
    symlink("..data/gateway.toml", dir.path().join("gateway.toml")).unwrap();
    let config = dir.path().join("gateway.toml");
    let w = watch(dir, config, mock).await;
    let model = r#"{"model":"from-configmap","messages":[{"role":"user","content":"hi"}]}"#;
    let post = || w.http.post(w.url("/v1/chat/completions")).header("content-type", "application/json").body(model);
    assert_eq!(post().send().await.unwrap().status(), 404);

    // The kubelet's update: new directory, new symlink, atomic rename, old directory removed.
    let root = w.dir.path().to_path_buf();
    std::fs::create_dir(root.join("..2026_01_01_00_05_00.2")).unwrap();
    let extra = "[[models]]\nname = \"from-configmap\"\nupstream = \"mock\"\n";
    std::fs::write(root.join("..2026_01_01_00_05_00.2/gateway.toml"), base_config(w.mock.addr, extra)).unwrap();
    symlink("..2026_01_01_00_05_00.2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(root.join("..2026_01_01_00_00_00.1")).unwrap();

    w.status_until(WITHIN, "ConfigMap swap", |s| s["reloads"] == 1).await;
    assert_eq!(post().send().await.unwrap().status(), 200);

    // And the next swap is followed too (the new target directory is watched).
    std::fs::create_dir(root.join("..2026_01_01_00_10_00.3")).unwrap();
    std::fs::write(root.join("..2026_01_01_00_10_00.3/gateway.toml"), base_config(w.mock.addr, "")).unwrap();
    symlink("..2026_01_01_00_10_00.3", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    w.status_until(WITHIN, "second ConfigMap swap", |s| s["reloads"] == 2).await;
    assert_eq!(post().send().await.unwrap().status(), 404);
}

#[cfg(unix)]
#[tokio::test]
async fn the_plugin_cache_dir_is_private_and_an_open_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mock = mock().await;
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let extra = format!("{}cache-dir = \"{}\"\n", auth_chain(), cache.display());
    let text = base_config(mock.addr, &extra);
    let config = wasmgate::config::Config::parse(&text, None).unwrap();
    let gw =
        wasmgate::server::start(wasmgate::server::Snapshot::from_config(config.clone()).await.unwrap()).await.unwrap();
    let http = reqwest::Client::new();
    assert_eq!(chat(&http, &format!("http://{}/v1/chat/completions", gw.addr), Some(KEY)).await, 200);
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one artifact, no temporary file left: {files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "cwasm"), "{files:?}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    gw.shutdown().await;

    // Opened up to others: the gateway refuses to start, naming the directory.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = match wasmgate::server::Snapshot::from_config(config).await {
        Ok(_) => panic!("a world-writable cache dir was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&cache.display().to_string()) && err.contains("writable by group or others"), "{err}");
}
