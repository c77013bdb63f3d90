//! Python and JavaScript plugins: every folder under `plugins/` and `plugins/testing/` with a
//! `plugin.toml` (`world = "..."`) and an `app.py` (componentize-py) or `plugin.js`
//! (componentize-js) is built into `<target>/wasm-plugins/polyglot/<name>.wasm`, exposed as
//! `WASMGATE_PLUGIN_<NAME>`.
//!
//! The toolchains are installed by `plugins/polyglot-tools.sh` into `target/polyglot-tools`
//! (or `$WASMGATE_POLYGLOT_TOOLS`; componentize-py is also taken from `PATH`). Without them the build goes on: a
//! `cargo:warning` says what to run, the variables are empty, and the tests that need these
//! plugins fail saying so. A plugin is rebuilt only when a stamp (a hash of its sources, the
//! SDK, the WIT and the tool versions) changed, so a rerun of this script costs no rebuild.
//!
//! A `[defaults]` table in `plugin.toml` (`failure = "fail-closed"`, `body-limit = 262144`) is
//! appended to the component as a `wasmgate:defaults` custom section (TOML), what the Rust SDK's
//! `declare_defaults!` writes for Rust plugins; the gateway reads it at load.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const INSTALL_HINT: &str = "run `plugins/polyglot-tools.sh` (installs componentize-py and componentize-js into target/polyglot-tools), then build again";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Js,
}

struct Source {
    name: String,
    dir: PathBuf,
    lang: Lang,
    world: String,
}

/// Builds every Python and JS plugin; a missing toolchain is a warning, a failing build an error.
pub fn build_all(root: &Path, out_root: &Path) -> Result<(), String> {
    let tools = tools_dir(root)?;
    // The SDKs' source files, one by one (`collect` skips caches and tests): watching their
    // folders would rerun this script whenever an interpreter writes bytecode next to them.
    for lang in ["python", "js"] {
        let mut files = Vec::new();
        collect(&root.join("sdk").join(lang), &mut files)?;
        for f in files {
            println!("cargo:rerun-if-changed={}", f.display());
        }
    }
    let out_dir = out_root.join("polyglot");
    fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let sources = discover(root)?;
    let python = componentize_py(&tools);
    let js = componentize_js(&tools);
    let mut missing = Vec::new();
    for src in &sources {
        let var = format!("WASMGATE_PLUGIN_{}", src.name.replace('-', "_").to_uppercase());
        let tool = match src.lang {
            Lang::Python => python.as_ref().map(|(path, version)| (path.clone(), version.clone())),
            Lang::Js => js.as_ref().map(|version| (PathBuf::from("node"), version.clone())),
        };
        let Some((tool, version)) = tool else {
            missing.push(src.name.clone());
            println!("cargo:rustc-env={var}=");
            continue;
        };
        let wasm = out_dir.join(format!("{}.wasm", src.name.replace('-', "_")));
        let stamp = wasm.with_extension("wasm.stamp");
        let hash = format!("{:016x}", inputs_hash(root, src, &version)?);
        if wasm.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == hash) {
            println!("cargo:rustc-env={var}={}", wasm.display());
            continue;
        }
        let started = std::time::Instant::now();
        let mut cmd = match src.lang {
            Lang::Python => {
                // componentize-py's embedded interpreter writes `__pycache__` next to what it
                // imports (it ignores PYTHONDONTWRITEBYTECODE): build from a copy in the target
                // dir so the source tree, which cargo watches, never changes.
                let staged = out_dir.join("staged").join(&src.name);
                let app = stage(&src.dir, &staged.join("app"))?;
                let sdk = stage(&root.join("sdk").join("python"), &staged.join("sdk"))?;
                let mut c = Command::new(&tool);
                c.arg("-d").arg(root.join("wit")).args(["-w", &src.world, "componentize", "app", "-p"]);
                c.arg(app).arg("-p").arg(sdk).arg("-o").arg(&wasm);
                c
            }
            Lang::Js => {
                let mut c = Command::new(&tool);
                c.arg(root.join("plugins").join("polyglot-tools").join("build-js.mjs"))
                    .arg(tools.join("node"))
                    .arg(src.dir.join("plugin.js"))
                    .arg(root.join("wit"))
                    .arg(&src.world)
                    .arg(&wasm);
                c
            }
        };
        // stdout of a build script is parsed by cargo: keep the tools' output off it.
        let status = cmd.current_dir(root).stdout(Stdio::from(std::io::stderr())).status();
        match status {
            Ok(s) if s.success() && wasm.is_file() => append_defaults(&src.dir.join("plugin.toml"), &wasm)?,
            Ok(s) => return Err(format!("building plugin {} ({}) failed ({s})", src.name, src.dir.display())),
            Err(e) => return Err(format!("cannot run {} for plugin {}: {e}", tool.display(), src.name)),
        }
        eprintln!("built {} in {:.1} s", wasm.display(), started.elapsed().as_secs_f64());
        fs::write(&stamp, &hash).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
        println!("cargo:rustc-env={var}={}", wasm.display());
    }
    if !missing.is_empty() {
        println!(
            "cargo:warning=Python/JS plugins not built ({}): toolchain missing; {INSTALL_HINT}",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Where the toolchains are: `$WASMGATE_POLYGLOT_TOOLS` (relative to the checkout; point it
/// at an empty or missing directory to build without them), else `target/polyglot-tools`.
///
/// Installing or updating the tools reruns this script, and nothing else does: cargo treats a
/// watched path that does not exist as changed on every build, so a missing stamp is never
/// watched. Without stamps the tools directory itself is watched (the default one is created,
/// empty, in the target dir), and `polyglot-tools.sh` writing its stamps there is the change.
fn tools_dir(root: &Path) -> Result<PathBuf, String> {
    const VAR: &str = "WASMGATE_POLYGLOT_TOOLS";
    println!("cargo:rerun-if-env-changed={VAR}");
    let tools = match std::env::var_os(VAR).filter(|v| !v.is_empty()) {
        Some(dir) => root.join(dir),
        None => {
            let dir = root.join("target").join("polyglot-tools");
            if !dir.exists() {
                fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                // Created now, it would look changed to the next build (cargo compares with
                // when this script started): date it back so only an install changes it.
                let epoch = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
                fs::File::open(&dir)
                    .and_then(|f| f.set_times(fs::FileTimes::new().set_modified(epoch).set_accessed(epoch)))
                    .map_err(|e| format!("cannot date back {}: {e}", dir.display()))?;
            }
            dir
        }
    };
    let stamps: Vec<PathBuf> =
        ["venv.stamp", "node.stamp"].iter().map(|s| tools.join(s)).filter(|s| s.is_file()).collect();
    if stamps.is_empty() {
        if tools.is_dir() {
            println!("cargo:rerun-if-changed={}", tools.display());
        }
    } else {
        for stamp in stamps {
            println!("cargo:rerun-if-changed={}", stamp.display());
        }
    }
    Ok(tools)
}

/// The polyglot plugin folders, sorted.
fn discover(root: &Path) -> Result<Vec<Source>, String> {
    let mut found = Vec::new();
    for parent in [root.join("plugins"), root.join("plugins").join("testing")] {
        let entries = fs::read_dir(&parent).map_err(|e| format!("cannot read {}: {e}", parent.display()))?;
        let mut dirs: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            let manifest = dir.join("plugin.toml");
            let Ok(text) = fs::read_to_string(&manifest) else { continue };
            let world = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("world"))
                .filter_map(|l| l.trim_start().strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
                .next()
                .ok_or_else(|| format!("no `world = \"...\"` in {}", manifest.display()))?;
            let lang = if dir.join("app.py").is_file() {
                Lang::Python
            } else if dir.join("plugin.js").is_file() {
                Lang::Js
            } else {
                return Err(format!("{} has neither app.py nor plugin.js", dir.display()));
            };
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            found.push(Source { name, dir, lang, world });
        }
    }
    Ok(found)
}

/// Appends the `[defaults]` of `manifest` to `wasm` as a `wasmgate:defaults` custom section
/// (valid anywhere after a component's preamble). Unknown keys and bad values are build errors:
/// the author's intent must reach the gateway as written.
fn append_defaults(manifest: &Path, wasm: &Path) -> Result<(), String> {
    let text = fs::read_to_string(manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let mut payload = String::new();
    let mut in_defaults = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line.starts_with('[') {
            in_defaults = line == "[defaults]";
            continue;
        }
        if !in_defaults {
            continue;
        }
        let (key, value) = line.split_once('=').map(|(k, v)| (k.trim(), v.trim())).unwrap_or((line, ""));
        let value = value.split(" #").next().unwrap_or_default().trim();
        let ok = match key {
            "failure" => matches!(value, "\"fail-closed\"" | "\"fail-open\""),
            "body-limit" => value.parse::<u64>().is_ok_and(|n| n > 0),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{}: [defaults] `{line}`: expected failure = \"fail-closed\" | \"fail-open\" or body-limit = <bytes>",
                manifest.display()
            ));
        }
        payload.push_str(&format!("{key} = {value}\n"));
    }
    if payload.is_empty() {
        return Ok(());
    }
    let mut bytes = fs::read(wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
    let name = "wasmgate:defaults";
    let mut body = leb128(name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload.as_bytes());
    bytes.push(0); // custom section id
    bytes.extend(leb128(body.len()));
    bytes.extend(body);
    fs::write(wasm, bytes).map_err(|e| format!("cannot write {}: {e}", wasm.display()))
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// componentize-py from the tools venv, else from `PATH`: its path and `--version` line.
fn componentize_py(tools: &Path) -> Option<(PathBuf, String)> {
    let candidates = [tools.join("venv").join("bin").join("componentize-py"), PathBuf::from("componentize-py")];
    candidates.into_iter().find_map(|path| {
        let out = Command::new(&path).arg("--version").output().ok().filter(|o| o.status.success())?;
        Some((path, String::from_utf8_lossy(&out.stdout).trim().to_string()))
    })
}

/// The componentize-js version installed in the tools dir, if it and `node` are there.
fn componentize_js(tools: &Path) -> Option<String> {
    let manifest =
        tools.join("node").join("node_modules").join("@bytecodealliance").join("componentize-js").join("package.json");
    let text = fs::read_to_string(manifest).ok()?;
    Command::new("node").arg("--version").output().ok().filter(|o| o.status.success())?;
    Some(text.lines().find(|l| l.contains("\"version\""))?.trim().to_string())
}

/// A hash of everything the component depends on: the plugin's sources (not its tests), the
/// SDK of its language, the WIT, the build driver and the tool version.
fn inputs_hash(root: &Path, src: &Source, tool_version: &str) -> Result<u64, String> {
    let sdk = root.join("sdk").join(match src.lang {
        Lang::Python => "python",
        Lang::Js => "js",
    });
    let mut files = Vec::new();
    for dir in [&src.dir, &sdk, &root.join("wit")] {
        collect(dir, &mut files)?;
    }
    files.push(root.join("plugins").join("polyglot-tools").join("build-js.mjs"));
    files.sort();
    let mut h = DefaultHasher::new();
    (tool_version, &src.world).hash(&mut h);
    for f in files {
        // Relative paths: a checkout or target dir moved elsewhere keeps its stamps.
        f.strip_prefix(root).unwrap_or(&f).hash(&mut h);
        fs::read(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?.hash(&mut h);
    }
    Ok(h.finish())
}

/// Copies the build inputs of `from` (what [`collect`] finds) to a fresh `to`; returns `to`.
fn stage(from: &Path, to: &Path) -> Result<PathBuf, String> {
    if to.exists() {
        fs::remove_dir_all(to).map_err(|e| format!("cannot clear {}: {e}", to.display()))?;
    }
    let mut files = Vec::new();
    collect(from, &mut files)?;
    for f in files {
        let dest = to.join(f.strip_prefix(from).map_err(|e| e.to_string())?);
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        fs::copy(&f, &dest).map_err(|e| format!("cannot copy {}: {e}", f.display()))?;
    }
    Ok(to.to_path_buf())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "tests" | "test" | "__pycache__" | "node_modules") {
                collect(&path, out)?;
            }
        } else if name.ends_with(".py")
            || name.ends_with(".js")
            || name.ends_with(".mjs")
            || name.ends_with(".wit")
            || name == "plugin.toml"
        {
            out.push(path);
        }
    }
    Ok(())
}
