//! Before any load: find the tools, build wasmgate (release), the Go baseline (offline, from
//! Debian's Go sources) and the FastAPI venv, and record what machine and versions this is.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::systems::Tools;

/// The workspace root (this crate lives in `benches/`).
pub fn workspace_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("benches/ has no parent directory")
}

/// Removes the run's scratch directory (configs, logs, nginx prefix) when dropped.
pub struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks the tools, builds what is missing or stale (unless `build` is false).
pub async fn prepare(root: &Path, build: bool) -> Result<(Tools, Scratch)> {
    prepare_systems(root, build, true).await
}

/// Like [`prepare`] for wasmgate alone (the `tenants` scenario): no baselines needed.
pub async fn prepare_wasmgate(root: &Path, build: bool) -> Result<(Tools, Scratch)> {
    prepare_systems(root, build, false).await
}

async fn prepare_systems(root: &Path, build: bool, baselines: bool) -> Result<(Tools, Scratch)> {
    let needed: &[(&str, &str)] = if baselines {
        &[("wrk", "wrk"), ("nginx", "nginx"), ("go", "golang-go golang-github-go-chi-chi-dev")]
    } else {
        &[("wrk", "wrk")]
    };
    for &(tool, hint) in needed {
        if !on_path(tool) {
            bail!("`{tool}` not found: apt-get update && apt-get install -y {hint}");
        }
    }
    let target = root.join("target");
    let tools = Tools {
        root: root.to_path_buf(),
        wasmgate: target.join("release/wasmgate"),
        gochi: target.join("bench/gochi"),
        venv: target.join("bench-venv"),
        tmp: target.join(format!("bench-tmp-{}", std::process::id())),
    };
    std::fs::create_dir_all(&tools.tmp)?;
    let scratch = Scratch(tools.tmp.clone());
    if build {
        println!("== building wasmgate (release)");
        let mut cargo = Command::new("cargo");
        cargo.args(["build", "--release", "-p", "wasmgate"]).current_dir(root);
        // Under `cargo run`, cargo's variables (CARGO, CARGO_PKG_*, CARGO_MANIFEST_DIR, ...) are
        // set for this process; passed on, they make build scripts that watch them (host/build.rs
        // watches CARGO) rerun and rebuild wasmgate, which the next plain build rebuilds back.
        cargo.env_remove("CARGO");
        for (key, _) in std::env::vars_os() {
            let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"];
            if let Some(k) = key.to_str()
                && k.starts_with("CARGO_")
                && !keep.contains(&k)
                && !k.starts_with("CARGO_BUILD_")
                && !k.starts_with("CARGO_REGISTRIES_")
                && !k.starts_with("CARGO_NET_")
            {
                cargo.env_remove(&key);
            }
        }
        run(&mut cargo)?;
    }
    if build && baselines {
        println!("== building the Go chi baseline (offline, Debian's chi)");
        run(Command::new("go")
            .arg("build")
            .arg("-o")
            .arg(&tools.gochi)
            .arg(".")
            .current_dir(root.join("benches/baselines/go-chi"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off"))?;
        if !python_ready(&tools.venv) {
            println!("== creating the FastAPI venv ({})", tools.venv.display());
            run(Command::new("python3").arg("-m").arg("venv").arg(&tools.venv))?;
            run(Command::new(tools.venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(root.join("benches/baselines/python-fastapi/requirements.txt")))?;
        }
    }
    for (what, path) in [("wasmgate", &tools.wasmgate), ("go-chi", &tools.gochi)] {
        if (baselines || what == "wasmgate") && !path.exists() {
            bail!("{what} binary missing at {} (run without --no-build)", path.display());
        }
    }
    if baselines && !python_ready(&tools.venv) {
        bail!("the FastAPI venv at {} is not usable (run without --no-build)", tools.venv.display());
    }
    Ok((tools, scratch))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false)
}

fn python_ready(venv: &Path) -> bool {
    Command::new(venv.join("bin/python"))
        .args(["-c", "import fastapi, uvicorn, httpx, aiohttp, uvloop, httptools"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// The machine and the versions of everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub date_utc: String,
    pub git_commit: String,
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory: String,
    pub open_file_limit: String,
    pub versions: Vec<(String, String)>,
}

/// Reads `/proc` and asks each tool for its version.
pub fn machine(tools: &Tools) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_default();
    let memory =
        read("/proc/meminfo").lines().next().unwrap_or_default().trim_start_matches("MemTotal:").trim().to_string();
    let py = tools.venv.join("bin/python");
    let py_versions = "import sys, fastapi, uvicorn, httpx, aiohttp, pydantic, uvloop; print(f'Python {sys.version.split()[0]}; FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__}, pydantic {pydantic.__version__}, uvloop {uvloop.__version__}, httpx {httpx.__version__}, aiohttp {aiohttp.__version__}')";
    let versions = vec![
        ("wasmgate".into(), output(Command::new(&tools.wasmgate).arg("--version"))),
        ("rustc".into(), output(Command::new("rustc").arg("--version"))),
        ("go".into(), output(Command::new("go").arg("version"))),
        ("chi".into(), chi_version()),
        ("python".into(), output(Command::new(py).args(["-c", py_versions]))),
        ("nginx".into(), output(Command::new("nginx").arg("-v"))),
        ("wrk".into(), output(Command::new("wrk").arg("-v")).lines().next().unwrap_or_default().to_string()),
    ];
    Machine {
        date_utc: output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        git_commit: output(Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(&tools.root)),
        nproc: std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        cpu_model,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        memory,
        open_file_limit: output(Command::new("sh").args(["-c", "ulimit -n"])),
        versions,
    }
}

/// stdout, else stderr (nginx -v prints there), trimmed.
fn output(cmd: &mut Command) -> String {
    match cmd.output() {
        Ok(o) => {
            let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if out.is_empty() { String::from_utf8_lossy(&o.stderr).trim().to_string() } else { out }
        }
        Err(e) => format!("unavailable ({e})"),
    }
}

fn chi_version() -> String {
    output(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "golang-github-go-chi-chi-dev"]))
}
