//! The reference plugins compiled into the binary, usable as `path = "builtin:NAME"`.

/// Names accepted after `builtin:`.
pub const NAMES: &[&str] = &["auth-keys", "rewrite", "rate-limit"];

/// The component bytes of a builtin plugin.
pub fn get(name: &str) -> Option<&'static [u8]> {
    // Filled in once host/build.rs builds the plugins.
    NAMES.contains(&name).then_some(&[][..])
}
