//! `wasmgate plugin new`: a plugin project that builds as it is, with a README, a config and
//! a test request, in Rust, Python or JavaScript.
//!
//! A project carries its own copy of the SDK and the WIT, taken from this binary (see
//! [`embedded`](super::embedded)) or from `--wasmgate-dir`: it builds offline, anywhere, against
//! the exact contract the gateway speaks, and no file in it names a path of the machine that
//! built `wasmgate`. Python and JS projects find their toolchain on `PATH` or under
//! `$WASMGATE_POLYGLOT_TOOLS` (the layout `plugins/polyglot-tools.sh` installs).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::embedded::{self, Source};
use super::error::PluginToolError;
use super::vendor;
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
const JS_PACKAGE: &str = include_str!("../../templates/js/package.json");

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

/// Files of one project.
struct Project {
    /// Templates: (relative path, contents with `{{placeholders}}`).
    files: Vec<(&'static str, String)>,
    /// The SDK, the WIT and helpers, written as they are (their text is code, not a template).
    copied: Vec<(String, Cow<'static, str>)>,
    /// The WIT file, as the README names it.
    contract: &'static str,
    /// What `.gitignore` lists: the build's output.
    ignored: &'static str,
    build: String,
    test: String,
    artifact: String,
    body: bool,
    /// Extra placeholders.
    vars: Vec<(&'static str, String)>,
}

fn rust_project(name: &str, kind: PluginKind, source: &Source) -> Result<Project, PluginToolError> {
    let lib = match kind {
        PluginKind::Auth => RUST_AUTH,
        PluginKind::Rewrite => RUST_REWRITE,
        PluginKind::RateLimit => RUST_RATE_LIMIT,
    };
    Ok(Project {
        files: vec![("Cargo.toml", RUST_CARGO.to_string()), ("src/lib.rs", lib.to_string())],
        copied: vendor::rust_sdk(source)?,
        contract: "wasmgate-sdk/wit/policy.wit",
        ignored: "target/",
        build: "rustup target add wasm32-wasip2   # once\ncargo build --release --target wasm32-wasip2".into(),
        test: "cargo test".into(),
        artifact: format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_")),
        body: false,
        vars: vec![
            ("sdk_dir", vendor::SDK_DIR.to_string()),
            (
                "sdk_note",
                format!("`{}/` is wasmgate's Rust SDK (with its copy of the WIT in `{0}/wit/`)", vendor::SDK_DIR),
            ),
        ],
    })
}

fn python_project(name: &str, kind: PluginKind, source: &Source) -> Result<Project, PluginToolError> {
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
    let mut copied = source.copy(embedded::WIT, "wit", "wit")?;
    copied.extend(source.copy(embedded::PYTHON_SDK, "sdk/python", "")?);
    Ok(Project {
        files: vec![
            ("app.py", PY_APP.to_string()),
            ("plugin.py", logic.to_string()),
            ("tests/test_plugin.py", test.to_string()),
            ("build.sh", PY_BUILD.to_string()),
        ],
        copied,
        contract: "wit/policy.wit",
        ignored: "__pycache__/\n*.wasm",
        build: "./build.sh   # componentize-py, from PATH or $WASMGATE_POLYGLOT_TOOLS/venv/bin".into(),
        test: "python3 -m unittest discover -s tests".into(),
        artifact: format!("{}.wasm", name.replace('-', "_")),
        body: false,
        vars: vec![
            ("py_export", export.to_string()),
            ("sdk_note", "`wasmgate_sdk/` is wasmgate's Python SDK and `wit/` the contract".to_string()),
            ("py_tools", embedded::PYTHON_TOOLS_PIN.trim().to_string()),
        ],
    })
}

fn js_project(name: &str, kind: PluginKind, source: &Source) -> Result<Project, PluginToolError> {
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
    // carries its copy of the (dependency-free) SDK, and of the WIT and the build helper.
    let mut copied = source.copy(embedded::WIT, "wit", "wit")?;
    copied.extend(source.copy(embedded::JS_SDK, "sdk/js", "sdk")?);
    copied.extend(source.copy(&[embedded::JS_BUILD_HELPER], "plugins/polyglot-tools", "")?);
    let rate = kind == PluginKind::RateLimit;
    Ok(Project {
        files: vec![
            ("logic.js", logic.to_string()),
            ("plugin.js", JS_ENTRY.to_string()),
            ("test/logic.test.js", test.to_string()),
            ("build.sh", JS_BUILD.to_string()),
            ("package.json", JS_PACKAGE.to_string()),
        ],
        copied,
        contract: "wit/policy.wit",
        ignored: "node_modules/\n*.wasm",
        build: "./build.sh   # componentize-js, from PATH, node_modules (npm install) or $WASMGATE_POLYGLOT_TOOLS/node"
            .into(),
        test: "node --test".into(),
        artifact: format!("{}.wasm", name.replace('-', "_")),
        body: false,
        vars: vec![
            (
                "sdk_note",
                "`sdk/` is wasmgate's JavaScript SDK, `wit/` the contract and `build-js.mjs` its build helper"
                    .to_string(),
            ),
            ("js_tools", js_tool_pins()?),
            ("js_sdk", "./sdk/index.js".to_string()),
            ("js_sdk_from_test", "../sdk/index.js".to_string()),
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
) -> Result<PathBuf, PluginToolError> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(PluginToolError::BadName(name.to_string()));
    }
    let source = match wasmgate {
        Some(dir) => Source::checkout(dir)?,
        None => Source::Embedded,
    };
    let out = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if out.exists() && std::fs::read_dir(&out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(PluginToolError::NotEmpty(out));
    }
    let project = match lang {
        Lang::Rust => rust_project(name, kind, &source)?,
        Lang::Python => python_project(name, kind, &source)?,
        Lang::Js => js_project(name, kind, &source)?,
    };
    let config = config_json(kind);
    // The templates' configs are JSON objects (checked by a unit test): this cannot fail.
    let config_toml = serde_json::from_str(config).map_or_else(|_| "{}".to_string(), |v| json_to_toml_inline(&v));
    let mut vars: Vec<(&str, String)> = vec![
        ("name", name.to_string()),
        ("id", name.to_string()),
        ("kind", kind.world().to_string()),
        ("lang_name", lang_name(lang).to_string()),
        ("summary", summary(kind).to_string()),
        ("contract", project.contract.to_string()),
        ("version", env!("CARGO_PKG_VERSION").to_string()),
        ("build", project.build.clone()),
        ("test", project.test.clone()),
        ("artifact", project.artifact.clone()),
        ("body_line", if project.body { "body = true\n".to_string() } else { String::new() }),
        ("config_toml", config_toml),
        ("ignored", project.ignored.to_string()),
    ];
    vars.extend(project.vars);
    let mut files = project.files;
    files.push(("README.md", README.to_string()));
    files.push(("request.json", REQUEST.to_string()));
    files.push(("config.json", config.to_string()));
    files.push((".gitignore", GITIGNORE.to_string()));
    let rendered = files.into_iter().map(|(rel, text)| (rel.to_string(), Cow::Owned(render(&text, &vars))));
    for (rel, text) in rendered.chain(project.copied) {
        write_file(&out, &rel, &text)?;
    }
    Ok(out)
}

fn write_file(out: &Path, rel: &str, text: &str) -> Result<(), PluginToolError> {
    let path = out.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(PluginToolError::io("create", parent))?;
    }
    std::fs::write(&path, text).map_err(PluginToolError::io("write", &path))?;
    #[cfg(unix)]
    if rel.ends_with(".sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(PluginToolError::io("make executable", &path))?;
    }
    Ok(())
}

/// The JS toolchain's pins (`npm install` arguments), from wasmgate's own pin file.
fn js_tool_pins() -> Result<String, PluginToolError> {
    let bad = |e: String| PluginToolError::Vendor(format!("plugins/polyglot-tools/package.json: {e}"));
    let pins: serde_json::Value = serde_json::from_str(embedded::JS_TOOLS_PIN).map_err(|e| bad(e.to_string()))?;
    let deps =
        pins.get("dependencies").and_then(serde_json::Value::as_object).ok_or_else(|| bad("no dependencies".into()))?;
    let mut out = Vec::new();
    for (name, version) in deps {
        let version = version.as_str().ok_or_else(|| bad(format!("{name}: not a version")))?;
        out.push(format!("\"{name}\": \"{version}\""));
    }
    Ok(out.join(",\n    "))
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    }
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
    fn starter_configs_are_json_objects() {
        for kind in [PluginKind::Auth, PluginKind::Rewrite, PluginKind::RateLimit] {
            let v: serde_json::Value = serde_json::from_str(config_json(kind)).unwrap();
            assert!(v.is_object(), "{kind:?}");
        }
    }

    #[test]
    fn json_config_becomes_an_inline_toml_table() {
        let v = serde_json::from_str(r#"{"keys":{"sk-example-1":"alice"},"n":3,"on":true}"#).unwrap();
        assert_eq!(json_to_toml_inline(&v), r#"{ keys = { sk-example-1 = "alice" }, n = 3, on = true }"#);
        let parsed: toml::Table = toml::from_str(&format!("config = {}", json_to_toml_inline(&v))).unwrap();
        assert_eq!(parsed["config"]["keys"]["sk-example-1"].as_str(), Some("alice"));
    }
}
