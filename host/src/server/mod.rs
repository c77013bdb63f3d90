//! The gateway server: the shared state ([`Gateway`]), the consistent per-request view of
//! config and plugins ([`Snapshot`]), the API and admin listeners, and graceful shutdown.

mod admin;
mod pipeline;
mod router;
mod upstream_headers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::proxy::Upstreams;

pub use router::api_router;

/// Everything a request needs that can change at runtime, swapped as one immutable unit.
/// Each request loads it once at its start and keeps it to the end, so it never sees half
/// of a change.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub upstreams: Upstreams,
}

impl Snapshot {
    /// Builds a snapshot from a validated config (clients are created here, once).
    pub fn build(config: Config) -> Result<Snapshot, StartError> {
        let upstreams = Upstreams::from_config(&config).map_err(StartError::Upstreams)?;
        Ok(Snapshot { config: Arc::new(config), upstreams })
    }
}

/// State shared by every request.
pub struct Gateway {
    pub snapshot: ArcSwap<Snapshot>,
    /// False once shutdown has begun: `/ready` answers 503 so load balancers drain us.
    pub ready: AtomicBool,
}

impl Gateway {
    pub fn new(snapshot: Snapshot) -> Arc<Gateway> {
        Arc::new(Gateway { snapshot: ArcSwap::from_pointee(snapshot), ready: AtomicBool::new(true) })
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("upstream setup failed: {0}")]
    Upstreams(String),
    #[error("plugin setup failed: {0}")]
    Plugins(String),
}

/// A gateway running in the background (used by `serve` and by tests).
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningGateway {
    /// Stops accepting, lets in-flight requests and streams finish for up to the configured
    /// grace period, then returns.
    pub async fn shutdown(self) {
        self.gateway.ready.store(false, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Begins shutdown without waiting.
    pub fn trigger_shutdown(&self) {
        self.gateway.ready.store(false, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
    }

    /// Waits for the server task to end.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Binds both listeners and serves `snapshot` until shut down.
pub async fn start(snapshot: Snapshot) -> Result<RunningGateway, StartError> {
    let listen = snapshot.config.server.listen;
    let admin_listen = snapshot.config.server.admin_listen;
    let grace = snapshot.config.server.shutdown_grace;
    let listener = TcpListener::bind(listen).await.map_err(|source| StartError::Bind { addr: listen, source })?;
    let admin_listener =
        TcpListener::bind(admin_listen).await.map_err(|source| StartError::Bind { addr: admin_listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: listen, source })?;
    let admin_addr = admin_listener.local_addr().map_err(|source| StartError::Bind { addr: admin_listen, source })?;

    let metrics = crate::metrics::install();
    let gateway = Gateway::new(snapshot);
    let (tx, rx) = watch::channel(false);

    let api = axum::serve(listener, api_router(gateway.clone())).with_graceful_shutdown(wait_for(rx.clone()));
    let admin = axum::serve(admin_listener, admin::router(gateway.clone(), metrics))
        .with_graceful_shutdown(wait_for(rx.clone()));

    let task = tokio::spawn(async move {
        let admin_task = tokio::spawn(async move {
            if let Err(e) = admin.await {
                tracing::error!(error = %e, "admin listener failed");
            }
        });
        let mut api_task = tokio::spawn(async move {
            if let Err(e) = api.await {
                tracing::error!(error = %e, "API listener failed");
            }
        });
        // Once shutdown begins, in-flight requests get `grace` to finish.
        let mut rx = rx;
        let _ = rx.wait_for(|stop| *stop).await;
        tracing::info!(grace = ?grace, "shutting down: no new connections; waiting for in-flight requests");
        if tokio::time::timeout(grace, &mut api_task).await.is_err() {
            tracing::warn!("grace period over; dropping the remaining connections");
            api_task.abort();
        }
        admin_task.abort();
    });
    Ok(RunningGateway { addr, admin_addr, gateway, shutdown: tx, task })
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
