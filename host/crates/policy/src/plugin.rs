//! One loaded plugin: its linked component, a small pool of configured instances, its failure
//! policy and crash-loop breaker, and its metrics.
//!
//! Instance model: **bounded reuse, lazily**. Loading runs `configure` on a canary instance to
//! validate the config, then drops it: a loaded plugin holds no instance until it is called.
//! A call takes an idle configured instance of this plugin from the engine's shared pool
//! ([`crate::idle`]) or creates one and runs `configure`, and gives it back after a clean call
//! until it has served `max_reuse` requests. Any trap, deadline or memory kill drops the whole
//! `Store`: a trapped instance is never entered again. Instances belong to one loaded plugin
//! (file + config + tenant namespace), so nothing leaks between tenants or configs.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::auth::Auth;
use super::bindings::rate_limit::RateLimit;
use super::bindings::rewrite::Rewrite;
use super::breaker::{BreakerState, Breakers, CallGuard};
use super::defaults::PluginDefaults;
use super::engine::{LoadError, PolicyEngine, Slots, Waiting};
use super::host::{Capabilities, HostState};
use super::idle::Eviction;
pub use super::spec::{DEFAULT_BODY_LIMIT, FailureKind, FailurePolicy, PluginKind, PluginSource, PluginSpec};

pub(crate) enum Bindings {
    Auth(Auth),
    Rewrite(Rewrite),
    RateLimit(RateLimit),
}

/// A configured instance and its store (opaque outside the runtime: `plugin run` holds some to
/// measure their memory).
pub struct Instance {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: Bindings,
    uses: u32,
    /// When `configure` finished, and how long it took: see [`Plugin::checkin`].
    born: Instant,
    configured_in: Duration,
    /// Last field: dropped after the store, so waiters wake once its pool slots are free.
    _freed: FreedSignal,
}

/// Instances of one plugin being made at once (see [`Plugin::checkout`]).
const CONCURRENT_CREATIONS: usize = 2;

/// A canary whose `configure` took longer is kept for the first call (see [`Plugin::canary`]).
const KEEP_CANARY_OVER: Duration = Duration::from_millis(50);

/// An instance lives at least this many times the duration of its `configure` (see
/// [`Plugin::checkin`]).
const RECYCLE_AMORTIZATION: u32 = 100;

/// Gives the instance's slot back when it goes away, and wakes requests waiting for one.
struct FreedSignal(Arc<Slots>);

impl FreedSignal {
    fn new(slots: &Arc<Slots>) -> Self {
        slots.live.fetch_add(1, Ordering::Relaxed);
        slots.created.fetch_add(1, Ordering::Relaxed);
        FreedSignal(slots.clone())
    }
}

impl Drop for FreedSignal {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
        self.0.signal_freed();
    }
}

/// Loaded plugin versions still alive (held by a snapshot or an in-flight request), by id.
static ALIVE: std::sync::LazyLock<Mutex<std::collections::HashMap<String, usize>>> =
    std::sync::LazyLock::new(|| Mutex::new(std::collections::HashMap::new()));

/// How many versions of plugin `id` are alive: 1 in steady state, more while requests that
/// began before a reload are still running.
pub fn versions_alive(id: &str) -> usize {
    ALIVE.lock().ok().and_then(|m| m.get(id).copied()).unwrap_or(0)
}

fn count_alive(id: &str, up: bool) {
    if let Ok(mut m) = ALIVE.lock() {
        let n = m.entry(id.to_string()).or_insert(0);
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
        metrics::gauge!("wasmgate_plugin_versions_alive", "plugin" => id.to_string()).set(*n as f64);
        if *n == 0 {
            m.remove(id);
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        count_alive(&self.spec.id, false);
        drop(self.engine.idle().remove_owner(self.owner));
    }
}

/// Metric handles of the hot path, registered once per loaded plugin (a registry lookup and
/// label allocation per call would cost more than the call itself).
struct HotMetrics {
    ok: metrics::Counter,
    duration: metrics::Histogram,
    /// allow, deny, continue, mutate, respond
    decisions: [metrics::Counter; 5],
}

const DECISIONS: [&str; 5] = ["allow", "deny", "continue", "mutate", "respond"];

impl HotMetrics {
    fn new(id: &str) -> Self {
        let id = id.to_string();
        HotMetrics {
            ok: metrics::counter!("wasmgate_plugin_calls_total", "plugin" => id.clone(), "result" => "ok"),
            duration: metrics::histogram!("wasmgate_plugin_call_duration_seconds", "plugin" => id.clone()),
            decisions: DECISIONS
                .map(|d| metrics::counter!("wasmgate_plugin_decisions_total", "plugin" => id.clone(), "decision" => d)),
        }
    }
}

/// A loaded plugin version.
pub struct Plugin {
    hot: HotMetrics,
    engine: PolicyEngine,
    pub spec: PluginSpec,
    sha256: String,
    pre: InstancePre<HostState>,
    caps: Arc<Capabilities>,
    /// This version's key in the engine's idle pool.
    owner: u64,
    /// Bounds the instances of this version being made at once.
    creating: tokio::sync::Semaphore,
    breakers: Breakers,
    /// The effective failure policy and body limit: config > declaration > default.
    failure: FailurePolicy,
    body_limit: usize,
    declared: PluginDefaults,
    ticks: u64,
    configure_ticks: u64,
    loaded_at: std::time::SystemTime,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("id", &self.spec.id).field("sha256", &self.sha256).finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn new(
        engine: PolicyEngine,
        spec: PluginSpec,
        sha256: String,
        pre: InstancePre<HostState>,
        caps: Capabilities,
        declared: PluginDefaults,
    ) -> Result<Self, LoadError> {
        let tick = engine.epoch_tick().as_micros().max(1);
        let to_ticks = |d: Duration| u64::try_from(d.as_micros().div_ceil(tick)).unwrap_or(u64::MAX).saturating_add(1);
        let (ticks, configure_ticks) = (to_ticks(spec.timeout), to_ticks(spec.configure_timeout.max(spec.timeout)));
        count_alive(&spec.id, true);
        let owner = engine.idle().new_owner();
        let failure = match (spec.failure_explicit, declared.failure) {
            (false, Some(f)) => f,
            _ => spec.failure,
        };
        let body_limit = spec.body_limit.or(declared.body_limit).unwrap_or(DEFAULT_BODY_LIMIT);
        Ok(Plugin {
            hot: HotMetrics::new(&spec.id),
            engine,
            spec,
            sha256,
            pre,
            caps: Arc::new(caps),
            owner,
            creating: tokio::sync::Semaphore::new(CONCURRENT_CREATIONS),
            breakers: Breakers::default(),
            failure,
            body_limit,
            declared,
            ticks,
            configure_ticks,
            loaded_at: std::time::SystemTime::now(),
        })
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn kind(&self) -> PluginKind {
        self.spec.kind
    }

    /// Hex sha256 of the component file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn loaded_at(&self) -> std::time::SystemTime {
        self.loaded_at
    }

    /// Whether the crash-loop breaker of any tenant is open (or half-open).
    pub fn breaker_open(&self) -> bool {
        self.breakers.any_open()
    }

    /// The breaker of each tenant that has used this plugin version (for `/admin/plugins`).
    pub fn breaker_states(&self) -> Vec<BreakerState> {
        self.breakers.states(Instant::now(), std::time::SystemTime::now())
    }

    /// Lets a call for `tenant` through the breaker, or refuses it.
    pub(crate) fn admit(&self, tenant: &str) -> Option<CallGuard> {
        self.breakers.get(tenant).admit(Instant::now())
    }

    /// What happens when the plugin fails: the config's `failure`, else the plugin's
    /// declaration, else the kind's default.
    pub fn failure(&self) -> FailurePolicy {
        self.failure
    }

    /// Largest body handed to the plugin, bytes (config > declaration > 1 MiB).
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// What the component declares about itself (`wasmgate:defaults`).
    pub fn declared(&self) -> &PluginDefaults {
        &self.declared
    }

    /// Same settings apart from the component bytes (compared by hash elsewhere).
    pub fn same_settings(&self, other: &PluginSpec) -> bool {
        let a = &self.spec;
        a.id == other.id
            && a.kind == other.kind
            && a.config_json == other.config_json
            && a.namespace == other.namespace
            && a.failure == other.failure
            && a.failure_explicit == other.failure_explicit
            && a.body_limit == other.body_limit
            && a.timeout == other.timeout
            && a.configure_timeout == other.configure_timeout
            && a.memory_limit_bytes == other.memory_limit_bytes
            && a.pass_body == other.pass_body
            && a.max_reuse == other.max_reuse
    }

    /// Creates an instance and runs `configure` on it, to refuse a bad config at load; the
    /// instance is dropped (the first call makes its own).
    pub(crate) async fn canary(&self) -> Result<(), LoadError> {
        let inst = self.instantiate().await.map_err(|e| match e {
            InstantiateError::Configure(reason) => LoadError::Configure { id: self.spec.id.clone(), reason },
            InstantiateError::Failed(reason) => LoadError::Canary { id: self.spec.id.clone(), reason },
            InstantiateError::PoolFull(reason) => {
                LoadError::Canary { id: self.spec.id.clone(), reason: format!("no instance slot free: {reason}") }
            }
        })?;
        // An instance that took long to make (a config of 100,000 keys) is kept for the first
        // request; a cheap one is not: a tenant costs nothing until it sends traffic.
        if inst.configured_in >= KEEP_CANARY_OVER {
            self.checkin(inst);
        }
        Ok(())
    }

    /// A new instance with `configure` already run.
    async fn instantiate(&self) -> Result<Instance, InstantiateError> {
        let mut store =
            Store::new(self.engine.engine(), HostState::new(self.caps.clone(), self.spec.memory_limit_bytes));
        store.limiter(|s| &mut s.limiter);
        // At every epoch tick the guest yields to the runtime (a looping plugin never holds a
        // worker thread), and spends one tick of its budget; at zero it traps (`Interrupt`).
        store.epoch_deadline_callback(|mut ctx| {
            let s = ctx.data_mut();
            if s.ticks_left == 0 {
                return Err(wasmtime::Trap::Interrupt.into());
            }
            s.ticks_left -= 1;
            Ok(wasmtime::UpdateDeadline::Yield(1))
        });
        store.data_mut().ticks_left = self.configure_ticks;
        store.set_epoch_deadline(1);
        let failed = |e: wasmtime::Error| InstantiateError::Failed(format!("{e:#}"));
        let started = Instant::now();
        let instance =
            self.pre.instantiate_async(&mut store).await.map_err(|e| {
                if is_pool_limit(&e) { InstantiateError::PoolFull(format!("{e:#}")) } else { failed(e) }
            })?;
        let bindings = match self.spec.kind {
            PluginKind::Auth => Bindings::Auth(Auth::new(&mut store, &instance).map_err(failed)?),
            PluginKind::Rewrite => Bindings::Rewrite(Rewrite::new(&mut store, &instance).map_err(failed)?),
            PluginKind::RateLimit => Bindings::RateLimit(RateLimit::new(&mut store, &instance).map_err(failed)?),
        };
        let cfg = self.spec.config_json.as_str();
        let configure_started = Instant::now();
        let configured = match &bindings {
            Bindings::Auth(b) => b.call_configure(&mut store, cfg).await,
            Bindings::Rewrite(b) => b.call_configure(&mut store, cfg).await,
            Bindings::RateLimit(b) => b.call_configure(&mut store, cfg).await,
        };
        match configured {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => return Err(InstantiateError::Configure(msg)),
            Err(e) => return Err(failed(e)),
        }
        let configured_in = configure_started.elapsed();
        metrics::counter!("wasmgate_plugin_instances_created_total", "plugin" => self.spec.id.clone()).increment(1);
        tracing::debug!(plugin = %self.spec.id, elapsed = ?started.elapsed(), "new plugin instance");
        Ok(Instance {
            store,
            bindings,
            uses: 0,
            born: Instant::now(),
            configured_in,
            _freed: FreedSignal::new(self.engine.slots()),
        })
    }

    /// An idle instance of this plugin, or a new one. When every instance slot of the engine
    /// is taken, evicts the least recently used idle instance (of any plugin) and retries;
    /// with none idle, waits (up to [`Plugin::capacity_wait`]) for an instance to be returned
    /// or dropped: a full pool is load, reported as [`FailureKind::Capacity`], never as a
    /// plugin fault.
    ///
    /// Instances of one plugin are made [`CONCURRENT_CREATIONS`] at a time: a call that finds
    /// no idle instance while others are being made waits for one to be returned (up to the
    /// configure deadline) rather than making its own. Without that, 50 concurrent requests
    /// reaching a cold plugin whose `configure` takes 300 ms each ran `configure`, 50 times.
    pub async fn checkout(&self, request_id: &str) -> Result<Instance, FailureKind> {
        // The common case, a warm instance idle: no waiting, no signal registration.
        if let Some(inst) = self.engine.idle().take(self.owner) {
            return Ok(self.arm(inst, request_id));
        }
        let now = tokio::time::Instant::now();
        let deadline = now + self.capacity_wait();
        let creation_deadline = deadline + self.spec.configure_timeout;
        let waiting = Waiting::new(self.engine.slots());
        let inst = loop {
            // Registered before looking, so a slot freed in between is not missed.
            let freed = waiting.freed();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(i) = self.engine.idle().take(self.owner) {
                break i;
            }
            let Ok(permit) = self.creating.try_acquire() else {
                if tokio::time::timeout_at(creation_deadline, freed).await.is_err() {
                    tracing::warn!(plugin = %self.spec.id, "no plugin instance made or returned in time");
                    return Err(FailureKind::Capacity);
                }
                continue;
            };
            let made = self.instantiate().await;
            drop(permit);
            match made {
                Ok(i) => break i,
                Err(InstantiateError::PoolFull(reason)) => {
                    if let Some(victim) = self.engine.idle().evict_oldest() {
                        self.engine.slots().count_evicted(Eviction::Capacity, 1);
                        drop(victim);
                        continue;
                    }
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        tracing::warn!(plugin = %self.spec.id, %reason, "no plugin instance free in time");
                        return Err(FailureKind::Capacity);
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = %self.spec.id, error = %e, "cannot create a plugin instance");
                    // Calls waiting for this creation try for themselves. (Not after a success:
                    // they wake when the instance is returned; nor after a full pool: our own
                    // wait above would see this very signal and spin.)
                    self.engine.slots().signal_freed();
                    return Err(FailureKind::Instantiate);
                }
            }
        };
        Ok(self.arm(inst, request_id))
    }

    /// Readies an instance for a call: the request it serves, a full deadline.
    fn arm(&self, mut inst: Instance, request_id: &str) -> Instance {
        inst.store.data_mut().request_id.clear();
        inst.store.data_mut().request_id.push_str(request_id);
        inst.store.data_mut().ticks_left = self.ticks;
        inst.store.set_epoch_deadline(1);
        inst
    }

    /// Returns a cleanly used instance to the shared idle pool (or drops it when worn out);
    /// what the pool's budget pushes out is dropped here, outside its lock.
    ///
    /// Worn out: `max-reuse` requests served, and (unless `max-reuse` is 1, a fresh instance per
    /// request) alive for at least [`RECYCLE_AMORTIZATION`] times what its `configure` took, so
    /// replacing instances never costs more than ~1% of the plugin's time. Without that second
    /// condition, an `auth-keys` with 100,000 keys (configure: hundreds of ms) re-parsed its
    /// config every 1,000 requests, and a request cost 7× the CPU it costs with one key.
    pub(crate) fn checkin(&self, mut inst: Instance) {
        inst.uses += 1;
        if inst.uses >= self.spec.max_reuse
            && (self.spec.max_reuse == 1 || inst.born.elapsed() >= inst.configured_in * RECYCLE_AMORTIZATION)
        {
            return;
        }
        let bytes = inst.store.data().limiter.linear_bytes;
        let evicted = self.engine.idle().put(self.owner, inst, bytes, Instant::now());
        for (why, _) in &evicted {
            self.engine.slots().count_evicted(*why, 1);
        }
        drop(evicted);
        // A request of this plugin may be waiting for a slot: this one is free now.
        self.engine.slots().signal_freed();
    }

    /// How long a call waits for an instance when the pool is full: about one call's length,
    /// the time in which a running call gives its instance back.
    pub(crate) fn capacity_wait(&self) -> Duration {
        self.call_timeout().max(Duration::from_millis(500))
    }

    /// The largest linear memory among the idle instances, in bytes (for `plugin run`; read
    /// from the pool rather than counted on every call).
    pub fn idle_instance_memory(&self) -> usize {
        self.engine.idle().inspect(self.owner, |i| i.store.data().limiter.linear_bytes).into_iter().max().unwrap_or(0)
    }

    /// Why a call failed, from the error and the instance's state. The instance is dropped by
    /// the caller: never re-entered.
    pub(crate) fn classify(&self, inst: &Instance, err: &wasmtime::Error) -> FailureKind {
        if inst.store.data().limiter.hit {
            return FailureKind::MemoryLimit;
        }
        // An async call needs a fiber stack from the pool too.
        if is_pool_limit(err) {
            return FailureKind::Capacity;
        }
        match err.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => FailureKind::Timeout,
            _ => {
                let text = format!("{err:#}");
                if text.contains("did not answer in time") { FailureKind::Timeout } else { FailureKind::Trap }
            }
        }
    }

    /// The overall bound of one call: the epoch deadline plus slack for host calls.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.spec.timeout * 2 + Duration::from_millis(100)
    }

    pub(crate) fn record(&self, result: &'static str, elapsed: Duration) {
        if result == "ok" {
            self.hot.ok.increment(1);
        } else {
            metrics::counter!("wasmgate_plugin_calls_total", "plugin" => self.spec.id.clone(), "result" => result)
                .increment(1);
        }
        self.hot.duration.record(elapsed.as_secs_f64());
    }

    pub(crate) fn record_decision(&self, decision: &'static str) {
        if let Some(i) = DECISIONS.iter().position(|d| *d == decision) {
            self.hot.decisions[i].increment(1);
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum InstantiateError {
    #[error("configure refused: {0}")]
    Configure(String),
    #[error("{0}")]
    Failed(String),
    #[error("instance pool full: {0}")]
    PoolFull(String),
}

/// Whether wasmtime refused for lack of a pool slot (instances, memories, tables, stacks).
fn is_pool_limit(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some()
}
