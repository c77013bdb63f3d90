//! The policy runtime: WebAssembly plugins (auth, rewrite, rate-limit) in wasmtime.
//!
//! - [`engine`]: one `Engine` (pooling allocator, copy-on-write images, keep-resident memory
//!   with `pagemap_scan`, epoch interruption with one ticker thread) and plugin loading with an
//!   in-memory and on-disk compile cache.
//! - `spec`: what a plugin is before it loads (kind, source, failure policy, spec, failure kinds).
//! - [`plugin`]: a loaded plugin version, its instances, breakers (per tenant) and metrics.
//! - [`idle`]: the engine-wide pool of idle instances under one budget, LRU first out.
//! - [`defaults`]: what a component declares about itself (failure default, body limit).
//! - [`chain`]: running a tenant's plugins on a request; `settle` afterwards.
//! - [`host`](self): the capabilities plugins import (log, clock, quota, kv) and an empty WASI.
//! - [`quota`], [`kv`]: host-side state, namespaced per tenant and plugin.
//!
//! # Instance model, and why
//!
//! Measured on this machine (`reference/wasmtime-costs.md`, `reference/polyglot-costs.md`): a
//! call on a reused instance costs ~1.3–1.5 µs for a Rust guest; a fresh instance per request
//! costs ~7–8 µs plus `configure` (pooling + keep-resident + pagemap_scan), and ~1 ms for a
//! Python guest. The whole 3-plugin chain must add ≤ 15 µs. So instances are **reused, with a
//! bound**: each serves at most `max-reuse` requests (default 1000; `1` gives a fresh instance
//! per request), one request at a time, and is dropped at the first trap, deadline or memory
//! kill — a poisoned `Store` is never entered again. Instances are never shared between
//! plugins, configs or tenants.
//!
//! Instances are made **lazily** and kept under **one engine-wide budget**: loading validates
//! a config on a canary instance and drops it, so a tenant costs no instance until it sends
//! traffic; idle instances of every plugin share one pool (count, bytes, a share per plugin,
//! an idle timeout), least recently used evicted first ([`idle`]). The engine's instance slots
//! (`max-instances`) bound what is alive at once; a call that finds them taken evicts an idle
//! instance, or waits a bounded time for one. Plugins must therefore not assume fresh memory (the WIT says
//! so); state that matters lives in the host (`quota`, `kv`).
//!
//! # Limits per call
//!
//! An epoch deadline (`timeout`, default 50 ms): at every 1 ms tick a running guest yields to
//! the async runtime and spends a tick of its budget, so a looping plugin never monopolises a
//! worker thread and traps when the budget is gone. A memory cap through a `ResourceLimiter`
//! (`memory-limit-mib`, default 64), a timeout around host calls (epochs do not count host
//! time) and around the whole call. Output is validated (status, header syntax, sizes).
//!
//! # Metrics
//!
//! `wasmgate_plugin_calls_total{plugin,result}`, `wasmgate_plugin_call_duration_seconds{plugin}`,
//! `wasmgate_plugin_decisions_total{plugin,decision}`, `wasmgate_plugin_failures_total{plugin,kind}`,
//! `wasmgate_plugin_traps_total{plugin,kind}`, `wasmgate_plugin_instances_created_total{plugin}`,
//! `wasmgate_plugin_versions_alive{plugin}`; engine-wide, refreshed each second:
//! `wasmgate_plugin_instance_slots`, `wasmgate_plugin_instances_live`,
//! `wasmgate_plugin_instances_idle`, `wasmgate_plugin_instances_idle_bytes`,
//! `wasmgate_plugin_instances_evicted_total{reason}` (`budget`, `idle`, `capacity`).

pub mod bindings;
mod breaker;
mod cache_dir;
pub mod chain;
mod convert;
pub mod defaults;
pub mod engine;
mod host;
pub mod idle;
pub mod kv;
pub mod plugin;
pub mod quota;
mod recorder;
mod spec;
pub mod view;

pub use breaker::BreakerState;
pub use chain::{Chain, ChainOutcome, PolicyFailure, Settlement, Subject};
pub use defaults::PluginDefaults;
pub use engine::{Capacity, EngineOptions, LoadError, PolicyEngine};
pub use idle::IdleBudget;
pub use plugin::{
    DEFAULT_BODY_LIMIT, FailureKind, FailurePolicy, Plugin, PluginKind, PluginSource, PluginSpec, versions_alive,
};
pub use recorder::Recorder;
pub use view::{Edit, Identity, LocalResponse, Outcome, RequestView, Usage};
