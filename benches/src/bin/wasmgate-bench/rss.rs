//! Memory of a server: `VmRSS` summed over the process and all its descendants (nginx workers),
//! read from `/proc/PID/status`. A sampler polls every 100 ms during a measured point and keeps
//! the maximum.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often the sampler reads `/proc`.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// `pid` and every process below it.
fn tree(pid: u32) -> Vec<u32> {
    let mut parent_of: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
            // `pid (comm) state ppid ...`: comm may contain spaces, so split after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok()) {
                parent_of.entry(ppid).or_default().push(child);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(children) = parent_of.get(&out[i]) {
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// `field` (in kB) from `/proc/PID/status`, 0 if absent.
fn status_kb(pid: u32, field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Current RSS of the tree, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    tree(pid).into_iter().map(|p| status_kb(p, "VmRSS")).sum()
}

/// Polls a process tree's RSS in the background until [`Sampler::finish`].
pub struct Sampler {
    max: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let max = Arc::new(AtomicU64::new(rss_kb(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (max.clone(), stop.clone());
        let task = tokio::task::spawn_blocking(move || {
            while !s.load(Ordering::Relaxed) {
                m.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler { max, stop, task }
    }

    /// Stops sampling; returns the largest RSS seen, in kB.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.max.load(Ordering::Relaxed)
    }
}
