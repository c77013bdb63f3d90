//! What the connection layer knows about each open connection: whether a request is in
//! flight and since when it has been idle. The accept loop uses it for the per-connection
//! deadlines (first request, idle keep-alive) and to pick which connection to shed when the
//! cap is reached (the one idle the longest).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why the connection layer closes a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// No complete request head within `header-read-timeout` of the accept.
    HeaderTimeout,
    /// No request in flight for `idle-timeout`.
    Idle,
    /// The connection cap was reached and this was the connection idle the longest.
    Shed,
}

/// One connection's activity, shared by its task, its requests and the [`Registry`].
pub(crate) struct Activity {
    id: u64,
    /// Requests whose response has not been fully sent (h2: open streams).
    in_flight: AtomicUsize,
    /// Whether a request has ever started (before that, the head deadline applies).
    served: AtomicBool,
    /// When the connection last had nothing in flight, in ms since the registry's epoch.
    idle_since_ms: AtomicU64,
    shed: AtomicBool,
    /// Wakes the watchdog when the connection goes idle or is shed.
    changed: Notify,
    epoch: Instant,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Marks a request as started; the returned guard ends it when dropped (after the
    /// response body is done or dropped).
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served.store(true, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Resolves when the connection should be closed, and says why. Between requests it
    /// sleeps until the deadline; while a request is in flight it waits to be woken.
    pub(crate) async fn watchdog(&self, header_read_timeout: Duration, idle_timeout: Duration) -> Close {
        loop {
            if self.shed.load(Ordering::SeqCst) {
                return Close::Shed;
            }
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                // A guard dropped since the load leaves a permit, so this cannot miss it.
                self.changed.notified().await;
                continue;
            }
            let served = self.served.load(Ordering::SeqCst);
            let since = Duration::from_millis(self.idle_since_ms.load(Ordering::SeqCst));
            let deadline = self.epoch + since + if served { idle_timeout } else { header_read_timeout };
            if Instant::now() >= deadline {
                return if served { Close::Idle } else { Close::HeaderTimeout };
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.changed.notified() => {}
            }
        }
    }
}

/// A request in flight on a connection.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            a.idle_since_ms.store(a.now_ms(), Ordering::SeqCst);
            a.changed.notify_one();
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until it is done.
    pub(crate) struct Tracked<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
    }
}

impl<B> Tracked<B> {
    pub(crate) fn new(inner: B, guard: InFlight) -> Self {
        Tracked { inner, guard: Some(guard) }
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = polled {
            // Done: the connection is idle from now, even if hyper keeps the body a while.
            this.guard.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Every open connection of one listener.
pub(crate) struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    pub(crate) fn new() -> Arc<Registry> {
        Arc::new(Registry { epoch: Instant::now(), next_id: AtomicU64::new(0), open: Mutex::new(HashMap::new()) })
    }

    /// Registers a just-accepted connection; it leaves the registry when the handle drops.
    pub(crate) fn add(self: &Arc<Self>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            id,
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            shed: AtomicBool::new(false),
            changed: Notify::new(),
            epoch: self.epoch,
        });
        activity.idle_since_ms.store(activity.now_ms(), Ordering::SeqCst);
        self.lock().insert(id, activity.clone());
        Registered { registry: self.clone(), activity }
    }

    /// Asks the connection idle the longest (never-used ones count as idle since their
    /// accept) to close. False when every connection has a request in flight.
    pub(crate) fn shed_idlest(&self) -> bool {
        let open = self.lock();
        let victim = open
            .values()
            .filter(|a| a.in_flight.load(Ordering::SeqCst) == 0 && !a.shed.load(Ordering::SeqCst))
            .min_by_key(|a| a.idle_since_ms.load(Ordering::SeqCst));
        match victim {
            Some(a) => {
                a.shed.store(true, Ordering::SeqCst);
                a.changed.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        // The map stays consistent even if a holder panicked: every update is one call.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's entry in its [`Registry`], removed on drop (also when the task is aborted).
pub(crate) struct Registered {
    registry: Arc<Registry>,
    pub(crate) activity: Arc<Activity>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.activity.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)]
    use super::*;

    const HEAD: Duration = Duration::from_millis(200);
    const IDLE: Duration = Duration::from_millis(400);
    /// Generous: the box is shared.
    const SLACK: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn head_deadline_then_idle_deadline() {
        let reg = Registry::new();
        let conn = reg.add();
        let a = conn.activity.clone();
        let start = Instant::now();
        assert_eq!(a.watchdog(HEAD, IDLE).await, Close::HeaderTimeout);
        assert!(start.elapsed() >= HEAD && start.elapsed() < HEAD + SLACK, "{:?}", start.elapsed());

        let guard = a.begin();
        let watch = tokio::spawn({
            let a = a.clone();
            async move { a.watchdog(HEAD, IDLE).await }
        });
        tokio::time::sleep(IDLE * 3).await;
        assert!(!watch.is_finished(), "a request in flight is never idle");
        let ended = Instant::now();
        drop(guard);
        assert_eq!(watch.await.ok(), Some(Close::Idle));
        let idle = ended.elapsed();
        assert!(idle + Duration::from_millis(5) >= IDLE && idle < IDLE + SLACK, "{idle:?}");
    }

    #[tokio::test]
    async fn sheds_the_longest_idle_never_a_busy_one() {
        let reg = Registry::new();
        let busy = reg.add();
        let _req = busy.activity.begin();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let old = reg.add();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let young = reg.add();
        assert!(reg.shed_idlest());
        assert!(old.activity.shed.load(Ordering::SeqCst));
        assert!(!young.activity.shed.load(Ordering::SeqCst) && !busy.activity.shed.load(Ordering::SeqCst));
        assert!(reg.shed_idlest());
        assert!(!reg.shed_idlest(), "only the busy one is left");
        drop((old, young));
        assert_eq!(reg.lock().len(), 1);
    }
}
