//! The accept loop of the API and admin listeners (instead of `axum::serve`, which sets no
//! hyper timer, so no header deadline, and has no connection cap).
//!
//! Per connection: `TCP_NODELAY`; HTTP/1.1 or h2c by sniffing; a deadline for the first
//! complete request head counted from the accept (so it also covers the sniffing, a partial
//! h2 preface and a socket that sends nothing); an idle keep-alive deadline between requests
//! (h1 and h2; h2 also pings); the client's address as `ConnectInfo`. Per listener: at most
//! `max-connections` open, and when full the connection idle the longest is closed to make
//! room, so idle sockets can never lock out a real client. The protocol limits are pinned
//! here so a dependency bump cannot loosen them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::activity::{Close, Registered, Registry, Tracked};
use crate::config::ConnectionLimits;

/// Request head (h1: request line + headers; the read buffer cannot grow past it).
const MAX_HEAD_BYTES: usize = 64 << 10;
/// Headers of one h1 request.
const MAX_HEADERS: usize = 100;
/// h2 `SETTINGS_MAX_HEADER_LIST_SIZE`: the same budget as an h1 head.
const H2_MAX_HEADER_LIST: u32 = 64 << 10;
/// Streams one client h2 connection may have open (hyper's default, pinned).
const H2_MAX_CONCURRENT_STREAMS: u32 = 200;
/// Streams a client may reset before we answer them, then GOAWAY (rapid reset, CVE-2023-44487).
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams we may reset because of client errors before GOAWAY.
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// h2 flow-control windows and frames (hyper's defaults, pinned).
const H2_WINDOW: u32 = 1 << 20;
const H2_MAX_FRAME: u32 = 16 << 10;
const H2_MAX_SEND_BUF: usize = 400 << 10;
/// A client that does not answer a keep-alive PING within this is gone.
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection closed for idleness or shedding gets to say goodbye (h2 GOAWAY).
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Back-off after a failed `accept` that is not about one connection (e.g. no fds left).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Limits of one listener.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub http2_keep_alive_interval: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub(crate) fn new(c: &ConnectionLimits, max_connections: usize) -> Self {
        Limits {
            header_read_timeout: c.header_read_timeout,
            idle_timeout: c.idle_timeout,
            http2_keep_alive_interval: c.http2_keep_alive_interval,
            max_connections,
        }
    }
}

/// Binds `addr` with a listen queue of `backlog` (tokio's `bind` always uses 1024).
pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As `TcpListener::bind`: a restart must not wait for old sockets in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

fn builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // The watchdog owns the deadlines; hyper's own head timer (which starts as soon as a
        // connection is idle) only backs it up, so it must not undercut the idle timeout.
        .header_read_timeout(limits.header_read_timeout.max(limits.idle_timeout) + CLOSE_GRACE)
        .keep_alive(true)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
        .initial_stream_window_size(H2_WINDOW)
        .initial_connection_window_size(H2_WINDOW)
        .adaptive_window(false)
        .max_frame_size(H2_MAX_FRAME)
        .max_send_buf_size(H2_MAX_SEND_BUF);
    b
}

/// Serves `app` on `listener` until `stop` turns true; then stops accepting, asks every
/// connection to finish gracefully and returns when all have closed (the caller bounds
/// that with the shutdown grace and drops this future, which cuts the rest).
pub(crate) async fn serve(listener: TcpListener, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let builder = Arc::new(builder(&limits));
    let registry = Registry::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stopped(&mut stop) => break,
            // Reap finished tasks so the set does not grow with every connection.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&e, &registry).await;
                    continue;
                }
            },
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if !registry.shed_idlest() {
                    tracing::debug!("connection cap reached and every connection is busy; waiting");
                }
                tokio::select! {
                    () = stopped(&mut stop) => break,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let conn = Conn { builder: builder.clone(), app: app.clone(), limits: limits.clone(), peer };
        let registered = registry.add();
        let conn_stop = stop.clone();
        connections.spawn(async move {
            conn.run(stream, registered, conn_stop).await;
            drop(slot);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Resolves once shutdown has begun (the watch guard is not held across an await).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn accept_failed(e: &std::io::Error, registry: &Registry) {
    let errno = rustix::io::Errno::from_io_error(e);
    if errno == Some(rustix::io::Errno::MFILE) || errno == Some(rustix::io::Errno::NFILE) {
        // Out of descriptors: free one held by an idle client, then retry.
        tracing::warn!(error = %e, "accept failed: out of file descriptors; closing an idle connection");
        registry.shed_idlest();
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    } else {
        // Usually about that one connection (reset before we accepted it).
        tracing::debug!(error = %e, "accept failed");
    }
}

struct Conn {
    builder: Arc<Builder<TokioExecutor>>,
    app: Router,
    limits: Limits,
    peer: SocketAddr,
}

impl Conn {
    /// Serves one connection until it closes, a deadline passes, it is shed, or shutdown.
    async fn run(self, stream: TcpStream, registered: Registered, mut stop: watch::Receiver<bool>) {
        // Streamed chunks must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let activity = registered.activity.clone();
        let (app, peer) = (self.app, self.peer);
        let service = service_fn(move |mut request: http::Request<Incoming>| {
            let app = app.clone();
            let in_flight = activity.begin();
            // Handlers and plugins (`client-ip`) see the TCP peer, as with axum's ConnectInfo.
            request.extensions_mut().insert(ConnectInfo(peer));
            async move {
                let response = app.oneshot(request.map(Body::new)).await;
                let response = response.unwrap_or_else(|never| match never {});
                Ok::<_, Infallible>(response.map(|body| Body::new(Tracked::new(body, in_flight))))
            }
        });
        let mut conn = pin!(self.builder.serve_connection(TokioIo::new(stream), service));
        let watchdog = registered.activity.watchdog(self.limits.header_read_timeout, self.limits.idle_timeout);
        tokio::select! {
            _ = conn.as_mut() => return,
            why = watchdog => {
                tracing::debug!(peer = %peer, reason = ?why, "closing connection");
                if why == Close::HeaderTimeout {
                    // Nothing useful arrived: no goodbye owed.
                    return;
                }
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await;
                return;
            }
            () = stopped(&mut stop) => {}
        }
        // Shutdown: finish what is in flight (bounded by the caller's grace period).
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}
