//! Child processes that cannot outlive the harness: each runs in its own process group, and the
//! guard kills the whole group (nginx workers, uvicorn) on drop, errors and early returns
//! included. Also: free loopback ports and waiting until a server answers.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::probe;

/// A running child process (and its process group); killed on drop.
pub struct Proc {
    pub name: String,
    pub pid: u32,
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    /// Spawns `cmd` in a new process group, stdout and stderr to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = file.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(Stdio::from(file)).stderr(Stdio::from(err)).process_group(0);
        let child = cmd.spawn().with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(Proc { name: name.to_string(), pid: child.id(), child, log: log.to_path_buf() })
    }

    /// Waits until `GET path` on `addr` answers 200 (or the process exits, or 30 s pass).
    pub async fn wait_ready(&mut self, addr: SocketAddr, path: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("{} exited ({status}) before answering; log: {}", self.name, self.tail_log());
            }
            if let Ok(r) = probe::get(addr, path).await
                && r.status == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not answer GET {path} on {addr} within 30 s; log: {}", self.name, self.tail_log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `bound` for the process to exit by itself; `None` if it did not (it is then
    /// killed when dropped).
    pub async fn wait_exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// The last lines of the process's log, for error messages.
    pub fn tail_log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(8).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Stops the group: SIGTERM, up to 2 s grace, then SIGKILL.
    pub fn stop(mut self) {
        self.kill_group();
    }

    fn kill_group(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            signal_group(self.pid, "-KILL"); // reap any worker left behind
            return;
        }
        signal_group(self.pid, "-TERM");
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(self.pid, "-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// `kill SIG -- -PGID`: the group we created with `process_group(0)` (its id is the leader's pid).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `n` distinct loopback ports free right now (all bound to port 0 at once, then released).
pub fn free_ports(n: usize) -> Result<Vec<SocketAddr>> {
    let listeners =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")).collect::<Result<Vec<_>>>()?;
    listeners.iter().map(|l| l.local_addr().context("local_addr")).collect()
}

/// utime + stime of `pid`, seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the `(comm)`: state is field 3; utime and stime are 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
