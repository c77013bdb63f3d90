//! Building plugin crates as `wasm32-wasip2` components (profile `plugin`) into
//! `<workspace>/target/wasm-plugins`, shared by two build scripts (included with `#[path]`):
//!
//! - `host/build.rs`: the reference plugins under `plugins/` (the binary embeds them as
//!   `builtin:NAME`);
//! - `host/crates/test-plugins/build.rs` (a dev-only crate): the same, plus the hostile and
//!   helper plugins under `plugins/testing/` and the Python/JavaScript plugins, for tests and
//!   benches. The production build never builds a test plugin.
//!
//! Each built crate's path goes to the compiling crate as `WASMGATE_PLUGIN_<NAME>`. One nested
//! `cargo build -p <plugin>` per plugin: cargo unifies features across the packages of one
//! invocation, and each plugin must see only its own world's SDK feature.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TARGET: &str = "wasm32-wasip2";
pub const PROFILE: &str = "plugin";

/// Environment that must not leak from the outer build into the nested one: flags and
/// wrappers meant for the host (clippy, sccache, coverage), its target dir and target, and
/// the outer package's features and cfgs.
const LEAKY_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_PRIMARY_PACKAGE",
];

/// Builds every plugin crate directly under each of `dirs` (relative to the checkout `root`)
/// and tells the compiling crate where each one is. Returns the plugins' target dir.
pub fn build(root: &Path, dirs: &[&str]) -> Result<PathBuf, String> {
    // The Rust SDK and the WIT only: `sdk/python` and `sdk/js` are the polyglot build's, watched
    // file by file there (a `__pycache__` appearing in them must not rerun anything).
    for path in ["sdk/Cargo.toml", "sdk/src", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());
    println!("cargo:rerun-if-changed={}", root.join("Cargo.toml").display());
    for var in ["CARGO", "RUSTC", "RUSTUP_TOOLCHAIN", "CARGO_MAKEFLAGS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    ensure_target()?;

    let target_dir = root.join("target").join("wasm-plugins");
    let out_dir = target_dir.join(TARGET).join(PROFILE);
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (dir, package, lib_name) in plugin_crates(root, dirs)? {
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(root)
            .args(["build", "-p", &package, "--target", TARGET, "--profile", PROFILE, "--target-dir"])
            .arg(&target_dir)
            // stdout of a build script is parsed by cargo: keep the nested build's off it.
            .stdout(Stdio::from(std::io::stderr()));
        scrub_env(&mut cmd);
        let status = cmd.status().map_err(|e| format!("cannot run `{cargo}`: {e}"))?;
        if !status.success() {
            return Err(format!("`cargo build -p {package} --target {TARGET} --profile {PROFILE}` failed ({status})"));
        }
        let wasm = out_dir.join(format!("{lib_name}.wasm"));
        if !wasm.is_file() {
            return Err(format!("{package} built but {} is missing", wasm.display()));
        }
        let var = format!("WASMGATE_PLUGIN_{}", package.replace('-', "_").to_uppercase());
        println!("cargo:rustc-env={var}={}", wasm.display());
    }
    Ok(target_dir)
}

/// Make sure the wasm target's std is installed; `rustup target add` it if not.
fn ensure_target() -> Result<(), String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.as_deref().is_some_and(Path::is_dir) {
        return Ok(());
    }
    let added = Command::new("rustup").args(["target", "add", TARGET]).stdout(Stdio::from(std::io::stderr())).status();
    match added {
        Ok(status) if status.success() => Ok(()),
        other => {
            let why = match other {
                Ok(status) => format!("exited with {status}"),
                Err(e) => e.to_string(),
            };
            println!("cargo:warning=`rustup target add {TARGET}` failed: {why}");
            Err(format!(
                "the `{TARGET}` target is not installed and `rustup target add {TARGET}` failed ({why}); \
                 install it yourself (`rustup target add {TARGET}`) and build again"
            ))
        }
    }
}

/// `(dir, package name, library file stem)` of every crate directly under each of `dirs`.
fn plugin_crates(root: &Path, dirs: &[&str]) -> Result<Vec<(PathBuf, String, String)>, String> {
    let mut crates = Vec::new();
    for parent in dirs.iter().map(|d| root.join(d)) {
        let entries = fs::read_dir(&parent).map_err(|e| format!("cannot read {}: {e}", parent.display()))?;
        let mut dirs: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            let manifest = dir.join("Cargo.toml");
            if !manifest.is_file() {
                continue;
            }
            let text = fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
            let name = package_name(&text).ok_or_else(|| format!("no `name = \"...\"` in {}", manifest.display()))?;
            let lib_name = name.replace('-', "_");
            crates.push((dir, name, lib_name));
        }
    }
    Ok(crates)
}

/// The `name` of the `[package]` table (plugin manifests are simple; no TOML parser needed).
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some(value) = line.strip_prefix("name").map(str::trim_start).and_then(|l| l.strip_prefix('='))
        {
            return Some(value.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// Remove what would leak from the outer build (see [`LEAKY_VARS`]). `CARGO_MAKEFLAGS` stays:
/// the nested cargo then takes its job slots from the outer build's jobserver.
fn scrub_env(cmd: &mut Command) {
    for var in LEAKY_VARS {
        cmd.env_remove(var);
    }
    for (var, _) in env::vars_os() {
        let Some(var) = var.to_str() else { continue };
        if var.starts_with("CARGO_FEATURE_") || var.starts_with("CARGO_CFG_") {
            cmd.env_remove(var);
        }
    }
}
