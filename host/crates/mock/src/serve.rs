//! The accept loop: HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one port, auto-detected
//! per connection, with a shutdown that really ends connections.
//!
//! Hand-rolled instead of `axum::serve` for two reasons: the HTTP/2 limits must be raised (a
//! gateway multiplexes thousands of streams over a few h2c connections, hyper's default is 200
//! concurrent streams), and shutdown must not wait forever on connections the mock itself
//! stalls on purpose (`x-mock-stall`).

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::MockStats;

/// Concurrent streams one h2c connection may carry: enough for a 10,000-connection bench
/// funnelled through a single upstream connection.
const H2_MAX_CONCURRENT_STREAMS: u32 = 65_536;
/// After shutdown, how long open connections get to finish before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Back-off after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serve `app` on `listener` (HTTP/1.1 + h2c) until `shutdown` resolves; then stop accepting,
/// ask open connections to close, and cut those still open after half a second. Counts
/// connections in `stats` when given.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    stats: Option<Arc<MockStats>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow with every connection.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let open = stats.clone().map(OpenConnection::new);
                    connections.spawn(connection(builder.clone(), app.clone(), stream, stop_rx.clone(), open));
                }
                Err(error) => {
                    tracing::debug!(%error, "mock upstream: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }

    drop(listener);
    stop_tx.send_replace(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        connections.abort_all();
    }
    Ok(())
}

/// Serve one connection until it closes or shutdown is signalled (then close it gracefully).
async fn connection(
    builder: Arc<Builder<TokioExecutor>>,
    app: Router,
    stream: TcpStream,
    mut stop: watch::Receiver<bool>,
    _open: Option<OpenConnection>,
) {
    // Streamed chunks must leave at once, not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request: http::Request<Incoming>| {
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(Body::new)).await;
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|stop| *stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Counts a connection as accepted and open; dropped with its task (also when aborted).
struct OpenConnection(Arc<MockStats>);

impl OpenConnection {
    fn new(stats: Arc<MockStats>) -> Self {
        stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
        stats.connections_open.fetch_add(1, Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}
