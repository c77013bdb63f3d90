//! The reference plugins compiled into the binary, usable in any config as
//! `path = "builtin:NAME"` (the embedded default uses them), so the binary needs no plugin
//! files next to it.

/// Names accepted after `builtin:`.
pub const NAMES: &[&str] = &["auth-keys", "auth-jwt", "rewrite", "rate-limit"];

static AUTH_KEYS: &[u8] = include_bytes!(env!("WASMGATE_PLUGIN_AUTH_KEYS"));
static AUTH_JWT: &[u8] = include_bytes!(env!("WASMGATE_PLUGIN_AUTH_JWT"));
static REWRITE: &[u8] = include_bytes!(env!("WASMGATE_PLUGIN_REWRITE"));
static RATE_LIMIT: &[u8] = include_bytes!(env!("WASMGATE_PLUGIN_RATE_LIMIT"));

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
