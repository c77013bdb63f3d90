//! Loading chains of plugins, for the first snapshot and for every reload: unchanged plugins
//! (same settings, same sha256) are reused from the previous chain, changed ones are loaded.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::plugin_spec;
use crate::config::{PluginConfig, PluginLocation};
use crate::policy::{Chain, Plugin, PluginSource, PluginSpec, PolicyEngine};

/// Loads one chain for a new snapshot, reusing the plugins of `previous` that did not change.
/// A plugin that fails to load keeps its previous version (its error goes to `errors`); one
/// with no previous version fails the whole reload. Returns the chain and whether it changed.
pub async fn load_chain(
    engine: &PolicyEngine,
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
        let bytes = match read_source(&pc.location).await {
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
        let sha = hex::encode(Sha256::digest(&bytes));
        if let Some(p) = prev.as_ref().filter(|p| p.sha256() == sha && p.same_settings(&spec)) {
            plugins.push(p.clone());
            continue;
        }
        changed = true;
        let name = spec.source.describe();
        let spec = PluginSpec { source: PluginSource::Bytes { name, bytes: bytes.into() }, ..spec };
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

async fn read_source(loc: &PluginLocation) -> Result<Vec<u8>, String> {
    match loc {
        PluginLocation::File(path) => {
            tokio::fs::read(path).await.map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        PluginLocation::Builtin(name) => {
            crate::builtin_plugins::get(name).map(<[u8]>::to_vec).ok_or_else(|| format!("no builtin plugin `{name}`"))
        }
    }
}
