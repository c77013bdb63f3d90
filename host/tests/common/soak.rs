//! The soak harness: the real `wasmgate` binary under steady traffic, its RSS sampled from
//! `/proc/<pid>/status`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_wasmgate");

/// A gateway process, killed when dropped.
pub struct Gateway {
    child: Child,
    pub url: String,
    pub admin_url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts `wasmgate serve --config <config>` and waits until it prints its addresses.
    pub fn start(config: &Path) -> Gateway {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env("WASMGATE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (url, admin_url) = loop {
            let line = lines.next().expect("gateway exited before listening").unwrap();
            // "wasmgate listening on http://A (admin: http://B/metrics)"
            if let Some(rest) = line.strip_prefix("wasmgate listening on ") {
                let mut words = rest.split_whitespace();
                let url = words.next().unwrap().to_string();
                let admin = words.nth(1).unwrap().trim_end_matches(')').trim_end_matches("/metrics").to_string();
                break (url, admin);
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Gateway { child, url, admin_url }
    }

    /// (`VmRSS`, `RssAnon`) in KiB: all resident memory, and the heap part of it (the
    /// binary's own pages, touched as code paths first run, are not growth).
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        (field("VmRSS:"), field("RssAnon:"))
    }
}

/// One sample a second.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub secs: f64,
    pub rss_kib: u64,
    pub anon_kib: u64,
    /// Requests completed so far.
    pub requests: u64,
}

/// What a soak run saw.
#[derive(Debug)]
pub struct Report {
    pub requests: u64,
    pub failures: u64,
    pub samples: Vec<Sample>,
}

impl Report {
    /// Heap growth over the second half: (relative growth, bytes per request), the mean of the
    /// last 3 samples against the mean of the 3 around the midpoint.
    pub fn second_half_growth(&self) -> (f64, f64) {
        let n = self.samples.len();
        assert!(n >= 8, "too few samples: {self:?}");
        let mean = |s: &[Sample], f: fn(&Sample) -> u64| s.iter().map(|x| f(x) as f64).sum::<f64>() / s.len() as f64;
        let (mid, end) = (&self.samples[n / 2 - 1..n / 2 + 2], &self.samples[n - 3..]);
        let (anon_mid, anon_end) = (mean(mid, |s| s.anon_kib), mean(end, |s| s.anon_kib));
        let requests = (mean(end, |s| s.requests) - mean(mid, |s| s.requests)).max(1.0);
        (anon_end / anon_mid - 1.0, (anon_end - anon_mid) * 1024.0 / requests)
    }
}

/// How often and with what the config file is rewritten and reloaded during a soak.
pub struct Reloads<'a> {
    pub every: Duration,
    pub path: &'a Path,
    /// Written in turn: each reload really swaps in a changed config.
    pub texts: [String; 2],
}

/// Drives `gw` for `length` with `workers` concurrent clients: chat completions and streams
/// (3 : 1), a config rewrite + `POST /admin/reload` every `reloads.every`, and, if `scrape`,
/// `GET /metrics` every second. Samples RSS once a second.
pub async fn drive(gw: &Gateway, length: Duration, workers: usize, reloads: &Reloads<'_>, scrape: bool) -> Report {
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(20)).pool_max_idle_per_host(workers).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (requests, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, url, stop) = (http.clone(), format!("{}/v1/chat/completions", gw.url), stop.clone());
        let (requests, failures) = (requests.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let stream = i % 4 == 0;
                let body = format!(
                    r#"{{"model":"mock-gpt-4o","stream":{stream},"messages":[{{"role":"user","content":"soak {i}"}}]}}"#
                );
                let ok = match http.post(&url).header("content-type", "application/json").body(body).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                requests.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                i += workers;
            }
        }));
    }
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next_reload = start + reloads.every;
    let mut reloaded = 0usize;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while start.elapsed() < length {
        tick.tick().await;
        let (rss_kib, anon_kib) = gw.rss_kib();
        let done = requests.load(Ordering::Relaxed);
        samples.push(Sample { secs: start.elapsed().as_secs_f64(), rss_kib, anon_kib, requests: done });
        if scrape {
            let r = http.get(format!("{}/metrics", gw.admin_url)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
        if Instant::now() >= next_reload {
            next_reload += reloads.every;
            reloaded += 1;
            std::fs::write(reloads.path, &reloads.texts[reloaded % 2]).unwrap();
            let r = http.post(format!("{}/admin/reload", gw.admin_url)).send().await.unwrap();
            assert_eq!(r.status(), 200, "reload");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    Report { requests: requests.load(Ordering::Relaxed), failures: failures.load(Ordering::Relaxed), samples }
}
