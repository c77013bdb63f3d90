//! The resolved config as a config file (`wasmgate config check --print`): valid TOML in the
//! file's own keys and casing, every default written out, secrets redacted (see
//! [`super::secrets`]). Loading the text gives back an equal [`Config`] (up to the redacted
//! values), which `tests::printed_configs_load_back_equal` checks.
//!
//! Each section is its own `toml::Table`, serialized by the `toml` crate (so quoting and
//! escaping are never ours), and the sections are written in the order of the docs, with the
//! few comments that say what a value means.

use std::time::Duration;

use serde_json::Value as Json;
use toml::{Table, Value};

use super::secrets::{self, REDACTED};
use super::*;

fn dur(d: Duration) -> Value {
    Value::String(humantime::format_duration(d).to_string())
}

fn int(n: impl TryInto<i64>) -> Value {
    Value::Integer(n.try_into().unwrap_or(i64::MAX))
}

fn strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
    Value::Array(items.into_iter().map(|s| Value::String(s.into())).collect())
}

fn pattern(p: &ModelPattern) -> String {
    match p {
        ModelPattern::Exact(n) => n.clone(),
        ModelPattern::Prefix(p) => format!("{p}*"),
    }
}

/// A plugin's config JSON, redacted, as a TOML table (JSON that is not an object, which the
/// validator never produces, is shown as an empty table).
fn plugin_config(json: &str, known: &[Secret]) -> Table {
    let redacted = secrets::redact_config_json(json, known);
    serde_json::from_str::<Json>(&redacted)
        .ok()
        .and_then(|v| serde_json::from_value::<Table>(v).ok())
        .unwrap_or_default()
}

fn server(c: &ServerConfig) -> Table {
    let mut t = Table::new();
    t.insert("listen".into(), Value::String(c.listen.to_string()));
    t.insert("admin-listen".into(), Value::String(c.admin_listen.to_string()));
    t.insert("max-body-bytes".into(), int(c.max_body_bytes));
    t.insert("shutdown-grace".into(), dur(c.shutdown_grace));
    if !c.trusted_proxies.is_empty() {
        t.insert("trusted-proxies".into(), strings(c.trusted_proxies.iter().map(ToString::to_string)));
    }
    let k = &c.connections;
    t.insert("header-read-timeout".into(), dur(k.header_read_timeout));
    t.insert("idle-timeout".into(), dur(k.idle_timeout));
    t.insert("body-timeout".into(), dur(k.body_timeout));
    t.insert("http2-keep-alive-interval".into(), dur(k.http2_keep_alive_interval));
    if let Some(n) = k.max_connections {
        t.insert("max-connections".into(), int(n));
    }
    t.insert("listen-backlog".into(), int(k.listen_backlog));
    if let Some((var, _)) = &c.admin.token {
        t.insert("admin-token-env".into(), Value::String(var.clone()));
        t.insert("admin-token-metrics".into(), Value::Boolean(c.admin.token_metrics));
    }
    if !c.admin.hosts.is_empty() {
        t.insert("admin-hosts".into(), strings(c.admin.hosts.iter().cloned()));
    }
    t
}

fn upstream(u: &UpstreamConfig) -> Table {
    let mut t = Table::new();
    let endpoints = u.endpoints.iter().map(|e| secrets::scrub(&e.to_string(), &[]));
    t.insert("endpoints".into(), strings(endpoints));
    if let Some((var, _)) = &u.api_key {
        t.insert("api-key-env".into(), Value::String(var.clone()));
    }
    t.insert("http2".into(), Value::Boolean(u.http2));
    t.insert("connect-timeout".into(), dur(u.connect_timeout));
    t.insert("first-byte-timeout".into(), dur(u.first_byte_timeout));
    t.insert("total-timeout".into(), dur(u.total_timeout));
    t.insert("max-idle-per-endpoint".into(), int(u.max_idle_per_endpoint));
    // `organization` and `project` are folded into the headers at validation; written back
    // under their own keys so the headers come back in the same order.
    let mut headers = Table::new();
    for (name, value) in &u.headers {
        // Account ids are shown; any other header may be a credential under a name no rule
        // recognises (`ocp-apim-subscription-key`), so its value is always redacted.
        let shown = Value::String(value.to_str().map_or(REDACTED.into(), |v| secrets::scrub(v, &[])));
        match name.as_str() {
            "openai-organization" => t.insert("organization".into(), shown),
            "openai-project" => t.insert("project".into(), shown),
            other => headers.insert(other.to_string(), Value::String(REDACTED.into())),
        };
    }
    if !headers.is_empty() {
        t.insert("headers".into(), Value::Table(headers));
    }
    if !u.forward_client_headers.is_empty() {
        t.insert("forward-client-headers".into(), strings(u.forward_client_headers.iter().map(|h| h.as_str())));
    }
    let l = &u.limits;
    t.insert("max-connections-per-endpoint".into(), int(l.max_connections_per_endpoint));
    t.insert("max-streams-per-connection".into(), int(l.max_streams_per_connection));
    t.insert("http2-stream-window".into(), int(l.http2_stream_window));
    t.insert("http2-keep-alive-interval".into(), dur(l.http2_keep_alive_interval));
    t.insert("http2-keep-alive-timeout".into(), dur(l.http2_keep_alive_timeout));
    t.insert("client-stall-timeout".into(), dur(l.client_stall_timeout));
    t.insert("chunk-idle-timeout".into(), dur(l.chunk_idle_timeout));
    t
}

fn model(m: &ModelRoute) -> Value {
    let mut t = Table::new();
    t.insert("name".into(), Value::String(pattern(&m.pattern)));
    t.insert("upstream".into(), Value::String(m.upstream.clone()));
    if let Some(um) = &m.upstream_model {
        t.insert("upstream-model".into(), Value::String(um.clone()));
    }
    Value::Table(t)
}

fn plugin(p: &PluginConfig) -> Table {
    let mut t = Table::new();
    let kind = match p.kind {
        PluginKindConfig::Auth => "auth",
        PluginKindConfig::Rewrite => "rewrite",
        PluginKindConfig::RateLimit => "rate-limit",
    };
    t.insert("kind".into(), Value::String(kind.into()));
    let path = match &p.location {
        PluginLocation::File(f) => f.to_string_lossy().into_owned(),
        PluginLocation::Builtin(n) => format!("builtin:{n}"),
    };
    t.insert("path".into(), Value::String(path));
    // Unwritten, `failure` is the plugin's own declaration (else the kind's default): writing
    // the resolved default would override the declaration on the next load.
    if p.failure_explicit {
        let failure = match p.failure {
            FailureMode::FailClosed => "fail-closed",
            FailureMode::FailOpen => "fail-open",
        };
        t.insert("failure".into(), Value::String(failure.into()));
    }
    t.insert("timeout".into(), dur(p.timeout));
    t.insert("configure-timeout".into(), dur(p.configure_timeout));
    t.insert("memory-limit-mib".into(), int(p.memory_limit_bytes >> 20));
    t.insert("body".into(), Value::Boolean(p.pass_body));
    t.insert("max-reuse".into(), int(p.max_reuse));
    if let Some(n) = p.body_limit {
        t.insert("body-limit".into(), int(n));
    }
    t.insert("config".into(), Value::Table(plugin_config(&p.config_json, &p.secrets)));
    t
}

fn policy(p: &PolicyConfig) -> Table {
    let mut t = Table::new();
    t.insert("chain".into(), strings(p.chain.iter().cloned()));
    if let Some(d) = &p.cache_dir {
        t.insert("cache-dir".into(), Value::String(d.to_string_lossy().into_owned()));
    }
    t.insert("forward-identity".into(), Value::Boolean(p.forward_identity));
    let i = &p.instances;
    let mut inst = Table::new();
    inst.insert("max".into(), int(i.max));
    inst.insert("idle".into(), int(i.idle));
    inst.insert("idle-memory-mib".into(), int(i.idle_memory_bytes >> 20));
    inst.insert("idle-per-plugin".into(), int(i.idle_per_plugin));
    inst.insert("idle-timeout".into(), dur(i.idle_timeout));
    t.insert("instances".into(), Value::Table(inst));
    t
}

fn tenant(t: &TenantConfig, plugins: &BTreeMap<String, PluginConfig>) -> Table {
    let mut out = Table::new();
    out.insert("hosts".into(), strings(t.hosts.iter().cloned()));
    let prefix = format!("{}/", t.id);
    let ids: Vec<&str> = t.chain.iter().map(|p| p.id.strip_prefix(&prefix).unwrap_or(&p.id)).collect();
    out.insert("chain".into(), strings(ids.iter().copied()));
    // A tenant's own plugin config, where it differs from the plugin's.
    let mut own = Table::new();
    for (pc, id) in t.chain.iter().zip(&ids) {
        if plugins.get(*id).is_none_or(|g| g.config_json != pc.config_json) {
            own.insert((*id).to_string(), Value::Table(plugin_config(&pc.config_json, &pc.secrets)));
        }
    }
    if !own.is_empty() {
        out.insert("config".into(), Value::Table(own));
    }
    if !t.models.is_empty() {
        out.insert("models".into(), strings(t.models.iter().map(pattern)));
    }
    out.insert("max-concurrent-plugin-calls".into(), int(t.max_concurrent_plugin_calls));
    if !t.upstream_overrides.is_empty() {
        let o = t.upstream_overrides.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        out.insert("upstream-overrides".into(), Value::Table(o));
    }
    out.insert("allow-global-identities".into(), Value::Boolean(t.allow_global_identities));
    out
}

/// `{ name = table }` as TOML text (`[name]` or `[name.key]` headers, `[[name]]` for arrays).
fn section(name: &str, value: Value) -> String {
    let mut doc = Table::new();
    doc.insert(name.to_string(), value);
    toml::to_string(&doc).unwrap_or_else(|e| format!("# cannot print [{name}]: {e}\n"))
}

/// The config as a config file; see the module docs.
pub(super) fn to_toml(c: &Config) -> String {
    let mut out = String::from(
        "# Resolved by `wasmgate config check --print`: every default written out; secrets appear as\n\
         # \"<redacted>\" (hashes as their first 8 characters) and secrets from the environment as\n\
         # the variable's name (`*-env`).\n\n",
    );
    out.push_str(&section("server", Value::Table(server(&c.server))));
    let upstreams: Table = c.upstreams.values().map(|u| (u.name.clone(), Value::Table(upstream(u)))).collect();
    let models = Value::Array(c.models.iter().map(model).collect());
    let plugins: Table = c.plugins.values().map(|p| (p.id.clone(), Value::Table(plugin(p)))).collect();
    let tenants: Table = c.tenants.values().map(|t| (t.id.clone(), Value::Table(tenant(t, &c.plugins)))).collect();
    for (name, value, present) in [
        ("upstreams", Value::Table(upstreams), !c.upstreams.is_empty()),
        ("models", models, !c.models.is_empty()),
        ("plugins", Value::Table(plugins), !c.plugins.is_empty()),
        ("policy", Value::Table(policy(&c.policy)), true),
        ("tenants", Value::Table(tenants), !c.tenants.is_empty()),
    ] {
        if present {
            out.push('\n');
            out.push_str(&section(name, value));
        }
    }
    out
}

#[cfg(test)]
#[path = "print_tests.rs"]
mod tests;
