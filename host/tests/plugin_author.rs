//! The plugin author's loop, as an author runs it: `wasmgate plugin new` writes a project in
//! a directory outside the checkout (as an installed binary would), it builds there as it is
//! into a component, `plugin check` and `plugin run` accept it and show its decisions. No
//! written file names the checkout, and building never writes into it (but under `target/`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmgate_test_plugins as art;

const BIN: &str = env!("CARGO_BIN_EXE_wasmgate");

/// Runs the binary; (success, stdout, stderr).
fn wasmgate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).env("WASMGATE_LOG", "warn").output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

const REQUEST: &str = r#"{
  "method": "POST", "path": "/v1/chat/completions", "client_ip": "203.0.113.7",
  "headers": {"content-type": "application/json", "authorization": "Bearer sk-example-1"},
  "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
}"#;

#[test]
fn plugin_run_prints_decisions_latency_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let req = write(dir.path(), "req.json", REQUEST);
    let sha = "0d9fd9ed3e1fd1ebd2ee1a4e1b39d4e6a4dc11c1f7a0fbbc0d5f3e76fb3b1c8e"; // not the key's
    let key_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"sk-example-1"))
    };
    let cfg = write(
        dir.path(),
        "keys.json",
        &format!(r#"{{"keys":[{{"sha256":"{key_sha}","subject":"alice"}},{{"sha256":"{sha}","subject":"bob"}}]}}"#),
    );

    // Allowed as the key's subject; timing and memory lines for 200 calls.
    let (ok, out, err) =
        wasmgate(&["plugin", "run", art::AUTH_KEYS, "--request", &req, "--config", &cfg, "--repeat", "200"]);
    assert!(ok, "{err}");
    assert!(out.contains("wasmgate:policy/auth"), "{out}");
    assert!(out.contains("decision: allow: subject \"alice\""), "{out}");
    assert!(out.contains("time per call, reused instance:  p50 ") && out.contains("(200 calls)"), "{out}");
    assert!(out.contains("time per call, fresh instance:   p50 "), "{out}");
    assert!(out.contains("RSS per live configured instance (16 alive), linear memory 1."), "{out}");
    assert!(out.contains("compile:  ") && out.contains("loads in"), "{out}");

    // Another key from the command line: the plugin's own 401, in full.
    let (ok, out, err) = wasmgate(&[
        "plugin",
        "run",
        art::AUTH_KEYS,
        "--request",
        &req,
        "--config",
        &cfg,
        "--repeat",
        "3",
        "-H",
        "Authorization: Bearer sk-nope",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("decision: respond 401"), "{out}");
    assert!(out.contains("\"code\":\"invalid_api_key\""), "{out}");

    // A bare OpenAI body works too; quotas carry over between calls, so decisions change.
    let body = write(dir.path(), "body.json", r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
    let rl = write(dir.path(), "rl.json", r#"{"key":"global","requests":{"limit":4,"window-ms":60000}}"#);
    let (ok, out, err) =
        wasmgate(&["plugin", "run", art::RATE_LIMIT, "--request", &body, "--config", &rl, "--repeat", "10"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("decision: mutate") && out.contains("response header x-ratelimit-remaining-requests: 3"),
        "{out}"
    );
    assert!(out.contains("decisions over 10 calls: ") && out.contains("respond 429 ×6"), "{out}");

    // A trapping plugin: the failure is shown and the exit status says so.
    let (ok, out, err) = wasmgate(&["plugin", "run", art::TRAP, "--request", &req, "--repeat", "2"]);
    assert!(!ok && out.contains("FAILED: trap") && err.contains("2 of 2 calls failed"), "{out}\n{err}");

    // A body the gateway itself would refuse never reaches the plugin.
    let bad = write(dir.path(), "bad.json", r#"{"model":"m","messages":"hi"}"#);
    let (ok, _, err) = wasmgate(&["plugin", "run", art::REWRITE, "--request", &bad]);
    assert!(!ok && err.contains("the gateway would refuse this body") && err.contains("messages"), "{err}");
}

/// The wasmgate checkout this test was built from.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().canonicalize().unwrap()
}

/// A temporary directory outside the checkout (where an installed `wasmgate` would be used).
fn outside_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("wasmgate-plugin-new-").tempdir_in(std::env::temp_dir()).unwrap();
    assert!(!dir.path().canonicalize().unwrap().starts_with(checkout()), "TMPDIR is inside the checkout");
    dir
}

/// What `git status` shows for the checkout, ignored files of the SDK and WIT included (a
/// `__pycache__` there would make the next `cargo build` rerun build.rs). `None` outside git.
fn checkout_status() -> Option<String> {
    let out = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(checkout())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let ignored = Command::new("git")
        .args(["status", "--porcelain", "--ignored", "--untracked-files=all", "--", "sdk", "wit", "plugins"])
        .current_dir(checkout())
        .output()
        .ok()?;
    Some(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&ignored.stdout)))
}

/// `wasmgate plugin new NAME` run in `dir` (no `--dir`); checks what it wrote: a README with
/// no placeholder left, no file that names the checkout. Returns the project directory.
fn scaffold(dir: &Path, name: &str, kind: &str, lang: &str) -> PathBuf {
    let out = Command::new(BIN)
        .args(["plugin", "new", name, "--kind", kind, "--lang", lang])
        .current_dir(dir)
        .env("WASMGATE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{lang} {kind}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote"));
    let project = dir.join(name);
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(!readme.contains("{{"), "unrendered placeholder in README:\n{readme}");
    let raw = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_str().unwrap().to_string();
    let needles = [checkout().to_str().unwrap().to_string(), raw];
    let mut files = 0;
    for file in walk(&project) {
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in &needles {
            assert!(!text.contains(needle.as_str()), "{} names the checkout ({needle})", file.display());
        }
        files += 1;
    }
    assert!(files > 5, "{lang} {kind}: only {files} files");
    project
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// The workspace's lock file, so generated projects build offline with the versions CI has.
fn seed_lock(project: &Path) {
    std::fs::copy(checkout().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
}

#[test]
fn plugin_new_rust_projects_build_and_run_as_written() {
    let before = checkout_status();
    let dir = outside_dir();
    // One target dir for the three projects (same registry deps), kept between runs under
    // target/; the projects' own packages (new paths each run) are cleaned out at the end.
    let target = checkout().join("target/plugin-new-test");
    let target = target.to_str().unwrap();
    for (kind, expect) in [
        ("auth", "decision: allow: subject \"alice\""),
        ("rewrite", "set upstream header x-team: research"),
        ("rate-limit", "response header x-ratelimit-remaining-requests: 99"),
    ] {
        let name = format!("my-{kind}");
        let project = scaffold(dir.path(), &name, kind, "rust");
        for f in ["Cargo.toml", "src/lib.rs", "README.md", "request.json", "config.json", ".gitignore"] {
            assert!(project.join(f).is_file(), "{kind}: no {f}");
        }
        // The SDK is vendored beside it, with its WIT, as a crate of its own.
        for f in ["wasmgate-sdk/Cargo.toml", "wasmgate-sdk/src/lib.rs", "wasmgate-sdk/wit/policy.wit"] {
            assert!(project.join(f).is_file(), "{kind}: no {f}");
        }
        let sdk_manifest = std::fs::read_to_string(project.join("wasmgate-sdk/Cargo.toml")).unwrap();
        assert!(!sdk_manifest.contains("workspace = true"), "{sdk_manifest}");
        seed_lock(&project);
        let cargo = |args: &[&str]| {
            let out = Command::new(env!("CARGO"))
                .args(args)
                .args(["--offline", "--quiet"])
                .current_dir(&project)
                .env("CARGO_TARGET_DIR", target)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .unwrap();
            assert!(out.status.success(), "{kind}: cargo {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
        };
        cargo(&["build", "--release", "--target", "wasm32-wasip2"]);
        cargo(&["test"]);
        let wasm = format!("{target}/wasm32-wasip2/release/my_{}.wasm", kind.replace('-', "_"));
        let cfg = project.join("config.json");
        let (ok, out, err) = wasmgate(&["plugin", "check", &wasm, "--config", cfg.to_str().unwrap()]);
        assert!(ok && out.contains(&format!("world:    wasmgate:policy/{kind}")), "{kind}: {out}\n{err}");
        let req = project.join("request.json");
        let (ok, out, err) = wasmgate(&[
            "plugin",
            "run",
            &wasm,
            "--request",
            req.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--repeat",
            "50",
        ]);
        assert!(ok && out.contains(expect), "{kind}: {out}\n{err}");
        // The shared target dir keeps the registry crates; this run's path packages (new
        // paths every run) go, so it does not grow.
        cargo(&["clean", "-p", &name, "-p", "wasmgate-sdk"]);
        cargo(&["clean", "-p", &name, "-p", "wasmgate-sdk", "--release", "--target", "wasm32-wasip2"]);
    }

    // Names that would not make a crate, and an existing directory, are refused.
    let (ok, _, err) = wasmgate(&["plugin", "new", "My Plugin", "--kind", "auth"]);
    assert!(!ok && err.contains("lower-case letters"), "{err}");
    let (ok, _, err) =
        wasmgate(&["plugin", "new", "again", "--kind", "auth", "--dir", dir.path().join("my-auth").to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "{err}");

    // `--wasmgate-dir` copies the SDK from a checkout's working tree instead (still no path of it).
    let co = checkout();
    let project = dir.path().join("from-checkout");
    let (ok, _, err) = wasmgate(&[
        "plugin",
        "new",
        "from-checkout",
        "--kind",
        "auth",
        "--lang",
        "rust",
        "--dir",
        project.to_str().unwrap(),
        "--wasmgate-dir",
        co.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let lib = std::fs::read_to_string(project.join("wasmgate-sdk/src/lib.rs")).unwrap();
    assert_eq!(lib, std::fs::read_to_string(co.join("sdk/src/lib.rs")).unwrap());
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains(co.to_str().unwrap()), "{manifest}");
    let (ok, _, err) = wasmgate(&[
        "plugin",
        "new",
        "nope",
        "--kind",
        "auth",
        "--dir",
        dir.path().join("nope").to_str().unwrap(),
        "--wasmgate-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("is not a wasmgate checkout"), "{err}");

    assert_eq!(checkout_status(), before, "the test wrote into the checkout");
}

/// The toolchains `plugins/polyglot-tools.sh` installs: what generated projects' build.sh
/// finds through `$WASMGATE_POLYGLOT_TOOLS` (as host/build.rs does).
fn polyglot_tools() -> PathBuf {
    let tools = std::env::var_os("WASMGATE_POLYGLOT_TOOLS")
        .map_or_else(|| checkout().join("target/polyglot-tools"), PathBuf::from);
    let ok = tools.join("venv/bin/componentize-py").is_file()
        && tools.join("node/node_modules/@bytecodealliance/componentize-js").is_dir();
    assert!(ok, "the Python/JS plugin toolchains are missing: run plugins/polyglot-tools.sh");
    tools
}

/// Runs a shell command in `dir` with `$WASMGATE_POLYGLOT_TOOLS`; panics with its output when
/// it fails.
fn sh(dir: &Path, tools: &Path, cmd: &str) {
    let out =
        Command::new("sh").arg("-c").arg(cmd).current_dir(dir).env("WASMGATE_POLYGLOT_TOOLS", tools).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} in {}:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plugin_new_python_and_js_projects_build_test_and_run_as_written() {
    let tools = polyglot_tools();
    let before = checkout_status();
    let dir = outside_dir();
    for lang in ["python", "js"] {
        for kind in ["auth", "rewrite", "rate-limit"] {
            let name = format!("my-{kind}-{lang}");
            let project = scaffold(dir.path(), &name, kind, lang);
            // The project carries the contract and the SDK.
            let sdk = if lang == "python" { "wasmgate_sdk/__init__.py" } else { "sdk/index.js" };
            for f in ["wit/policy.wit", sdk, "build.sh"] {
                assert!(project.join(f).is_file(), "{lang} {kind}: no {f}");
            }
            // The native tests the README names, then the component.
            let test = if lang == "python" { "python3 -m unittest discover -s tests" } else { "node --test" };
            let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
            assert!(readme.contains(test), "{readme}");
            sh(&project, &tools, test);
            sh(&project, &tools, "./build.sh");
            let wasm = project.join(format!("my_{}_{lang}.wasm", kind.replace('-', "_")));
            assert!(wasm.is_file(), "{lang} {kind}: no {}", wasm.display());

            // The gateway's view of it (compiling a 12-18 MB component: two per language).
            let expect = match (lang, kind) {
                ("python", "auth") => "decision: allow: subject \"alice\"",
                ("js", "rewrite") => "set upstream header x-team: research",
                (_, "rate-limit") => "response header x-ratelimit-remaining-requests: 99",
                _ => continue,
            };
            let (ok, out, err) = wasmgate(&[
                "plugin",
                "run",
                wasm.to_str().unwrap(),
                "--request",
                project.join("request.json").to_str().unwrap(),
                "--config",
                project.join("config.json").to_str().unwrap(),
                "--repeat",
                "100",
            ]);
            assert!(ok && out.contains(expect), "{lang} {kind}: {out}\n{err}");
            assert!(out.contains(&format!("wasmgate:policy/{kind}")), "{out}");
        }
    }
    // componentize-py wrote its `__pycache__` into the projects, not into the checkout's SDK.
    assert_eq!(checkout_status(), before, "the test wrote into the checkout");
}
