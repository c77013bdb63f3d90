//! Background work the gateway owns: settlements after a request ends (and, later, state-store
//! reconnects). Every such task is spawned here, so shutdown can wait for them: a reservation
//! made by a request that finished during the grace period is still settled, not lost with the
//! process.
//!
//! Work that belongs to a connection (the per-stream relay pump, hyper's connection tasks) is
//! not supervised: it ends with its connection, which the listener's grace period already
//! drains. `clippy.toml` forbids a bare `tokio::spawn` so no new background work slips past.

use std::future::Future;
use std::time::Duration;

use tokio_util::task::TaskTracker;

/// Tracks the gateway's background tasks. Cheap to clone (one `Arc`).
#[derive(Clone, Debug, Default)]
pub struct Supervisor {
    tasks: TaskTracker,
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor { tasks: TaskTracker::new() }
    }

    /// Runs `work` in the background; [`Supervisor::drain`] waits for it.
    pub fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Outside a runtime (a test dropping a finisher on a plain thread) there is nowhere to
        // run the work; it is dropped with a log line rather than panicking.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                self.tasks.spawn_on(work, &rt);
            }
            Err(_) => tracing::warn!("background work dropped: no async runtime"),
        }
    }

    /// Tasks still running.
    pub fn pending(&self) -> usize {
        self.tasks.len()
    }

    /// Stops taking new work in the sense of shutdown (tasks spawned later still run) and waits
    /// up to `grace` for what is running. Returns how many tasks were still running.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.tasks.close();
        let _ = tokio::time::timeout(grace, self.tasks.wait()).await;
        self.tasks.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn drain_waits_for_spawned_work() {
        let sup = Supervisor::new();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let d = done.clone();
            sup.spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                d.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(sup.drain(Duration::from_secs(5)).await, 0);
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn drain_gives_up_after_the_grace_period() {
        let sup = Supervisor::new();
        sup.spawn(std::future::pending());
        assert_eq!(sup.drain(Duration::from_millis(10)).await, 1);
    }
}
