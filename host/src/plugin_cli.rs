//! `wasmgate plugin check`: what a component file is, and whether it would load.

use std::path::Path;
use std::time::Duration;

use crate::policy::{EngineOptions, PluginKind, PluginSource, PluginSpec, PolicyEngine};

/// Prints the component's world, imports, exports, size and compile time, then loads it with
/// `config` (JSON or TOML file; default `{}`) and runs `configure`. Err = would not load.
pub async fn check(file: &Path, config: Option<&Path>) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let engine = PolicyEngine::new(EngineOptions::default()).map_err(|e| e.to_string())?;
    let info = engine.inspect(bytes.clone()).await?;
    println!("file:     {}", file.display());
    println!("size:     {} bytes, sha256 {}", info.size, info.sha256);
    println!("compile:  {:.1} ms", info.compile_time.as_secs_f64() * 1e3);
    println!("imports:  {}", if info.imports.is_empty() { "none".into() } else { info.imports.join(", ") });
    println!("exports:  {}", if info.exports.is_empty() { "none".into() } else { info.exports.join(", ") });
    let Some(kind) = info.kind else {
        return Err(format!(
            "{} is a component but not a wasmgate plugin: it implements none of the worlds auth, rewrite, rate-limit of wasmgate:policy@0.1.0",
            file.display()
        ));
    };
    println!("world:    wasmgate:policy/{}", kind.world());
    let config_json = match config {
        None => "{}".to_string(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            if text.trim_start().starts_with('{') {
                text
            } else {
                let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_json::to_string(&table).map_err(|e| e.to_string())?
            }
        }
    };
    let spec = PluginSpec {
        id: "checked".to_string(),
        kind,
        source: PluginSource::Bytes { name: file.display().to_string(), bytes: bytes.into() },
        config_json,
        namespace: "check".to_string(),
        failure: crate::policy::FailurePolicy::FailClosed,
        timeout: Duration::from_millis(500),
        memory_limit_bytes: 64 << 20,
        pass_body: false,
        max_reuse: 1,
    };
    engine.load(spec).await.map_err(|e| e.to_string())?;
    println!("configure: ok — the plugin would load as kind = \"{}\"", kind_name(kind));
    Ok(())
}

fn kind_name(k: PluginKind) -> &'static str {
    k.world()
}
