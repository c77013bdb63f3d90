//! `wasmgate plugin check`: what a component file is, and whether it would load.

use std::path::Path;
use std::time::Duration;

use super::{Settings, inspect, not_a_plugin};

/// Prints the component's world, imports, exports, size and compile time, then loads it with
/// `config` (JSON or TOML file; default `{}`) and runs `configure`. Err = would not load.
pub async fn check(file: &Path, config: Option<&Path>) -> Result<(), String> {
    let c = inspect(file).await?;
    let info = &c.info;
    println!("file:     {}", file.display());
    println!("size:     {} bytes, sha256 {}", info.size, info.sha256);
    println!(
        "compile:  {:.1} ms; precompiled {} bytes, loads in {:.2} ms (the gateway's cache-dir keeps it)",
        info.compile_time.as_secs_f64() * 1e3,
        info.precompiled_size,
        info.load_time.as_secs_f64() * 1e3
    );
    println!("imports:  {}", if info.imports.is_empty() { "none".into() } else { info.imports.join(", ") });
    println!("exports:  {}", if info.exports.is_empty() { "none".into() } else { info.exports.join(", ") });
    let Some(kind) = info.kind else {
        return Err(not_a_plugin(file, info));
    };
    println!("world:    wasmgate:policy/{}", kind.world());
    match &info.defaults {
        Ok(d) => println!(
            "defaults: {} (declared in `{}`; the gateway config overrides it)",
            d.describe().unwrap_or_else(|| "none declared (the kind's defaults apply)".into()),
            crate::policy::defaults::SECTION
        ),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    }
    let settings =
        Settings { timeout: Duration::from_millis(500), memory_limit_mib: 64, max_reuse: 1, pass_body: false };
    c.load(file, config, &settings).await?;
    println!("configure: ok — the plugin would load as kind = \"{}\"", kind.world());
    Ok(())
}
