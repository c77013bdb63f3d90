//! Validation of the settings that keep secrets and the admin surface closed: who may use the
//! admin listener, and plugin secrets read from the environment.

use std::net::SocketAddr;

use super::super::raw::RawServer;
use super::super::secrets;
use super::Ctx;
use crate::config::{AdminAccess, PluginConfig, Secret};

/// `server.admin-token-env`, `admin-token-metrics`, `admin-hosts`. Without a token the admin
/// listener must be on a loopback address: `/admin/reload` and `/admin/plugins` answer anyone
/// who can reach it.
pub(super) fn admin_access(
    cx: &mut Ctx<'_>,
    raw: &RawServer,
    admin_listen: SocketAddr,
    env: &dyn Fn(&str) -> Option<String>,
) -> AdminAccess {
    let token = raw.admin_token_env.as_ref().and_then(|var| match env(var.get_ref()) {
        Some(v) if !v.trim().is_empty() => Some((var.get_ref().clone(), Secret::new(v.trim().to_string()))),
        _ => {
            cx.err(
                "server.admin-token-env",
                Some(var.span()),
                format!("environment variable `{}` is not set (or empty)", var.get_ref()),
            );
            None
        }
    });
    if raw.admin_token_env.is_none() && !admin_listen.ip().is_loopback() {
        let span = raw.admin_listen.as_ref().map(|a| a.span());
        cx.err(
            "server.admin-listen",
            span,
            format!(
                "{admin_listen} is not a loopback address and no `server.admin-token-env` is set: \
                 anyone who can reach it could reload the config and read plugin details. \
                 Set `admin-token-env`, or listen on 127.0.0.1 / [::1]"
            ),
        );
    }
    let token_metrics = match &raw.admin_token_metrics {
        Some(m) if *m.get_ref() && raw.admin_token_env.is_none() => {
            cx.err(
                "server.admin-token-metrics",
                Some(m.span()),
                "needs `server.admin-token-env` (the token to require)",
            );
            false
        }
        Some(m) => *m.get_ref(),
        None => false,
    };
    let mut hosts = Vec::new();
    if let Some(h) = &raw.admin_hosts {
        for name in h.get_ref() {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() || name.contains(['/', ':', ' ', '*']) {
                cx.err(
                    "server.admin-hosts",
                    Some(h.span()),
                    format!("`{name}`: use a bare host name, no port or wildcard"),
                );
            } else {
                hosts.push(name);
            }
        }
    }
    AdminAccess { token, token_metrics, hosts }
}

/// Replaces `NAME-env` keys of a plugin config by the variables' values (see
/// [`secrets::resolve_env_refs`]) and keeps those values as the plugin's secrets.
pub(super) fn resolve_env_refs(
    cx: &mut Ctx<'_>,
    key: &str,
    pc: &mut PluginConfig,
    env: &dyn Fn(&str) -> Option<String>,
) {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&pc.config_json) else { return };
    let (found, errors) = secrets::resolve_env_refs(&mut value, key, env);
    for (k, msg) in errors {
        cx.err(k, None, msg);
    }
    // Untouched configs keep their text as it was (reloads compare it to spot changes).
    if !found.is_empty() {
        pc.config_json = value.to_string();
    }
    pc.secrets = found;
}
