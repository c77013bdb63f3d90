//! The reference plugins compiled into the binary, usable in any config as
//! `path = "builtin:NAME"` (the embedded default uses them), so the binary needs no plugin
//! files next to it.

/// Names accepted after `builtin:`.
pub const NAMES: &[&str] = &["auth-keys", "auth-jwt", "rewrite", "rate-limit"];

static AUTH_KEYS: &[u8] = include_bytes!(env!("WASMGATE_PLUGIN_AUTH_KEYS"));
static AUTH_JWT: &[u8] = include_bytes!(env!("WASMGATE_PLUGIN_AUTH_JWT"));
static REWRITE: &[u8] = include_bytes!(env!("WASMGATE_PLUGIN_REWRITE"));
static RATE_LIMIT: &[u8] = include_bytes!(env!("WASMGATE_PLUGIN_RATE_LIMIT"));

/// The component bytes of a builtin plugin, shared: every spec naming it holds the same `Arc`
/// (a config with 10,000 tenants names a builtin 10,000 times; copying its ~300 KB for each
/// was 16% of a reload's CPU).
pub fn shared(name: &str) -> Option<std::sync::Arc<[u8]>> {
    use std::sync::{Arc, LazyLock};
    type Table = [(&'static str, Arc<[u8]>); 4];
    static SHARED: LazyLock<Table> = LazyLock::new(|| {
        [
            ("auth-keys", Arc::from(AUTH_KEYS)),
            ("auth-jwt", Arc::from(AUTH_JWT)),
            ("rewrite", Arc::from(REWRITE)),
            ("rate-limit", Arc::from(RATE_LIMIT)),
        ]
    });
    SHARED.iter().find(|(n, _)| *n == name).map(|(_, b)| b.clone())
}

/// The component bytes of a builtin plugin.
pub fn get(name: &str) -> Option<&'static [u8]> {
    match name {
        "auth-keys" => Some(AUTH_KEYS),
        "auth-jwt" => Some(AUTH_JWT),
        "rewrite" => Some(REWRITE),
        "rate-limit" => Some(RATE_LIMIT),
        _ => None,
    }
}
