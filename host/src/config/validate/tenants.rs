//! `[tenants.<id>]` tables, and tenant files (`policy.tenants-dir`, one tenant per file whose
//! keys are those of a `[tenants.<id>]` table): validated against the plugins and upstreams of
//! the main file.

use std::collections::BTreeMap;
use std::path::Path;

use super::super::raw::RawTenant;
use super::{Ctx, DEFAULT_TENANT_CONCURRENCY, secure};
use crate::config::{ConfigErrors, ModelPattern, PluginConfig, TenantConfig};

/// Tenant ids (table names, file stems) use letters, digits, `-` and `_` only.
pub(in crate::config) fn valid_tenant_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Validates the tenant file `path` (its text), tenant `id` (the file stem). Its errors name
/// the file, and keys as written in it (`chain`, `config.limits`).
pub(in crate::config) fn parse_tenant_file(
    id: &str,
    text: &str,
    path: &Path,
    plugins: &BTreeMap<String, PluginConfig>,
    upstream_known: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TenantConfig, ConfigErrors> {
    let mut cx = Ctx { text, errors: Vec::new() };
    let file = Some(path.display().to_string());
    let raw: RawTenant = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let key = e.span().map(|span| super::super::keypath::key_at(text, &span)).unwrap_or_default();
            cx.err(key, e.span(), e.message().to_string());
            return Err(ConfigErrors { file, errors: cx.errors });
        }
    };
    let tenant = tenant(&mut cx, id, "", &raw, plugins, upstream_known, env);
    match tenant {
        Some(t) if cx.errors.is_empty() => Ok(t),
        _ => Err(ConfigErrors { file, errors: cx.errors }),
    }
}

/// One tenant; its keys are named `{prefix}chain` etc. (`tenants.acme.` in the main file,
/// nothing in a tenant file).
pub(super) fn tenant(
    cx: &mut Ctx<'_>,
    id: &str,
    prefix: &str,
    t: &RawTenant,
    plugins: &BTreeMap<String, PluginConfig>,
    upstream_known: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<TenantConfig> {
    if !valid_tenant_id(id) {
        let msg = format!("tenant id `{id}`: tenant ids may only use letters, digits, `-` and `_`");
        cx.err(prefix.trim_end_matches('.'), None, msg);
        return None;
    }
    let mut chain = Vec::new();
    if let Some(c) = &t.chain {
        for pid in c.get_ref() {
            match plugins.get(pid) {
                None => cx.err(format!("{prefix}chain"), Some(c.span()), format!("no plugin named `{pid}`")),
                Some(pc) => {
                    let mut pc: PluginConfig = pc.clone();
                    pc.id = format!("{id}/{pid}");
                    if let Some(table) = t.config.get(pid) {
                        // The tenant's own config replaces the plugin's (already resolved) one.
                        pc.config_json = serde_json::to_string(table).unwrap_or_else(|_| "{}".to_string());
                        pc.secrets.clear();
                        secure::resolve_env_refs(cx, &format!("{prefix}config.{pid}"), &mut pc, env);
                    }
                    chain.push(pc);
                }
            }
        }
    }
    for pid in t.config.keys() {
        if !t.chain.as_ref().is_some_and(|c| c.get_ref().contains(pid)) {
            cx.err(format!("{prefix}config.{pid}"), None, format!("plugin `{pid}` is not in this tenant's chain"));
        }
    }
    let mut allowed = Vec::new();
    if let Some(m) = &t.models {
        for name in m.get_ref() {
            match name.strip_suffix('*') {
                Some(p) if !p.contains('*') => allowed.push(ModelPattern::Prefix(p.to_string())),
                None if !name.contains('*') && !name.is_empty() => allowed.push(ModelPattern::Exact(name.clone())),
                _ => cx.err(
                    format!("{prefix}models"),
                    Some(m.span()),
                    format!("`{name}`: use an exact name or `prefix*`"),
                ),
            }
        }
    }
    let mut upstream_overrides = BTreeMap::new();
    if let Some(o) = &t.upstream_overrides {
        for (from, to) in o.get_ref() {
            for name in [from, to] {
                if !upstream_known(name) {
                    cx.err(
                        format!("{prefix}upstream-overrides"),
                        Some(o.span()),
                        format!("no upstream named `{name}`"),
                    );
                }
            }
            upstream_overrides.insert(from.clone(), to.clone());
        }
    }
    let max_concurrent = match &t.max_concurrent_plugin_calls {
        Some(m) if *m.get_ref() == 0 => {
            cx.err(format!("{prefix}max-concurrent-plugin-calls"), Some(m.span()), "must be at least 1");
            1
        }
        Some(m) => *m.get_ref(),
        None => DEFAULT_TENANT_CONCURRENCY,
    };
    Some(TenantConfig {
        id: id.to_string(),
        hosts: t.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        chain,
        models: allowed,
        max_concurrent_plugin_calls: max_concurrent,
        upstream_overrides,
        allow_global_identities: t.allow_global_identities,
    })
}
