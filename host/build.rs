//! Builds the reference plugins under `plugins/` as `wasm32-wasip2` components, which the binary
//! embeds as `builtin:NAME` (`src/builtin_plugins.rs`). Test plugins and the Python and
//! JavaScript plugins are built by the dev-only crate `host/crates/test-plugins`, never here.

use std::env;
use std::path::PathBuf;

#[path = "build_plugins.rs"]
mod plugins;

fn main() {
    if let Err(err) = run() {
        // A build script reports failure by exiting non-zero; the message goes to stderr.
        eprintln!("error: building the wasm plugins failed: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir.parent().ok_or("host/ has no parent directory")?.to_path_buf();
    plugins::build(&root, &["plugins"]).map(|_| ())
}
