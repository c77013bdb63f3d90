//! Test plugin: `header-echo` built with the value `2` (see `../header-echo`), so hot-reload
//! tests can swap one file for another with a different behaviour.

/// The value used when the config gives none.
const BUILD_VALUE: &str = "2";

include!("../../header-echo/src/plugin.rs");
