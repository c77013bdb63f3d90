//! `wasmgate plugin ...`: the plugin author's tools.
//!
//! - [`check`]: what a component file is, and whether it would load.
//! - [`run`]: run a plugin on a recorded request outside the gateway; decision, latency, memory.
//! - [`new`]: write a plugin project (Rust, Python or JavaScript) that builds as it is, with
//!   the SDK and WIT it needs copied in from [`embedded`] (the Rust SDK through [`vendor`]).

mod check;
mod embedded;
mod error;
mod new;
mod run;
mod vendor;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use check::check;
pub use error::PluginToolError;
pub use new::{Lang, new_project};
pub use run::{RunOptions, run};

use crate::policy::{EngineOptions, FailurePolicy, Plugin, PluginSource, PluginSpec, PolicyEngine, engine::Inspection};

/// The plugin's own config (what `config.PLUGIN` holds in the gateway's TOML), from a JSON or
/// TOML file, as the JSON string `configure` receives. No file: `{}`.
fn read_config(config: Option<&Path>) -> Result<String, String> {
    let Some(p) = config else { return Ok("{}".to_string()) };
    let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    let mut value = if text.trim_start().starts_with('{') {
        serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("{}: {e}", p.display()))?
    } else {
        let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::to_value(&table).map_err(|e| e.to_string())?
    };
    // `NAME-env` keys are resolved as the gateway resolves them (see `config::secrets`).
    let (found, errors) =
        crate::config::secrets::resolve_env_refs(&mut value, "config", &|v: &str| std::env::var(v).ok());
    if let Some((key, msg)) = errors.into_iter().next() {
        return Err(format!("{}: `{key}`: {msg}", p.display()));
    }
    if found.is_empty() && text.trim_start().starts_with('{') {
        return Ok(text);
    }
    serde_json::to_string(&value).map_err(|e| e.to_string())
}

/// Gateway-side settings of a plugin, as `[plugins.ID]` would give them.
#[derive(Debug, Clone)]
struct Settings {
    timeout: Duration,
    memory_limit_mib: u64,
    max_reuse: u32,
    pass_body: bool,
}

/// A compiled, inspected component file (not loaded yet).
struct Inspected {
    engine: PolicyEngine,
    bytes: Vec<u8>,
    info: Inspection,
}

/// Compiles `file` and says what it is.
async fn inspect(file: &Path) -> Result<Inspected, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let engine = PolicyEngine::new(EngineOptions::default()).map_err(|e| e.to_string())?;
    let info = engine.inspect(bytes.clone()).await?;
    Ok(Inspected { engine, bytes, info })
}

impl Inspected {
    /// Loads the plugin like the gateway would (running `configure` on a first instance).
    async fn load(&self, file: &Path, config: Option<&Path>, settings: &Settings) -> Result<Arc<Plugin>, String> {
        let Some(kind) = self.info.kind else {
            return Err(not_a_plugin(file, &self.info));
        };
        let spec = PluginSpec {
            id: file.file_stem().map_or_else(|| "plugin".to_string(), |s| s.to_string_lossy().into_owned()),
            kind,
            source: PluginSource::Bytes { name: file.display().to_string(), bytes: self.bytes.clone().into() },
            config_json: read_config(config)?,
            namespace: "cli".to_string(),
            failure: FailurePolicy::FailClosed,
            timeout: settings.timeout,
            configure_timeout: settings.timeout.max(std::time::Duration::from_secs(10)),
            memory_limit_bytes: usize::try_from(settings.memory_limit_mib << 20).unwrap_or(usize::MAX),
            pass_body: settings.pass_body,
            max_reuse: settings.max_reuse,
            failure_explicit: false,
            body_limit: None,
        };
        self.engine.load(spec).await.map_err(|e| e.to_string())
    }
}

fn not_a_plugin(file: &Path, info: &Inspection) -> String {
    format!(
        "{} is a component but not a wasmgate plugin: it implements none of the worlds auth, rewrite, rate-limit of wasmgate:policy@0.1.0 (it exports: {})",
        file.display(),
        if info.exports.is_empty() { "nothing".to_string() } else { info.exports.join(", ") }
    )
}

/// Resident set size of this process, bytes (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}
