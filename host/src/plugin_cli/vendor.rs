//! The Rust SDK as a crate of its own inside a project (`<project>/wasmgate-sdk/`): its
//! manifest made standalone (the `workspace = true` keys it inherits from wasmgate's workspace
//! resolved to literal values) and its WIT beside it.

use std::borrow::Cow;

use toml::{Table, Value};

use super::embedded::{self, Source};
use super::error::PluginToolError;

/// Directory of the vendored SDK inside a Rust project.
pub const SDK_DIR: &str = "wasmgate-sdk";

/// What the SDK's `wit_bindgen::generate!` calls read in the repository, and in the vendored
/// crate, whose WIT sits in its own directory (so it can be moved or shared as a whole).
const WIT_PATH_IN_REPO: &str = r#"path: "../wit""#;
const WIT_PATH_VENDORED: &str = r#"path: "wit""#;

/// The files of `<project>/wasmgate-sdk/`, as `(path in the project, text)`.
pub fn rust_sdk(source: &Source) -> Result<Vec<(String, Cow<'static, str>)>, PluginToolError> {
    let mut files = Vec::new();
    for (path, text) in source.copy(embedded::RUST_SDK, "sdk", SDK_DIR)? {
        let text = if path.ends_with("/Cargo.toml") {
            let workspace = source.read(&embedded::WORKSPACE_MANIFEST)?;
            Cow::Owned(standalone_manifest(&text, &workspace)?)
        } else if text.contains(WIT_PATH_IN_REPO) {
            Cow::Owned(text.replace(WIT_PATH_IN_REPO, WIT_PATH_VENDORED))
        } else {
            text
        };
        files.push((path, text));
    }
    if !files.iter().any(|(_, text)| text.contains(WIT_PATH_VENDORED)) {
        // The SDK reads its WIT some other way now: the copy would not build.
        return Err(PluginToolError::Vendor(format!(
            "no `{WIT_PATH_IN_REPO}` in sdk/src to point at its copy of the WIT"
        )));
    }
    files.extend(source.copy(embedded::WIT, "wit", &format!("{SDK_DIR}/wit"))?);
    Ok(files)
}

/// `sdk/Cargo.toml` with every `workspace = true` replaced by what wasmgate's workspace says.
fn standalone_manifest(sdk: &str, workspace: &str) -> Result<String, PluginToolError> {
    let bad = |what: String| PluginToolError::Vendor(what);
    let mut manifest: Table = toml::from_str(sdk).map_err(|e| bad(format!("sdk/Cargo.toml: {e}")))?;
    let root: Table = toml::from_str(workspace).map_err(|e| bad(format!("Cargo.toml: {e}")))?;
    let ws =
        root.get("workspace").and_then(Value::as_table).ok_or_else(|| bad("Cargo.toml has no [workspace]".into()))?;
    let section = |name: &str| ws.get(name).and_then(Value::as_table);

    if let Some(Value::Table(package)) = manifest.get_mut("package") {
        for (key, value) in package.iter_mut() {
            if inherits(value) {
                *value = section("package").and_then(|p| p.get(key)).cloned().ok_or_else(|| {
                    bad(format!("package.{key} inherits a [workspace.package] key that is not there"))
                })?;
            }
        }
    }
    for deps in ["dependencies", "dev-dependencies", "build-dependencies"] {
        let Some(Value::Table(table)) = manifest.get_mut(deps) else { continue };
        for (name, dep) in table.iter_mut() {
            if inherits(dep) {
                *dep = inherited_dependency(name, dep, section("dependencies")).map_err(bad)?;
            }
        }
    }
    if manifest.get("lints").is_some_and(inherits) {
        let lints = section("lints")
            .cloned()
            .ok_or_else(|| bad("lints inherit a [workspace.lints] that is not there".into()))?;
        manifest.insert("lints".into(), Value::Table(lints));
    }
    if has_workspace_key(&Value::Table(manifest.clone())) {
        return Err(bad("a `workspace` key is left in sdk/Cargo.toml".into()));
    }
    // Sections in the order people write them (a `Table` would sort them by name).
    let mut text = "# wasmgate's Rust SDK, vendored by `wasmgate plugin new` (inherited keys resolved).\n".to_string();
    let order = ["package", "lib", "features", "dependencies", "build-dependencies", "dev-dependencies", "lints"];
    let mut sections: Vec<(String, Value)> =
        order.iter().filter_map(|k| manifest.remove(*k).map(|v| (k.to_string(), v))).collect();
    sections.extend(manifest);
    for (key, value) in sections {
        let one = Table::from_iter([(key, value)]);
        text.push('\n');
        text.push_str(&toml::to_string(&one).map_err(|e| bad(e.to_string()))?);
    }
    Ok(text)
}

/// Whether any table in `value` still has a `workspace` key (inherits, or declares one).
fn has_workspace_key(value: &Value) -> bool {
    match value {
        Value::Table(t) => t.iter().any(|(k, v)| k == "workspace" || has_workspace_key(v)),
        Value::Array(items) => items.iter().any(has_workspace_key),
        _ => false,
    }
}

/// `{ workspace = true, ... }`.
fn inherits(value: &Value) -> bool {
    value.get("workspace").and_then(Value::as_bool) == Some(true)
}

/// A `name = { workspace = true, features = [...], optional = ... }` dependency as the workspace
/// declares it, with the member's extra features and `optional` added (cargo's own rules).
fn inherited_dependency(name: &str, dep: &Value, declared: Option<&Table>) -> Result<Value, String> {
    let base =
        declared.and_then(|d| d.get(name)).ok_or_else(|| format!("{name} is not in [workspace.dependencies]"))?;
    let mut out = match base {
        Value::String(version) => Table::from_iter([("version".to_string(), Value::String(version.clone()))]),
        Value::Table(t) => t.clone(),
        other => return Err(format!("[workspace.dependencies] {name} = {other}: not a dependency")),
    };
    if out.contains_key("path") || out.contains_key("git") {
        // Would point back into the wasmgate repository (or fetch it): not standalone.
        return Err(format!("{name} is a path or git dependency of the workspace"));
    }
    if let Some(Value::Array(extra)) = dep.get("features") {
        let features = out.entry("features").or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(features) = features {
            for f in extra {
                if !features.contains(f) {
                    features.push(f.clone());
                }
            }
        }
    }
    if let Some(optional) = dep.get("optional") {
        out.insert("optional".into(), optional.clone());
    }
    Ok(Value::Table(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_vendored_manifest_is_standalone() {
        let files = rust_sdk(&Source::Embedded).unwrap();
        let (_, manifest) = files.iter().find(|(p, _)| p == "wasmgate-sdk/Cargo.toml").unwrap();
        assert!(!manifest.lines().any(|l| !l.starts_with('#') && l.contains("workspace")), "{manifest}");
        assert!(manifest.find("[package]") < manifest.find("[dependencies"), "{manifest}");
        let parsed: Table = toml::from_str(manifest).unwrap();
        assert_eq!(parsed["package"]["name"].as_str(), Some("wasmgate-sdk"));
        assert_eq!(parsed["package"]["edition"].as_str(), Some("2024"));
        let bindgen = &parsed["dependencies"]["wit-bindgen"];
        assert!(bindgen["version"].as_str().is_some() && bindgen["features"].as_array().is_some(), "{bindgen}");
        assert_eq!(parsed["lints"]["clippy"]["unwrap_used"].as_str(), Some("deny"));
        for world in ["auth", "rewrite", "rate-limit"] {
            assert!(parsed["features"].get(world).is_some(), "{world}");
        }
    }

    #[test]
    fn the_vendored_sdk_reads_its_own_wit() {
        let files = rust_sdk(&Source::Embedded).unwrap();
        assert!(files.iter().any(|(p, _)| p == "wasmgate-sdk/wit/policy.wit"));
        let (_, bindings) = files.iter().find(|(p, _)| p == "wasmgate-sdk/src/bindings.rs").unwrap();
        assert!(!bindings.contains("../wit") && bindings.contains(WIT_PATH_VENDORED), "{bindings}");
    }

    #[test]
    fn inherited_dependencies_keep_their_extra_features() {
        let ws: Table = toml::from_str(
            r#"a = { version = "1", features = ["x"] }
b = "2"
c = { path = "c" }"#,
        )
        .unwrap();
        let dep: Value = toml::from_str::<Table>(r#"d = { workspace = true, features = ["y", "x"], optional = true }"#)
            .unwrap()["d"]
            .clone();
        let a = inherited_dependency("a", &dep, Some(&ws)).unwrap();
        assert_eq!(a["version"].as_str(), Some("1"));
        assert_eq!(a["features"].as_array().unwrap(), &["x", "y"].map(|f| Value::String(f.into())));
        assert_eq!(a["optional"].as_bool(), Some(true));
        assert_eq!(inherited_dependency("b", &dep, Some(&ws)).unwrap()["version"].as_str(), Some("2"));
        assert!(inherited_dependency("c", &dep, Some(&ws)).is_err());
        assert!(inherited_dependency("zz", &dep, Some(&ws)).is_err());
    }
}
