//! Loading chains of plugins, for the first snapshot and for every reload: unchanged plugins
//! (same settings, same sha256) are reused from the previous chain, changed ones are loaded.
//!
//! A reload with thousands of tenants names the same few plugin files thousands of times:
//! [`Sources`] reads and hashes each file once per build, and [`PluginFiles`] (kept from one
//! snapshot to the next) skips even that for a file whose size, mtime and inode did not change.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::plugin_spec;
use crate::config::{FileStamp, PluginConfig, PluginLocation};
use crate::policy::{Chain, Plugin, PluginSource, PluginSpec, PolicyEngine};

/// A plugin file's bytes and sha256 (hex).
#[derive(Clone)]
pub struct SourceBytes {
    pub bytes: Arc<[u8]>,
    pub sha256: Arc<str>,
}

/// Plugin files read so far, by path (shared by a snapshot and the ones built from it).
#[derive(Default)]
pub struct PluginFiles {
    known: Mutex<HashMap<PathBuf, (FileStamp, SourceBytes)>>,
}

impl PluginFiles {
    /// The file's bytes and hash; read only when its stamp differs from the known one.
    async fn read(&self, path: &PathBuf) -> Result<SourceBytes, String> {
        let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let stamp = FileStamp::of(&tokio::fs::metadata(path).await.map_err(cannot)?);
        if let Some((s, src)) = self.known.lock().ok().and_then(|m| m.get(path).cloned())
            && s == stamp
        {
            return Ok(src);
        }
        let bytes = tokio::fs::read(path).await.map_err(cannot)?;
        // The stamp of what was read (a write between the two calls gives a new stamp later).
        let stamp = tokio::fs::metadata(path).await.map(|m| FileStamp::of(&m)).unwrap_or(stamp);
        let src = SourceBytes { sha256: hex::encode(Sha256::digest(&bytes)).into(), bytes: bytes.into() };
        if let Ok(mut m) = self.known.lock() {
            m.insert(path.clone(), (stamp, src.clone()));
        }
        Ok(src)
    }

    /// Forgets files no config names any more.
    pub fn retain(&self, keep: impl Fn(&PathBuf) -> bool) {
        if let Ok(mut m) = self.known.lock() {
            m.retain(|p, _| keep(p));
        }
    }
}

/// The plugin sources of one build: each file and builtin is read at most once.
pub struct Sources<'a> {
    files: &'a PluginFiles,
    read: HashMap<PluginLocation, Result<SourceBytes, String>>,
}

impl<'a> Sources<'a> {
    pub fn new(files: &'a PluginFiles) -> Self {
        Sources { files, read: HashMap::new() }
    }

    pub async fn get(&mut self, loc: &PluginLocation) -> Result<SourceBytes, String> {
        if let Some(r) = self.read.get(loc) {
            return r.clone();
        }
        let r = match loc {
            PluginLocation::File(path) => self.files.read(path).await,
            PluginLocation::Builtin(name) => crate::builtin_plugins::shared(name)
                .map(|b| SourceBytes { sha256: hex::encode(Sha256::digest(&b)).into(), bytes: b })
                .ok_or_else(|| format!("no builtin plugin `{name}`")),
        };
        self.read.insert(loc.clone(), r.clone());
        r
    }

    /// Whether `chain` is what `specs` would load now: same ids and settings, same file content.
    pub async fn unchanged(&mut self, chain: &Chain, specs: &[PluginConfig]) -> bool {
        if chain.plugins().len() != specs.len() {
            return false;
        }
        for (p, pc) in chain.plugins().iter().zip(specs) {
            match self.get(&pc.location).await {
                Ok(src) if *src.sha256 == *p.sha256() && p.id() == pc.id => {}
                _ => return false,
            }
        }
        true
    }
}

/// Loads one chain for a new snapshot, reusing the plugins of `previous` that did not change.
/// A plugin that fails to load keeps its previous version (its error goes to `errors`); one
/// with no previous version fails the whole reload. Returns the chain and whether it changed.
pub async fn load_chain(
    engine: &PolicyEngine,
    sources: &mut Sources<'_>,
    specs: &[PluginConfig],
    namespace: &str,
    previous: &Chain,
    errors: &mut BTreeMap<String, String>,
    loaded: &mut Vec<String>,
) -> Result<(Chain, bool), String> {
    let mut plugins: Vec<Arc<Plugin>> = Vec::with_capacity(specs.len());
    let mut changed = previous.plugins().len() != specs.len();
    for pc in specs {
        let id = &pc.id;
        let spec = plugin_spec(pc, namespace);
        let prev = previous.plugins().iter().find(|p| p.id() == id).cloned();
        let src = match sources.get(&pc.location).await {
            Ok(b) => b,
            Err(e) => match prev {
                Some(p) => {
                    errors.insert(id.clone(), format!("plugin `{id}`: {e}; keeping the version {}", sha_short(&p)));
                    plugins.push(p);
                    continue;
                }
                None => return Err(format!("plugin `{id}`: {e}")),
            },
        };
        if let Some(p) = prev.as_ref().filter(|p| *p.sha256() == *src.sha256 && p.same_settings(&spec)) {
            plugins.push(p.clone());
            continue;
        }
        changed = true;
        let name = spec.source.describe();
        let spec = PluginSpec { source: PluginSource::Hashed { name, bytes: src.bytes, sha256: src.sha256 }, ..spec };
        match engine.load(spec).await {
            Ok(p) => {
                metrics::counter!("wasmgate_plugin_reloads_total", "plugin" => id.clone(), "result" => "ok")
                    .increment(1);
                tracing::info!(plugin = %id, sha256 = %p.sha256(), "plugin loaded");
                loaded.push(id.clone());
                plugins.push(p);
            }
            Err(e) => {
                metrics::counter!("wasmgate_plugin_reloads_total", "plugin" => id.clone(), "result" => "error")
                    .increment(1);
                match prev {
                    Some(p) => {
                        tracing::error!(plugin = %id, error = %e, "plugin reload failed; the previous version keeps serving");
                        errors.insert(id.clone(), format!("{e} (keeping sha256 {})", sha_short(&p)));
                        plugins.push(p);
                    }
                    None => return Err(e.to_string()),
                }
            }
        }
    }
    Ok((Chain::new(plugins), changed))
}

fn sha_short(p: &Plugin) -> &str {
    p.sha256().get(..12).unwrap_or(p.sha256())
}
