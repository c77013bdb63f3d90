//! Builds every plugin the tests and benches use: the reference plugins under `plugins/`, the
//! hostile and helper plugins under `plugins/testing/`, and the Python and JavaScript plugins
//! (when their toolchains are installed, see `host/build_polyglot.rs`). Their paths become the
//! constants of this crate.

use std::env;
use std::path::PathBuf;

#[path = "../../build_plugins.rs"]
mod plugins;
#[path = "../../build_polyglot.rs"]
mod polyglot;

fn main() {
    if let Err(err) = run() {
        eprintln!("error: building the test plugins failed: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir.ancestors().nth(3).ok_or("host/crates/test-plugins is not in a checkout")?.to_path_buf();
    // The Python and JavaScript plugin folders have no Cargo.toml: watch the whole tree.
    println!("cargo:rerun-if-changed={}", root.join("plugins").display());
    let target_dir = plugins::build(&root, &["plugins", "plugins/testing"])?;
    polyglot::build_all(&root, &target_dir)
}
