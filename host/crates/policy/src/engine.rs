//! The one wasmtime `Engine` of the process, its epoch ticker, and plugin loading: read,
//! hash, compile once (in memory and on disk), check the world, link, and configure a canary.
//!
//! Pool sizing (defaults, see [`EngineOptions`]): 1,000 component instances (`max-instances`),
//! each memory slot reserving `max_memory_mib` (256 MiB) plus a 32 MiB guard, so the virtual
//! budget is about 2,000 memory slots × 288 MiB ≈ 563 GiB of address space (reserved, not
//! resident), not the 4 GiB+ per slot (≈ 8 TiB) of the defaults. Core instances are sized for
//! Python guests (~65 per component instance).
//!
//! Slots bound the instances alive at once — running calls plus the shared idle pool
//! ([`crate::idle`]) — not the number of tenants or plugins: a loaded plugin holds no instance
//! until it is called, so any number of tenants fit. A call that finds every slot taken
//! evicts the least recently used idle instance; with none idle it waits (bounded) for one.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::auth::Auth;
use super::defaults::PluginDefaults;
use super::host::HostState;
use super::idle::{Eviction, IdleBudget, IdlePool, IdleStats};
use super::kv::KvStore;
use super::plugin::{Instance, Plugin, PluginKind, PluginSource, PluginSpec};
use super::quota::{InMemoryQuotaStore, QuotaStore};

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled plugins are cached (`.cwasm`); None = no disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Largest linear memory any plugin may get (per-plugin limits are lower). Default 256 MiB.
    pub max_memory_mib: u64,
    /// Live component instances across all plugins (running and idle). Default 1,000.
    pub max_instances: u32,
    /// What may sit idle, engine-wide (instances, bytes, per plugin, idle timeout).
    pub idle: IdleBudget,
    /// Epoch tick; plugin deadlines are rounded up to it. Default 1 ms.
    pub epoch_tick: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: None,
            max_memory_mib: 256,
            max_instances: 1000,
            idle: IdleBudget::default(),
            epoch_tick: Duration::from_millis(1),
        }
    }
}

/// Why a plugin could not be loaded. Messages name the plugin and say what to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("plugin `{id}`: cannot read {path}: {reason}")]
    Read { id: String, path: String, reason: String },
    #[error("plugin `{id}`: not a valid WebAssembly component: {reason}")]
    Compile { id: String, reason: String },
    #[error("plugin `{id}`: {reason}")]
    WrongWorld { id: String, reason: String },
    #[error("plugin `{id}`: cannot be linked: {reason}")]
    Link { id: String, reason: String },
    #[error("plugin `{id}` rejected its config: {reason}")]
    Configure { id: String, reason: String },
    #[error("plugin `{id}` failed while starting: {reason}")]
    Canary { id: String, reason: String },
    #[error("plugin `{id}`: {reason}")]
    Defaults { id: String, reason: String },
    #[error("policy engine: {0}")]
    Engine(String),
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    quota: Arc<dyn QuotaStore>,
    kv: Arc<KvStore>,
    opts: EngineOptions,
    /// sha256 → compiled component: one compile per file content, shared by every use.
    compiled: Mutex<HashMap<String, Component>>,
    /// sha256 → the component linked, and what it declares: one link per file content (each
    /// `InstancePre` holds the resolved imports, ~10 KB; 20,000 tenant plugins shared 4 files).
    linked: Mutex<HashMap<String, Linked>>,
    stop_ticker: Arc<AtomicBool>,
    /// Instance slots in use, and the signal calls waiting for one retry on.
    slots: Arc<Slots>,
    /// Idle instances of every plugin, under one budget.
    idle: Arc<IdlePool<Instance>>,
}

/// A component linked against the host, and what it declares about itself.
#[derive(Clone)]
struct Linked {
    pre: wasmtime::component::InstancePre<HostState>,
    declared: PluginDefaults,
}

/// Instance slot accounting, shared by the engine and every instance it made.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    /// Signalled whenever a plugin instance is returned or dropped: calls waiting for a slot of
    /// a full pool retry then.
    freed: tokio::sync::Notify,
    /// Calls registered for `freed` right now: with none, returning or dropping an instance
    /// skips the signal (its lock and a shared atomic write on every call; see [`Waiting`]).
    waiting: AtomicUsize,
    /// Instances alive (running a call or idle).
    pub(crate) live: AtomicUsize,
    /// Instances made since the start (canaries included).
    pub(crate) created: AtomicU64,
    /// Idle instances evicted: over the budget, idle too long, for a slot.
    evicted: [AtomicU64; 3],
}

impl Slots {
    /// An instance was returned or dropped: wakes the calls waiting for one, if any. The
    /// waiter counts itself before it looks (see [`Waiting`]); this reads the count after the
    /// change it signals, so one of the two always sees the other.
    pub(crate) fn signal_freed(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_waiters();
        }
    }

    pub(crate) fn count_evicted(&self, why: Eviction, n: usize) {
        let i = match why {
            Eviction::Budget => 0,
            Eviction::Idle => 1,
            Eviction::Capacity => 2,
        };
        self.evicted[i].fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A call waiting for an instance of a full pool or of a plugin being instantiated: counted
/// in [`Slots::waiting`] while it lives, so [`Slots::signal_freed`] knows to signal.
pub(crate) struct Waiting<'a>(&'a Slots);

impl<'a> Waiting<'a> {
    pub(crate) fn new(slots: &'a Slots) -> Self {
        slots.waiting.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        Waiting(slots)
    }

    /// Registers for the next signal; enable the result before looking for an instance.
    pub(crate) fn freed(&self) -> tokio::sync::futures::Notified<'a> {
        self.0.freed.notified()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The engine's instance capacity right now (for `/admin` and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Instance slots in all (`max-instances`).
    pub slots: usize,
    /// Instances alive: running a call or idle.
    pub live: usize,
    /// Instances made since the start, canaries included.
    pub created: u64,
    /// Idle instances, their linear memory, and how many plugin versions hold some.
    pub idle: IdleStats,
    /// The idle budget.
    pub budget: IdleBudget,
    /// Idle instances evicted since the start: over the budget, idle too long, for a slot.
    pub evicted_budget: u64,
    pub evicted_idle: u64,
    pub evicted_capacity: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The policy engine. Cheap to clone.
#[derive(Clone)]
pub struct PolicyEngine(Arc<Inner>);

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine").field("opts", &self.0.opts).finish_non_exhaustive()
    }
}

fn engine_config(opts: &EngineOptions) -> Config {
    let max_memory = usize::try_from(opts.max_memory_mib << 20).unwrap_or(usize::MAX);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(opts.max_instances)
        .total_core_instances(opts.max_instances.saturating_mul(70))
        .total_memories(opts.max_instances.saturating_mul(2))
        .total_tables(opts.max_instances.saturating_mul(70))
        .total_stacks(opts.max_instances)
        .max_memory_size(max_memory)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c.memory_reservation(opts.max_memory_mib << 20);
    c.memory_guard_size(32 << 20);
    c.epoch_interruption(true);
    c
}

impl PolicyEngine {
    /// Creates the engine with the in-process quota store.
    pub fn new(opts: EngineOptions) -> Result<Self, LoadError> {
        Self::with_quota_store(opts, Arc::new(InMemoryQuotaStore::default()))
    }

    pub fn with_quota_store(opts: EngineOptions, quota: Arc<dyn QuotaStore>) -> Result<Self, LoadError> {
        // Plugins register metric handles at load: the recorder must exist first.
        if let Some(dir) = &opts.cache_dir {
            super::cache_dir::prepare(dir).map_err(|e| LoadError::Engine(e.to_string()))?;
        }
        let engine = Engine::new(&engine_config(&opts)).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        Auth::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let slots = Arc::new(Slots::default());
        let idle = Arc::new(IdlePool::new(opts.idle));
        let sweeper = Sweeper {
            idle: Arc::downgrade(&idle),
            slots: Arc::downgrade(&slots),
            max_instances: opts.max_instances as usize,
        };
        spawn_ticker(engine.weak(), opts.epoch_tick, stop_ticker.clone(), sweeper);
        Ok(PolicyEngine(Arc::new(Inner {
            engine,
            linker,
            quota,
            kv: Arc::new(KvStore::default()),
            opts,
            compiled: Mutex::new(HashMap::new()),
            linked: Mutex::new(HashMap::new()),
            stop_ticker,
            slots,
            idle,
        })))
    }

    /// Instance slots and the idle pool right now.
    pub fn capacity(&self) -> Capacity {
        capacity(&self.0.slots, &self.0.idle, self.0.opts.max_instances as usize)
    }

    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub fn quota(&self) -> &Arc<dyn QuotaStore> {
        &self.0.quota
    }

    pub fn epoch_tick(&self) -> Duration {
        self.0.opts.epoch_tick
    }

    pub(crate) fn slots(&self) -> &Arc<Slots> {
        &self.0.slots
    }

    pub(crate) fn idle(&self) -> &IdlePool<Instance> {
        &self.0.idle
    }

    /// Loads a plugin: compile (or reuse), check its world, link, and run `configure` on a
    /// canary instance, then dropped (instances are made on the first call). Compilation never
    /// runs on the async runtime.
    pub async fn load(&self, spec: PluginSpec) -> Result<Arc<Plugin>, LoadError> {
        let (sha, mut bytes) = match &spec.source {
            PluginSource::Hashed { sha256, .. } => (sha256.to_string(), None),
            other => {
                let bytes = other.read(&spec.id).await?;
                (hex::encode(Sha256::digest(&bytes)), Some(bytes))
            }
        };
        let cached = self.0.linked.lock().ok().and_then(|m| m.get(&sha).cloned());
        let Linked { pre, declared } = match cached {
            Some(l) => l,
            None => {
                let bytes = match bytes.take() {
                    Some(b) => b,
                    None => spec.source.read(&spec.id).await?,
                };
                let declared = PluginDefaults::read(&bytes)
                    .map_err(|reason| LoadError::Defaults { id: spec.id.clone(), reason })?;
                // Once per component (this is the link cache's miss): a declaration the gateway
                // cannot honour is the author's mistake, said where `plugin check` shows it too.
                if spec.kind != PluginKind::Auth {
                    let declared_headers = declared.headers.iter().flat_map(|h| h.iter());
                    for h in declared_headers.filter(|h| super::convert::is_credential(h)) {
                        tracing::warn!(plugin = %spec.id, header = %h, "the plugin declares a credential header; only auth plugins are handed credentials, so it never gets it");
                    }
                }
                let component = self.component(&spec.id, &sha, bytes).await?;
                let pre = self
                    .0
                    .linker
                    .instantiate_pre(&component)
                    .map_err(|e| LoadError::Link { id: spec.id.clone(), reason: format!("{e:#}") })?;
                let linked = Linked { pre, declared };
                if let Ok(mut m) = self.0.linked.lock() {
                    m.insert(sha.clone(), linked.clone());
                }
                linked
            }
        };
        check_world(&self.0.engine, pre.component(), spec.kind)
            .map_err(|reason| LoadError::WrongWorld { id: spec.id.clone(), reason })?;
        let caps = super::host::Capabilities {
            plugin_id: spec.id.clone(),
            key_prefix: format!("{}\u{1f}{}\u{1f}", spec.namespace, spec.id),
            quota: self.0.quota.clone(),
            kv: self.0.kv.clone(),
            host_call_timeout: spec.timeout.max(Duration::from_millis(100)),
        };
        let plugin = Plugin::new(self.clone(), spec, sha, pre, caps, declared)?;
        // Validates the config; the instance is then dropped: a plugin holds none until called.
        plugin.canary().await?;
        Ok(Arc::new(plugin))
    }

    /// The compiled component for `bytes`: from memory, from the disk cache, or compiled now.
    async fn component(&self, id: &str, sha: &str, bytes: Vec<u8>) -> Result<Component, LoadError> {
        if let Some(c) = self.0.compiled.lock().ok().and_then(|m| m.get(sha).cloned()) {
            return Ok(c);
        }
        let engine = self.0.engine.clone();
        let cache = self.0.opts.cache_dir.as_ref().map(|d| d.join(cache_file_name(&engine, sha)));
        let owned_id = id.to_string();
        let component =
            tokio::task::spawn_blocking(move || compile_cached(&engine, &owned_id, bytes, cache.as_deref()))
                .await
                .map_err(|e| LoadError::Compile { id: id.to_string(), reason: format!("compiler task failed: {e}") })??;
        if let Ok(mut m) = self.0.compiled.lock() {
            m.insert(sha.to_string(), component.clone());
        }
        Ok(component)
    }

    /// Forgets compiled components no loaded plugin uses any more (after reloads).
    pub fn forget_compiled(&self, keep: &[&str]) {
        if let Ok(mut m) = self.0.compiled.lock() {
            m.retain(|sha, _| keep.contains(&sha.as_str()));
        }
        if let Ok(mut m) = self.0.linked.lock() {
            m.retain(|sha, _| keep.contains(&sha.as_str()));
        }
    }
}

fn capacity(slots: &Slots, idle: &IdlePool<Instance>, max_instances: usize) -> Capacity {
    Capacity {
        slots: max_instances,
        live: slots.live.load(Ordering::Relaxed),
        created: slots.created.load(Ordering::Relaxed),
        idle: idle.stats(),
        budget: idle.budget(),
        evicted_budget: slots.evicted[0].load(Ordering::Relaxed),
        evicted_idle: slots.evicted[1].load(Ordering::Relaxed),
        evicted_capacity: slots.evicted[2].load(Ordering::Relaxed),
    }
}

/// Once a second, on the ticker thread: gives back instances idle past the timeout (a gateway
/// with no traffic at all still shrinks) and publishes the capacity gauges.
struct Sweeper {
    idle: std::sync::Weak<IdlePool<Instance>>,
    slots: std::sync::Weak<Slots>,
    max_instances: usize,
}

impl Sweeper {
    const EVERY: Duration = Duration::from_secs(1);

    fn run(&self) {
        let (Some(idle), Some(slots)) = (self.idle.upgrade(), self.slots.upgrade()) else { return };
        let expired = idle.expire(std::time::Instant::now());
        slots.count_evicted(Eviction::Idle, expired.len());
        drop(expired);
        let c = capacity(&slots, &idle, self.max_instances);
        metrics::gauge!("wasmgate_plugin_instance_slots").set(c.slots as f64);
        metrics::gauge!("wasmgate_plugin_instances_live").set(c.live as f64);
        metrics::gauge!("wasmgate_plugin_instances_idle").set(c.idle.instances as f64);
        metrics::gauge!("wasmgate_plugin_instances_idle_bytes").set(c.idle.bytes as f64);
        for (why, n) in [("budget", c.evicted_budget), ("idle", c.evicted_idle), ("capacity", c.evicted_capacity)] {
            metrics::counter!("wasmgate_plugin_instances_evicted_total", "reason" => why).absolute(n);
        }
    }
}

fn spawn_ticker(engine: wasmtime::EngineWeak, tick: Duration, stop: Arc<AtomicBool>, sweeper: Sweeper) {
    let spawned = std::thread::Builder::new().name("wasmgate-epoch".into()).spawn(move || {
        let mut last_sweep = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(tick);
            match engine.upgrade() {
                Some(e) => e.increment_epoch(),
                None => return,
            }
            if last_sweep.elapsed() >= Sweeper::EVERY {
                last_sweep = std::time::Instant::now();
                sweeper.run();
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker: plugin deadlines will not fire");
    }
}

/// `<sha256>-<wasmtime version>-<engine compatibility hash>.cwasm`
fn cache_file_name(engine: &Engine, sha: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{sha}-wasmtime{}-{:016x}.cwasm", wasmtime_version(), h.finish())
}

fn wasmtime_version() -> &'static str {
    "48.0.8"
}

fn compile_cached(engine: &Engine, id: &str, bytes: Vec<u8>, cache: Option<&Path>) -> Result<Component, LoadError> {
    if let Some(path) = cache
        && path.exists()
    {
        let checked = path
            .parent()
            .map_or(Ok(()), |d| super::cache_dir::check(d).map_err(|e| e.to_string()))
            .and_then(|()| super::cache_dir::trusted_file(path));
        match checked.and_then(|()| deserialize_cached(engine, path)) {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(plugin = %id, path = %path.display(), error = %e, "ignoring unusable cached plugin")
            }
        }
    }
    let started = std::time::Instant::now();
    let serialized = engine
        .precompile_component(&bytes)
        .map_err(|e| LoadError::Compile { id: id.to_string(), reason: format!("{e:#}") })?;
    tracing::info!(plugin = %id, elapsed = ?started.elapsed(), bytes = bytes.len(), "compiled plugin");
    if let Some(path) = cache {
        // Re-checked here: the directory may have been removed or opened up since the start.
        let ready = path.parent().map_or(Ok(()), |d| super::cache_dir::prepare(d).map_err(std::io::Error::other));
        match ready.and_then(|()| super::cache_dir::write_exclusive(path, &serialized)) {
            Ok(()) => {}
            Err(e) => tracing::warn!(plugin = %id, error = %e, "cannot write the compiled-plugin cache"),
        }
    }
    deserialize_bytes(engine, &serialized).map_err(|e| LoadError::Compile { id: id.to_string(), reason: e })
}

#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, path: &Path) -> Result<Component, String> {
    // SAFETY: the file is one we wrote ourselves with `precompile_component` (atomically, by
    // rename, into a 0700 directory of ours; `cache_dir` checked owner and mode), named after the wasmtime version and this engine's compatibility hash; wasmtime
    // also checks its header and refuses artifacts from another version or config.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|e| format!("{e:#}"))
}

#[allow(unsafe_code)]
fn deserialize_bytes(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
    // SAFETY: `bytes` was produced by `precompile_component` on this very engine a moment ago.
    unsafe { Component::deserialize(engine, bytes) }.map_err(|e| format!("{e:#}"))
}

/// What `wasmgate plugin check` reports about a component file.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub sha256: String,
    pub size: usize,
    /// The wasmgate world it implements, if any.
    pub kind: Option<PluginKind>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub compile_time: Duration,
    /// Size of the precompiled artifact (what the disk cache keeps).
    pub precompiled_size: usize,
    /// Time to load the precompiled artifact (a start with a warm cache).
    pub load_time: Duration,
    /// What the component declares about itself (`wasmgate:defaults`), or why that is unreadable.
    pub defaults: Result<PluginDefaults, String>,
}

impl PolicyEngine {
    /// Compiles `bytes` (no cache) and describes the component.
    pub async fn inspect(&self, bytes: Vec<u8>) -> Result<Inspection, String> {
        let engine = self.0.engine.clone();
        let (info, component) = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let serialized = engine.precompile_component(&bytes).map_err(|e| {
                let text = format!("{e:#}");
                let first = text.lines().next().unwrap_or_default().trim_end_matches([' ', '[', '=']).to_string();
                format!("not a WebAssembly component: {first}")
            })?;
            let compile_time = started.elapsed();
            // What a start with a warm cache pays instead: loading the precompiled artifact
            // from a file, as the cache does (mapped, not copied).
            let sha256 = hex::encode(Sha256::digest(&bytes));
            let defaults = PluginDefaults::read(&bytes);
            let path = std::env::temp_dir().join(format!("wasmgate-inspect-{}-{sha256}.cwasm", std::process::id()));
            std::fs::write(&path, &serialized).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let started = std::time::Instant::now();
            let loaded = deserialize_cached(&engine, &path);
            let load_time = started.elapsed();
            let _ = std::fs::remove_file(&path);
            let component = loaded?;
            let ty = component.component_type();
            let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
            let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
            let kind = PluginKind::ALL.into_iter().find(|k| exports.iter().any(|e| e == k.entry_export()));
            let info = Inspection {
                sha256,
                size: bytes.len(),
                kind,
                imports,
                exports,
                compile_time,
                precompiled_size: serialized.len(),
                load_time,
                defaults,
            };
            Ok::<_, String>((info, component))
        })
        .await
        .map_err(|e| format!("compiler task failed: {e}"))??;
        // A `load` of the same file right after reuses this compilation.
        if let Ok(mut m) = self.0.compiled.lock() {
            m.insert(info.sha256.clone(), component);
        }
        Ok(info)
    }
}

/// Checks that `component` exports the world of `kind`, and says which one it does export.
fn check_world(engine: &Engine, component: &Component, kind: PluginKind) -> Result<(), String> {
    let exports: Vec<String> = component.component_type().exports(engine).map(|(n, _)| n.to_string()).collect();
    let found = PluginKind::ALL.into_iter().find(|k| exports.iter().any(|e| e == k.entry_export()));
    match found {
        Some(k) if k == kind => {
            if exports.iter().any(|e| e == "configure") {
                Ok(())
            } else {
                Err("the component does not export `configure`".to_string())
            }
        }
        Some(k) => Err(format!(
            "the component implements world `wasmgate:policy/{}` but is configured as kind `{}`",
            k.world(),
            kind.world()
        )),
        None => Err(format!(
            "the component does not implement a wasmgate:policy world (expected `{}`; it exports: {})",
            kind.world(),
            if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
        )),
    }
}
