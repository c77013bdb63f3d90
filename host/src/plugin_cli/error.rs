//! Errors of `wasmgate plugin new`: what went wrong and on which file, for the person at the
//! terminal (the CLI prints them as they are; nothing here reaches a gateway client).

use std::path::PathBuf;

/// A plugin project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PluginToolError {
    /// The name would not make a crate, a Python module or an npm package.
    #[error(
        "plugin name {0:?}: use lower-case letters, digits and dashes, starting with a letter (e.g. `team-header`)"
    )]
    BadName(String),
    /// `--dir` (or `./NAME`) already holds something; `plugin new` never overwrites.
    #[error("{} already exists and is not empty", .0.display())]
    NotEmpty(PathBuf),
    /// `--wasmgate-dir` is not a checkout with the files a project needs.
    #[error("{} is not a wasmgate checkout ({why}); pass --wasmgate-dir DIR or leave it out to use the copy built into wasmgate", dir.display())]
    NotACheckout { dir: PathBuf, why: String },
    /// Reading a source file or writing a project file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// The SDK's manifest could not be made standalone (a bug in wasmgate, or an SDK checkout
    /// with a manifest this version does not know how to vendor).
    #[error("cannot vendor the Rust SDK: {0}")]
    Vendor(String),
}

impl PluginToolError {
    pub(super) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}

// The CLI's commands report `String` errors; this lets `?` carry ours there unchanged.
impl From<PluginToolError> for String {
    fn from(e: PluginToolError) -> Self {
        e.to_string()
    }
}
