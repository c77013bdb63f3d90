//! wasmgate: an OpenAI-compatible LLM API gateway whose policies run as WebAssembly components.
//!
//! The request path lives in [`server`] (phases documented in `server/pipeline.rs`), the
//! upstream side in [`proxy`], configuration in [`config`], the OpenAI surface in [`api`], the
//! plugin runtime in [`policy`].

pub mod api;
pub mod builtin_plugins;
pub mod cli;
pub mod config;
pub mod finisher;
pub mod metrics;
pub mod plugin_cli;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod supervisor;

/// The mock upstream (its own crate): `wasmgate mock-upstream` and the embedded default.
pub use wasmgate_mock as mock;

/// The policy runtime (its own crate, no HTTP server): engine, plugins, chains, host capabilities.
pub use wasmgate_policy as policy;
