//! The gateway server: the shared state ([`Gateway`]), the consistent per-request view of
//! config and plugins ([`Snapshot`]), the API and admin listeners, and graceful shutdown.

mod activity;
mod admin;
mod admin_guard;
mod chains;
pub mod exchange;
mod fd_limit;
mod listener;
mod phases;
mod pipeline;
mod router;
pub(crate) mod upstream_headers;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, FailureMode, PluginConfig, PluginKindConfig, PluginLocation};
use crate::policy::{Chain, FailurePolicy, PluginKind, PluginSource, PluginSpec, PolicyEngine};
use crate::proxy::{Upstream, Upstreams};

pub use chains::{PluginFiles, Sources, load_chain};
pub use router::api_router;

/// Everything a request needs that can change at runtime, swapped as one immutable unit.
/// Each request loads it once at its start and keeps it to the end, so it never sees half
/// of a change.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub upstreams: Upstreams,
    /// The plugin chain every request runs (loaded, configured plugins).
    pub chain: Chain,
    /// Tenants by id, with their own chains (run after the global chain). A tenant whose
    /// config and plugin files did not change keeps its runtime across reloads.
    pub tenants: HashMap<String, Arc<TenantRuntime>>,
    /// Host name → tenant id.
    pub tenant_hosts: HashMap<String, String>,
    pub engine: PolicyEngine,
    /// Plugin files already read and hashed (shared with the snapshots built from this one).
    pub plugin_files: Arc<PluginFiles>,
}

/// What [`Snapshot::build_from`] made.
pub struct Built {
    pub snapshot: Snapshot,
    /// A chain or a tenant set differs from the previous snapshot's.
    pub plugins_changed: bool,
    /// Plugins that failed to load and kept their previous version: id → why.
    pub errors: BTreeMap<String, String>,
    /// Plugins (re)loaded by this build.
    pub loaded: Vec<String>,
}

/// A tenant's loaded chain, model allow-list and upstream overrides.
pub struct TenantRuntime {
    pub chain: Chain,
    pub models: Vec<crate::config::ModelPattern>,
    /// Bounds the tenant's requests running plugins at once.
    pub concurrency: Arc<tokio::sync::Semaphore>,
    /// Gateway upstream name → the tenant's own upstream for it (resolved when the snapshot is
    /// assembled).
    upstream_overrides: HashMap<String, Arc<Upstream>>,
}

impl TenantRuntime {
    /// A runtime for `t` running `chain`, its upstream overrides resolved in `upstreams`.
    pub fn new(t: &crate::config::TenantConfig, chain: Chain, upstreams: &Upstreams) -> Self {
        let permits = usize::try_from(t.max_concurrent_plugin_calls).unwrap_or(64);
        TenantRuntime {
            chain,
            models: t.models.clone(),
            concurrency: Arc::new(tokio::sync::Semaphore::new(permits)),
            upstream_overrides: t
                .upstream_overrides
                .iter()
                .filter_map(|(from, to)| upstreams.by_name(to).map(|u| (from.clone(), u.clone())))
                .collect(),
        }
    }

    /// A runtime for `t` that keeps `previous`'s concurrency bound (its permits in use stay
    /// counted across a reload).
    pub fn sharing_concurrency(
        t: &crate::config::TenantConfig,
        chain: Chain,
        upstreams: &Upstreams,
        previous: &TenantRuntime,
    ) -> Self {
        TenantRuntime { concurrency: previous.concurrency.clone(), ..TenantRuntime::new(t, chain, upstreams) }
    }

    /// The upstream this tenant uses instead of `upstream`, if it overrides it.
    pub fn upstream_for(&self, upstream: &str) -> Option<&Arc<Upstream>> {
        self.upstream_overrides.get(upstream)
    }

    /// Whether this runtime serves `t` as a new build would: the same config (`previous`, what
    /// it was built from), the same upstream clients, the same plugin files and settings.
    async fn still_serves(
        &self,
        t: &crate::config::TenantConfig,
        previous: &crate::config::TenantConfig,
        upstreams: &Upstreams,
        sources: &mut Sources<'_>,
    ) -> bool {
        previous == t
            && t.upstream_overrides.iter().all(|(from, to)| {
                matches!((self.upstream_overrides.get(from), upstreams.by_name(to)), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
            })
            && self.chain.plugins().iter().zip(&t.chain).all(|(p, pc)| p.same_settings(&plugin_spec(pc, &t.id)))
            && sources.unchanged(&self.chain, &t.chain).await
    }
}

impl Snapshot {
    /// Builds a snapshot from a validated config: upstream clients are created and plugins
    /// compiled and configured here, once, never per request.
    pub async fn build(config: Config, engine: PolicyEngine) -> Result<Snapshot, StartError> {
        Snapshot::build_from(config, engine, None).await.map(|b| b.snapshot)
    }

    /// The one build of a snapshot, for the start (`previous` none) and every reload: upstreams
    /// whose settings did not change keep their warm pools, plugins whose bytes and settings
    /// did not change are reused, tenants keep their concurrency bound when its limit did not
    /// change. A plugin that fails to load keeps its previous version (reported in
    /// [`Built::errors`]); one with no previous version fails the build.
    pub async fn build_from(
        config: Config,
        engine: PolicyEngine,
        previous: Option<&Snapshot>,
    ) -> Result<Built, StartError> {
        // Plugins register their metric handles when they load: the recorder must exist first.
        crate::metrics::install();
        let upstreams = Upstreams::reusing(&config, previous.map(|p| &p.upstreams)).map_err(StartError::Upstreams)?;
        let (mut errors, mut loaded) = (BTreeMap::new(), Vec::new());
        let files = previous.map_or_else(Default::default, |p| p.plugin_files.clone());
        let mut sources = Sources::new(&files);
        let none = Chain::default();
        let global: Vec<PluginConfig> =
            config.policy.chain.iter().filter_map(|id| config.plugins.get(id).cloned()).collect();
        let prev_chain = previous.map_or(&none, |p| &p.chain);
        let (chain, mut changed) =
            load_chain(&engine, &mut sources, &global, "global", prev_chain, &mut errors, &mut loaded)
                .await
                .map_err(StartError::Plugins)?;
        let mut tenants = HashMap::with_capacity(config.tenants.len());
        for t in config.tenants.values() {
            let old = previous.and_then(|p| Some((p.tenants.get(&t.id)?, p.config.tenants.get(&t.id)?)));
            // An unchanged tenant keeps its runtime: with thousands of tenants, a reload costs
            // what the changed ones cost.
            if let Some((rt, old_cfg)) = old
                && rt.still_serves(t, old_cfg, &upstreams, &mut sources).await
            {
                tenants.insert(t.id.clone(), rt.clone());
                continue;
            }
            let prev_chain = old.map_or(&none, |(rt, _)| &rt.chain);
            let (tchain, c) = load_chain(&engine, &mut sources, &t.chain, &t.id, prev_chain, &mut errors, &mut loaded)
                .await
                .map_err(StartError::Plugins)?;
            changed |= c;
            // Keep the semaphore when the limit did not change (permits in use stay counted).
            let rt = match old {
                Some((o, c)) if c.max_concurrent_plugin_calls == t.max_concurrent_plugin_calls => {
                    TenantRuntime::sharing_concurrency(t, tchain, &upstreams, o)
                }
                _ => TenantRuntime::new(t, tchain, &upstreams),
            };
            changed |= old.is_none_or(|(_, c)| c != t);
            tenants.insert(t.id.clone(), Arc::new(rt));
        }
        changed |= previous.is_none_or(|p| p.tenants.len() != tenants.len());
        // Files no plugin names any more are forgotten.
        let named: std::collections::HashSet<&std::path::Path> = config
            .plugins
            .values()
            .filter_map(|p| match &p.location {
                PluginLocation::File(f) => Some(f.as_path()),
                PluginLocation::Builtin(_) => None,
            })
            .collect();
        files.retain(|p| named.contains(p.as_path()));
        drop(sources);
        let snapshot = Snapshot::assemble(config, upstreams, chain, tenants, engine, files);
        Ok(Built { snapshot, plugins_changed: changed, errors, loaded })
    }

    /// Puts loaded parts together.
    pub fn assemble(
        config: Config,
        upstreams: Upstreams,
        chain: Chain,
        tenants: HashMap<String, Arc<TenantRuntime>>,
        engine: PolicyEngine,
        plugin_files: Arc<PluginFiles>,
    ) -> Snapshot {
        let tenant_hosts =
            config.tenants.values().flat_map(|t| t.hosts.iter().map(|h| (h.clone(), t.id.clone()))).collect();
        Snapshot { config: Arc::new(config), upstreams, chain, tenants, tenant_hosts, engine, plugin_files }
    }

    /// A snapshot with a fresh policy engine whose cache dir comes from the config.
    pub async fn from_config(config: Config) -> Result<Snapshot, StartError> {
        let opts = engine_options(&config.policy);
        let engine = PolicyEngine::new(opts).map_err(|e| StartError::Plugins(e.to_string()))?;
        Snapshot::build(config, engine).await
    }
}

/// The policy engine's settings from `[policy]`.
pub fn engine_options(p: &crate::config::PolicyConfig) -> crate::policy::EngineOptions {
    let i = &p.instances;
    crate::policy::EngineOptions {
        cache_dir: p.cache_dir.clone(),
        max_instances: i.max,
        idle: crate::policy::IdleBudget {
            max_instances: i.idle as usize,
            max_bytes: i.idle_memory_bytes,
            max_per_plugin: i.idle_per_plugin as usize,
            idle_timeout: i.idle_timeout,
        },
        ..Default::default()
    }
}

/// The runtime's view of one configured plugin.
pub fn plugin_spec(pc: &PluginConfig, namespace: &str) -> PluginSpec {
    let source = match &pc.location {
        PluginLocation::File(p) => PluginSource::Path(p.clone()),
        PluginLocation::Builtin(name) => PluginSource::Bytes {
            name: format!("builtin:{name}"),
            bytes: crate::builtin_plugins::shared(name).unwrap_or_else(|| Arc::from(&[][..])),
        },
    };
    PluginSpec {
        id: pc.id.clone(),
        kind: match pc.kind {
            PluginKindConfig::Auth => PluginKind::Auth,
            PluginKindConfig::Rewrite => PluginKind::Rewrite,
            PluginKindConfig::RateLimit => PluginKind::RateLimit,
        },
        source,
        config_json: pc.config_json.clone(),
        namespace: namespace.to_string(),
        failure: match pc.failure {
            FailureMode::FailClosed => FailurePolicy::FailClosed,
            FailureMode::FailOpen => FailurePolicy::FailOpen,
        },
        timeout: pc.timeout,
        configure_timeout: pc.configure_timeout,
        memory_limit_bytes: pc.memory_limit_bytes,
        pass_body: pc.pass_body,
        max_reuse: pc.max_reuse,
        failure_explicit: pc.failure_explicit,
        body_limit: pc.body_limit,
    }
}

/// State shared by every request.
pub struct Gateway {
    pub snapshot: ArcSwap<Snapshot>,
    /// Background work (settlements), drained at shutdown.
    pub supervisor: crate::supervisor::Supervisor,
    /// False once shutdown has begun: `/ready` answers 503 so load balancers drain us.
    pub ready: AtomicBool,
}

impl Gateway {
    pub fn new(snapshot: Snapshot) -> Arc<Gateway> {
        Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            supervisor: crate::supervisor::Supervisor::new(),
            ready: AtomicBool::new(true),
        })
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

/// Connections the admin listener keeps open (a scraper and a few operators); it never
/// shares the API listener's budget.
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// A gateway running in the background (used by `serve` and by tests).
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    /// Reloads config and plugins (file watch, admin API, SIGHUP).
    pub reloader: Arc<crate::reload::Reloader>,
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

    /// Waits for the server task to end.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Binds both listeners and serves `snapshot` until shut down (no file watching).
pub async fn start(snapshot: Snapshot) -> Result<RunningGateway, StartError> {
    start_with(snapshot, None).await
}

/// Like [`start`]; with `config_path`, the config and its plugin files are watched and
/// hot-reloaded.
pub async fn start_with(
    snapshot: Snapshot,
    config_path: Option<std::path::PathBuf>,
) -> Result<RunningGateway, StartError> {
    let listen = snapshot.config.server.listen;
    let admin_listen = snapshot.config.server.admin_listen;
    let grace = snapshot.config.server.shutdown_grace;
    let conn_limits = snapshot.config.server.connections.clone();
    let soft_fd_limit = fd_limit::raise();
    let max_connections = conn_limits
        .max_connections
        .unwrap_or_else(|| fd_limit::default_max_connections(soft_fd_limit))
        .min(tokio::sync::Semaphore::MAX_PERMITS);
    let api_limits = listener::Limits::new(&conn_limits, max_connections);
    let admin_limits = listener::Limits::new(&conn_limits, ADMIN_MAX_CONNECTIONS);
    let backlog = conn_limits.listen_backlog;
    let listener = listener::bind(listen, backlog).map_err(|source| StartError::Bind { addr: listen, source })?;
    let admin_listener =
        listener::bind(admin_listen, backlog).map_err(|source| StartError::Bind { addr: admin_listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: listen, source })?;
    let admin_addr = admin_listener.local_addr().map_err(|source| StartError::Bind { addr: admin_listen, source })?;

    let metrics = crate::metrics::install();
    let gateway = Gateway::new(snapshot);
    let watch_files = config_path.is_some();
    let reloader = crate::reload::Reloader::new(gateway.clone(), config_path);
    let watcher = if watch_files {
        Some(
            crate::reload::spawn_watcher(reloader.clone())
                .map_err(|e| StartError::Plugins(format!("cannot watch files: {e}")))?,
        )
    } else {
        None
    };
    let (tx, rx) = watch::channel(false);

    let api = listener::serve(listener, api_router(gateway.clone()), api_limits, rx.clone());
    let admin =
        listener::serve(admin_listener, admin::router(reloader.clone(), metrics, admin_addr), admin_limits, rx.clone());

    let supervisor = gateway.supervisor.clone();
    #[allow(clippy::disallowed_methods, reason = "the server task itself: awaited by shutdown()")]
    let task = tokio::spawn(async move {
        #[allow(clippy::disallowed_methods, reason = "listener tasks, ended by the shutdown below")]
        let admin_task = tokio::spawn(admin);
        #[allow(clippy::disallowed_methods, reason = "listener tasks, ended by the shutdown below")]
        let mut api_task = tokio::spawn(api);
        // Once shutdown begins, in-flight requests get `grace` to finish.
        let mut rx = rx;
        let _ = rx.wait_for(|stop| *stop).await;
        tracing::info!(grace = ?grace, "shutting down: no new connections; waiting for in-flight requests");
        if tokio::time::timeout(grace, &mut api_task).await.is_err() {
            tracing::warn!("grace period over; dropping the remaining connections");
            api_task.abort();
        }
        // Settlements of the requests that just finished still reach their plugins.
        let left = supervisor.drain(grace).await;
        if left > 0 {
            tracing::warn!(tasks = left, "background work still running at exit");
        }
        admin_task.abort();
        if let Some(w) = watcher {
            w.abort();
        }
    });
    Ok(RunningGateway { addr, admin_addr, gateway, reloader, shutdown: tx, task })
}
