//! Test plugin (`rewrite` world): sets the configured upstream header and the response header
//! `x-plugin-version` to the same value. Config `{"name":"x-v","value":"1"}`; without `value`,
//! the value built into the file (`1` here, `2` in `header-echo-v2`), so the host's hot-reload
//! tests can swap the *file* and watch the behaviour change.

/// The value used when the config gives none.
const BUILD_VALUE: &str = "1";

include!("plugin.rs");
