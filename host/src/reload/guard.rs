//! Reload guards: a new config that validates can still be a mistake that opens the gateway.
//!
//! A file caught halfway through a non-atomic rewrite, or truncated, often parses: its missing
//! tail simply means "no plugins", "no tenants" or "no models". Swapping it in would serve
//! unauthenticated traffic (audit H3: 62 unauthenticated 200s during a 0.6 s pause). So a
//! reload is refused, unless forced, when it
//! - removes every auth plugin from a chain that had one (the global chain, a tenant's chain,
//!   or a tenant with auth that disappears: its hosts would fall through to the global chain);
//! - empties a chain that had plugins;
//! - removes every model.
//!
//! The rules look only at the shape of the change, never at the file's history, so they are
//! the same for a file watch, SIGHUP and `POST /admin/reload`.

use crate::config::{Config, PluginConfig, PluginKindConfig};

/// Why `new` may not replace `old` without `force`; empty when the change is acceptable.
pub fn refusals(old: &Config, new: &Config) -> Vec<String> {
    let mut why = Vec::new();
    let global = |c: &Config| -> Vec<PluginConfig> {
        c.policy.chain.iter().filter_map(|id| c.plugins.get(id).cloned()).collect()
    };
    compare_chain("the global chain (`policy.chain`)", &global(old), Some(&global(new)), &mut why);
    for (id, t) in &old.tenants {
        let label = format!("tenant `{id}`'s chain");
        compare_chain(&label, &t.chain, new.tenants.get(id).map(|n| &n.chain), &mut why);
    }
    if !old.models.is_empty() && new.models.is_empty() {
        why.push(format!("it removes every model (there were {})", old.models.len()));
    }
    why
}

fn auth_ids(chain: &[PluginConfig]) -> Vec<&str> {
    chain.iter().filter(|p| p.kind == PluginKindConfig::Auth).map(|p| p.id.as_str()).collect()
}

/// `new` is None when the tenant is gone.
fn compare_chain(label: &str, old: &[PluginConfig], new: Option<&Vec<PluginConfig>>, why: &mut Vec<String>) {
    let old_auth = auth_ids(old);
    match new {
        None if !old_auth.is_empty() => {
            why.push(format!("it removes {label}, which had the auth plugin(s) {}", quoted(&old_auth)));
        }
        None => {}
        Some(new) => {
            if !old_auth.is_empty() && auth_ids(new).is_empty() {
                why.push(format!("it removes every auth plugin from {label} (had {})", quoted(&old_auth)));
            } else if !old.is_empty() && new.is_empty() {
                let ids: Vec<&str> = old.iter().map(|p| p.id.as_str()).collect();
                why.push(format!("it empties {label} (had {})", quoted(&ids)));
            }
        }
    }
}

fn quoted(ids: &[&str]) -> String {
    ids.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const BASE: &str = "[upstreams.u]\nendpoints = [\"http://127.0.0.1:9/v1\"]\n";

    fn cfg(extra: &str) -> Config {
        Config::parse(&format!("{BASE}{extra}"), None).unwrap_or_else(|e| panic!("{e}"))
    }

    const MODEL: &str = "[[models]]\nname = \"m\"\nupstream = \"u\"\n";
    const PLUGINS: &str = "[plugins.keys]\nkind = \"auth\"\npath = \"builtin:auth-keys\"\nconfig = { keys = [] }\n\
        [plugins.pin]\nkind = \"rewrite\"\npath = \"builtin:rewrite\"\n";

    #[test]
    fn dropping_auth_from_the_global_chain_is_refused() {
        let old = cfg(&format!("{MODEL}{PLUGINS}[policy]\nchain = [\"keys\", \"pin\"]\n"));
        let new = cfg(&format!("{MODEL}{PLUGINS}[policy]\nchain = [\"pin\"]\n"));
        let why = refusals(&old, &new);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("every auth plugin") && why[0].contains("`keys`"), "{why:?}");
        assert!(refusals(&new, &old).is_empty(), "adding auth is always fine");
    }

    #[test]
    fn a_truncated_file_is_refused_for_chain_and_models() {
        let old = cfg(&format!("{MODEL}{PLUGINS}[policy]\nchain = [\"pin\"]\n"));
        let why = refusals(&old, &cfg(""));
        assert!(why.iter().any(|w| w.contains("empties the global chain")), "{why:?}");
        assert!(why.iter().any(|w| w.contains("every model")), "{why:?}");
    }

    #[test]
    fn a_tenant_with_auth_may_not_vanish_or_lose_it() {
        let tenant = |chain: &str| format!("{MODEL}{PLUGINS}[tenants.acme]\nchain = [{chain}]\n");
        let old = cfg(&tenant("\"keys\""));
        assert!(refusals(&old, &cfg(&format!("{MODEL}{PLUGINS}"))).iter().any(|w| w.contains("removes tenant `acme`")));
        assert!(refusals(&old, &cfg(&tenant("\"pin\""))).iter().any(|w| w.contains("tenant `acme`'s chain")));
        assert!(refusals(&old, &cfg(&tenant("\"pin\", \"keys\""))).is_empty());
        // A tenant without auth may go.
        assert!(refusals(&cfg(&tenant("\"pin\"")), &cfg(&format!("{MODEL}{PLUGINS}"))).is_empty());
    }
}
