//! What `plugin new` copies into a project, built into the binary: the WIT, the Rust, Python
//! and JavaScript SDKs and the JavaScript build helper. An installed `wasmgate` then scaffolds
//! projects that build anywhere, against the exact contract this gateway speaks, with no
//! checkout on the machine.
//!
//! The lists are explicit (a file nobody listed is not shipped by accident); a unit test walks
//! the directories they come from and fails when a file there is missing from a list.
//! `--wasmgate-dir` reads the same paths from a checkout instead ([`Source::Checkout`]), for
//! SDK developers trying their working tree.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::error::PluginToolError;

/// One file, by its path in the wasmgate repository.
#[derive(Debug, Clone, Copy)]
pub struct File {
    /// Path relative to the repository root, `/`-separated (`sdk/src/lib.rs`).
    pub path: &'static str,
    text: &'static str,
}

/// `File`s for repository paths (relative to this file: `host/src/plugin_cli/`).
macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(File { path: $path, text: include_str!(concat!("../../../", $path)) }),*]
    };
}

/// The contract: every file of `wit/` (a `wit/deps/` would be listed here too).
pub const WIT: &[File] = embed!["wit/policy.wit"];

/// The Rust SDK crate: its manifest and sources (it reads the WIT from `../wit`).
pub const RUST_SDK: &[File] = embed![
    "sdk/Cargo.toml",
    "sdk/src/auth.rs",
    "sdk/src/bindings.rs",
    "sdk/src/config.rs",
    "sdk/src/lib.rs",
    "sdk/src/log.rs",
    "sdk/src/rate_limit.rs",
    "sdk/src/response.rs",
    "sdk/src/rewrite.rs",
];

/// The workspace manifest: the Rust SDK's `workspace = true` keys are resolved against it.
pub const WORKSPACE_MANIFEST: File = embed!["Cargo.toml"][0];

/// The Python SDK package (not its tests).
pub const PYTHON_SDK: &[File] = embed![
    "sdk/python/wasmgate_sdk/__init__.py",
    "sdk/python/wasmgate_sdk/config.py",
    "sdk/python/wasmgate_sdk/export.py",
    "sdk/python/wasmgate_sdk/log.py",
    "sdk/python/wasmgate_sdk/types.py",
];

/// The JavaScript SDK: the module and its type declarations (not its tests).
pub const JS_SDK: &[File] = embed!["sdk/js/index.js", "sdk/js/types/policy.d.ts"];

/// Builds a JavaScript project into a component through the componentize-js API.
pub const JS_BUILD_HELPER: File = embed!["plugins/polyglot-tools/build-js.mjs"][0];

/// The toolchain versions wasmgate builds its own Python and JS plugins with (pip and npm pin
/// files); projects name them in their build scripts and `package.json`.
pub const PYTHON_TOOLS_PIN: &str = include_str!("../../../plugins/polyglot-tools/requirements.txt");
pub const JS_TOOLS_PIN: &str = include_str!("../../../plugins/polyglot-tools/package.json");

/// Where the files come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The copies built into this binary (the default).
    Embedded,
    /// A wasmgate checkout (`--wasmgate-dir`), read at the same paths.
    Checkout(PathBuf),
}

impl Source {
    /// `Checkout(dir)` if `dir` looks like a checkout; an error saying what is missing if not.
    pub fn checkout(dir: &Path) -> Result<Self, PluginToolError> {
        let not = |why: String| PluginToolError::NotACheckout { dir: dir.to_path_buf(), why };
        let dir = dir.canonicalize().map_err(|e| not(e.to_string()))?;
        for file in [WIT, RUST_SDK, PYTHON_SDK, JS_SDK].concat() {
            if !dir.join(file.path).is_file() {
                return Err(not(format!("no {}", file.path)));
            }
        }
        Ok(Self::Checkout(dir))
    }

    /// The text of `file` from this source.
    pub fn read(&self, file: &File) -> Result<Cow<'static, str>, PluginToolError> {
        match self {
            Self::Embedded => Ok(Cow::Borrowed(file.text)),
            Self::Checkout(dir) => {
                let path = dir.join(file.path);
                std::fs::read_to_string(&path).map(Cow::Owned).map_err(PluginToolError::io("read", path))
            }
        }
    }

    /// The files of `list` that lie under `from/`, as `(path below to/, text)`.
    pub fn copy(
        &self,
        list: &[File],
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Cow<'static, str>)>, PluginToolError> {
        let mut out = Vec::new();
        for file in list {
            if let Some(rest) = file.path.strip_prefix(from).and_then(|r| r.strip_prefix('/')) {
                let dest = if to.is_empty() { rest.to_string() } else { format!("{to}/{rest}") };
                out.push((dest, self.read(file)?));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Files under `dir` (repository-relative), minus caches and what projects do not need.
    fn walk(root: &Path, dir: &str, skip: &[&str], out: &mut Vec<String>) {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let rel = format!("{dir}/{name}");
            if skip.contains(&name.as_str()) || skip.contains(&rel.as_str()) || name.ends_with(".pyc") {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                walk(root, &rel, skip, out);
            } else {
                out.push(rel);
            }
        }
    }

    fn listed(lists: &[&[File]]) -> Vec<String> {
        lists.concat().iter().map(|f| f.path.to_string()).collect()
    }

    #[test]
    fn every_file_a_project_needs_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let caches = ["__pycache__", "node_modules", "target"];
        for (dir, skip, list) in [
            ("wit", vec![], WIT),
            ("sdk/src", vec![], RUST_SDK),
            ("sdk/python/wasmgate_sdk", vec![], PYTHON_SDK),
            // The JS SDK's own tests and README stay in the repository.
            ("sdk/js", vec!["sdk/js/test", "sdk/js/README.md"], JS_SDK),
        ] {
            let mut found = Vec::new();
            walk(&root, dir, &[caches.as_slice(), skip.as_slice()].concat(), &mut found);
            let listed = listed(&[list]);
            let missing: Vec<_> = found.iter().filter(|f| !listed.contains(f)).collect();
            assert!(missing.is_empty(), "not embedded (add them to plugin_cli/embedded.rs): {missing:?}");
        }
        // The Rust SDK's top level: its manifest, and a build script if it ever gets one.
        for top in ["sdk/Cargo.toml", "sdk/build.rs"] {
            assert_eq!(root.join(top).is_file(), listed(&[RUST_SDK]).iter().any(|f| f == top), "{top}");
        }
    }

    #[test]
    fn a_checkout_reads_the_same_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let checkout = Source::checkout(&root).unwrap();
        for file in [WIT, RUST_SDK, PYTHON_SDK, JS_SDK].concat() {
            assert_eq!(checkout.read(&file).unwrap(), Source::Embedded.read(&file).unwrap(), "{}", file.path);
        }
        let copied = Source::Embedded.copy(PYTHON_SDK, "sdk/python", "").unwrap();
        assert!(copied.iter().any(|(p, _)| p == "wasmgate_sdk/__init__.py"), "{:?}", copied[0].0);
        let err = Source::checkout(&root.join("host")).unwrap_err().to_string();
        assert!(err.contains("no wit/policy.wit"), "{err}");
    }
}
