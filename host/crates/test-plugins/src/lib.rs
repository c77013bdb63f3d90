//! Paths of the plugin components this crate's `build.rs` builds (`wasm32-wasip2`, profile
//! `plugin`, in `<workspace>/target/wasm-plugins`). Absolute paths, fixed at compile time: a
//! dev-only crate for tests, examples and benches; the gateway binary never links it.
//!
//! Reference plugins (see each `plugins/<name>/README.md`):

/// `plugins/auth-keys` (`auth` world): API keys checked against configured SHA-256 hashes.
pub const AUTH_KEYS: &str = env!("WASMGATE_PLUGIN_AUTH_KEYS");
/// `plugins/auth-jwt` (`auth` world): HS256/RS256 JWTs with issuer, audience, expiry and skew.
pub const AUTH_JWT: &str = env!("WASMGATE_PLUGIN_AUTH_JWT");
/// `plugins/rewrite` (`rewrite` world): model aliases and deny list, `max_tokens`, system prompt, headers.
pub const REWRITE: &str = env!("WASMGATE_PLUGIN_REWRITE");
/// `plugins/rate-limit` (`rate-limit` world): request and token quotas, 429s, `x-ratelimit-*`.
pub const RATE_LIMIT: &str = env!("WASMGATE_PLUGIN_RATE_LIMIT");

// Hostile and helper plugins for the host's tests (`plugins/testing/`).

/// `rewrite` world; panics (traps) on every `rewrite`.
pub const TRAP: &str = env!("WASMGATE_PLUGIN_TRAP");
/// `rewrite` world; spins forever in `rewrite` (needs the epoch/fuel deadline).
pub const BUSY_LOOP: &str = env!("WASMGATE_PLUGIN_BUSY_LOOP");
/// `rewrite` world; allocates and touches 1 MiB blocks in `rewrite` until allocation fails (trap).
pub const MEMORY_BOMB: &str = env!("WASMGATE_PLUGIN_MEMORY_BOMB");
/// `rewrite` world; returns 64 MiB: config `{"mode":"set-header"}` (default, header `x-huge`)
/// or `{"mode":"respond"}` (a 200 body); `"size-bytes"` overrides the size.
pub const HUGE_OUTPUT: &str = env!("WASMGATE_PLUGIN_HUGE_OUTPUT");
/// `rewrite` world; `configure` always fails with
/// `bad-configure: this plugin always refuses its config`.
pub const BAD_CONFIGURE: &str = env!("WASMGATE_PLUGIN_BAD_CONFIGURE");
/// A valid component of an unrelated world (`test:other`, exporting only `hello: func() -> string`).
pub const WRONG_WORLD: &str = env!("WASMGATE_PLUGIN_WRONG_WORLD");
/// `rewrite` world; config `{"name":"x-v","value":"1"}`: sets that upstream header and the
/// response header `x-plugin-version` to the value (for hot-reload tests).
pub const HEADER_ECHO: &str = env!("WASMGATE_PLUGIN_HEADER_ECHO");
/// `header-echo` built with the value `2` when the config gives none (`header-echo` gives `1`).
pub const HEADER_ECHO_V2: &str = env!("WASMGATE_PLUGIN_HEADER_ECHO_V2");
/// `rewrite` world; header `x-flaky: trap` traps, `x-flaky: spin-<ms>` spins that long, else
/// continue. Declares `failure = "fail-closed"` (`wasmgate:defaults`, via the SDK macro).
pub const FLAKY: &str = env!("WASMGATE_PLUGIN_FLAKY");

// Python and JavaScript plugins (`host/build_polyglot.rs`). Empty when their toolchains were
// missing at build time: use [`polyglot`], which then says how to install them.

/// `plugins/redact-py` (`rewrite` world, Python): redacts e-mail addresses and phone numbers in chat messages.
pub const REDACT_PY: &str = env!("WASMGATE_PLUGIN_REDACT_PY");
/// `plugins/allowlist-js` (`auth` world, JavaScript): client IP (CIDR) and/or key allow-list.
pub const ALLOWLIST_JS: &str = env!("WASMGATE_PLUGIN_ALLOWLIST_JS");
/// `rewrite` world, Python; raises in every `rewrite`.
pub const RAISE_PY: &str = env!("WASMGATE_PLUGIN_RAISE_PY");
/// `auth` world, JavaScript; throws in every `authenticate`.
pub const THROW_JS: &str = env!("WASMGATE_PLUGIN_THROW_JS");

/// The path of a Python or JavaScript plugin, or why there is none.
pub fn polyglot(path: &'static str) -> Result<&'static str, String> {
    if path.is_empty() {
        return Err("the Python/JavaScript plugins were not built because their toolchains are missing: \
                    run `plugins/polyglot-tools.sh`, then build again"
            .to_string());
    }
    Ok(path)
}
/// `rewrite` world, for `body = true`: `{"mode":"redact","word":W}` replaces W in the messages
/// (`set-body-field`); `{"mode":"probe","word":W}` sets upstream headers `x-body-probe:
/// present|absent` (W in the body it was given) and `x-body-model` (the body's model).
pub const BODY_PROBE: &str = env!("WASMGATE_PLUGIN_BODY_PROBE");
