//! `wasmgate plugin new`: a plugin project that builds as it is, with a README, a config and
//! a test request, in Rust, Python or JavaScript.
//!
//! Projects refer to the SDK and the WIT of the wasmgate checkout this binary was built from
//! (or `--wasmgate-dir`), so they build offline against the exact contract the gateway speaks.

use std::path::{Path, PathBuf};

use crate::policy::PluginKind;

/// Languages `plugin new` writes projects in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

const REQUEST: &str = include_str!("../../templates/common/request.json");
const README: &str = include_str!("../../templates/common/README.md");
const GITIGNORE: &str = include_str!("../../templates/common/gitignore");

const RUST_CARGO: &str = include_str!("../../templates/rust/Cargo.toml");
const RUST_AUTH: &str = include_str!("../../templates/rust/auth.rs");
const RUST_REWRITE: &str = include_str!("../../templates/rust/rewrite.rs");
const RUST_RATE_LIMIT: &str = include_str!("../../templates/rust/rate-limit.rs");

const PY_APP: &str = include_str!("../../templates/python/app.py");
const PY_BUILD: &str = include_str!("../../templates/python/build.sh");

const JS_ENTRY: &str = include_str!("../../templates/js/plugin.js");
const JS_BUILD: &str = include_str!("../../templates/js/build.sh");

/// What one starter does, per kind (the same in every language).
fn summary(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Auth => {
            "It allows a request whose bearer key is listed in `keys` (key → subject) and denies any other with an OpenAI-shaped 401."
        }
        PluginKind::Rewrite => {
            "It sets the header `header: value` on the request to the upstream and caps `max_tokens` at `max-tokens-cap`."
        }
        PluginKind::RateLimit => {
            "It admits at most `requests` requests per `window-ms` per caller (the authenticated subject, else the client IP), counted in the gateway's quota store, and answers 429 with `retry-after` and `x-ratelimit-*` headers."
        }
    }
}

fn config_json(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Auth => include_str!("../../templates/common/auth.config.json"),
        PluginKind::Rewrite => include_str!("../../templates/common/rewrite.config.json"),
        PluginKind::RateLimit => include_str!("../../templates/common/rate-limit.config.json"),
    }
}

/// The checkout whose `sdk/` and `wit/` projects use.
fn wasmgate_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    let dir = dir.canonicalize().map_err(|e| {
        format!("cannot find the wasmgate checkout at {} ({e}); pass --wasmgate-dir DIR", dir.display())
    })?;
    if !dir.join("wit/policy.wit").is_file() || !dir.join("sdk").is_dir() {
        return Err(format!(
            "{} is not a wasmgate checkout (no wit/policy.wit and sdk/); pass --wasmgate-dir DIR",
            dir.display()
        ));
    }
    Ok(dir)
}

/// Files of one project: (relative path, contents with `{{placeholders}}`).
struct Project {
    files: Vec<(&'static str, String)>,
    build: String,
    test: String,
    artifact: String,
    body: bool,
    /// Extra placeholders.
    vars: Vec<(&'static str, String)>,
}

fn rust_project(name: &str, kind: PluginKind) -> Project {
    let lib = match kind {
        PluginKind::Auth => RUST_AUTH,
        PluginKind::Rewrite => RUST_REWRITE,
        PluginKind::RateLimit => RUST_RATE_LIMIT,
    };
    Project {
        files: vec![("Cargo.toml", RUST_CARGO.to_string()), ("src/lib.rs", lib.to_string())],
        build: "rustup target add wasm32-wasip2   # once\ncargo build --release --target wasm32-wasip2".into(),
        test: "cargo test".into(),
        artifact: format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_")),
        body: false,
        vars: Vec::new(),
    }
}

fn python_project(name: &str, kind: PluginKind, root: &Path) -> Project {
    let (logic, test, export) = match kind {
        PluginKind::Auth => (
            include_str!("../../templates/python/auth.py"),
            include_str!("../../templates/python/test_auth.py"),
            "export_auth",
        ),
        PluginKind::Rewrite => (
            include_str!("../../templates/python/rewrite.py"),
            include_str!("../../templates/python/test_rewrite.py"),
            "export_rewrite",
        ),
        PluginKind::RateLimit => (
            include_str!("../../templates/python/rate_limit.py"),
            include_str!("../../templates/python/test_rate_limit.py"),
            "export_rate_limit",
        ),
    };
    let sdk = path_text(&root.join("sdk/python"));
    Project {
        files: vec![
            ("app.py", PY_APP.to_string()),
            ("plugin.py", logic.to_string()),
            ("tests/test_plugin.py", test.to_string()),
            ("build.sh", PY_BUILD.to_string()),
        ],
        build: "./build.sh   # componentize-py; the toolchain comes from wasmgate's plugins/polyglot-tools.sh".into(),
        test: format!("PYTHONPATH=.:{sdk} python3 -m unittest discover -s tests"),
        artifact: format!("{}.wasm", name.replace('-', "_")),
        body: false,
        vars: vec![("py_export", export.to_string())],
    }
}

fn js_project(name: &str, kind: PluginKind, root: &Path) -> Result<Project, String> {
    let (logic, test, export, exports) = match kind {
        PluginKind::Auth => (
            include_str!("../../templates/js/auth.js"),
            include_str!("../../templates/js/test-auth.js"),
            "exportAuth",
            "configure, authenticate",
        ),
        PluginKind::Rewrite => (
            include_str!("../../templates/js/rewrite.js"),
            include_str!("../../templates/js/test-rewrite.js"),
            "exportRewrite",
            "configure, rewrite",
        ),
        PluginKind::RateLimit => (
            include_str!("../../templates/js/rate-limit.js"),
            include_str!("../../templates/js/test-rate-limit.js"),
            "exportRateLimit",
            "configure, admit, settle",
        ),
    };
    // componentize-js only sees files below the directory it builds from, so the project
    // carries its copy of the (dependency-free, one-file) SDK.
    let sdk_path = root.join("sdk/js/index.js");
    let sdk = std::fs::read_to_string(&sdk_path).map_err(|e| format!("cannot read {}: {e}", sdk_path.display()))?;
    let rate = kind == PluginKind::RateLimit;
    Ok(Project {
        files: vec![
            ("wasmgate-sdk.js", sdk),
            ("logic.js", logic.to_string()),
            ("plugin.js", JS_ENTRY.to_string()),
            ("test/logic.test.js", test.to_string()),
            ("build.sh", JS_BUILD.to_string()),
        ],
        build: "./build.sh   # componentize-js; the toolchain comes from wasmgate's plugins/polyglot-tools.sh".into(),
        test: "node --test".into(),
        artifact: format!("{}.wasm", name.replace('-', "_")),
        body: false,
        vars: vec![
            ("js_sdk", "./wasmgate-sdk.js".to_string()),
            ("js_sdk_from_test", "../wasmgate-sdk.js".to_string()),
            ("js_export", export.to_string()),
            ("js_exports", exports.to_string()),
            ("js_host_imports", if rate { "log, quotaConsume" } else { "log" }.to_string()),
            ("js_extra_import", if rate { ", useQuota" } else { "" }.to_string()),
            ("js_extra_call", if rate { "\nuseQuota(quotaConsume);" } else { "" }.to_string()),
        ],
    })
}

/// Writes a new plugin project `name` into `dir` (default `./NAME`); returns its directory.
pub fn new_project(
    name: &str,
    kind: PluginKind,
    lang: Lang,
    dir: Option<&Path>,
    wasmgate: Option<&Path>,
) -> Result<PathBuf, String> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(format!(
            "plugin name {name:?}: use lower-case letters, digits and dashes, starting with a letter (e.g. `team-header`)"
        ));
    }
    let root = wasmgate_dir(wasmgate)?;
    let out = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if out.exists() && std::fs::read_dir(&out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(format!("{} already exists and is not empty", out.display()));
    }
    let project = match lang {
        Lang::Rust => rust_project(name, kind),
        Lang::Python => python_project(name, kind, &root),
        Lang::Js => js_project(name, kind, &root)?,
    };
    let config = config_json(kind);
    let config_toml = json_to_toml_inline(&serde_json::from_str(config).map_err(|e| e.to_string())?);
    let mut vars: Vec<(&str, String)> = vec![
        ("name", name.to_string()),
        ("id", name.to_string()),
        ("kind", kind.world().to_string()),
        ("lang_name", lang_name(lang).to_string()),
        ("summary", summary(kind).to_string()),
        ("sdk", path_text(&root.join("sdk"))),
        ("wit", path_text(&root.join("wit"))),
        ("build", project.build.clone()),
        ("test", project.test.clone()),
        ("artifact", project.artifact.clone()),
        ("body_line", if project.body { "body = true\n".to_string() } else { String::new() }),
        ("config_toml", config_toml),
        ("root", path_text(&root)),
    ];
    vars.extend(project.vars);
    let mut files = project.files;
    files.push(("README.md", README.to_string()));
    files.push(("request.json", REQUEST.to_string()));
    files.push(("config.json", config.to_string()));
    files.push((".gitignore", GITIGNORE.to_string()));
    for (rel, text) in files {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, render(&text, &vars)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        #[cfg(unix)]
        if rel.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("cannot make {} executable: {e}", path.display()))?;
        }
    }
    Ok(out)
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    }
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

fn render(text: &str, vars: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

/// A JSON value as a TOML inline value (`{ keys = { "sk-1" = "alice" } }`).
fn json_to_toml_inline(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "\"\"".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml::Value::String(s.clone()).to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(json_to_toml_inline).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let bare = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    let key = if bare { k.clone() } else { toml::Value::String(k.clone()).to_string() };
                    format!("{key} = {}", json_to_toml_inline(v))
                })
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_config_becomes_an_inline_toml_table() {
        let v = serde_json::from_str(r#"{"keys":{"sk-example-1":"alice"},"n":3,"on":true}"#).unwrap();
        assert_eq!(json_to_toml_inline(&v), r#"{ keys = { sk-example-1 = "alice" }, n = 3, on = true }"#);
        let parsed: toml::Table = toml::from_str(&format!("config = {}", json_to_toml_inline(&v))).unwrap();
        assert_eq!(parsed["config"]["keys"]["sk-example-1"].as_str(), Some("alice"));
    }
}
