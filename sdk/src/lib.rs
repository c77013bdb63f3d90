//! Write [wasmgate](https://example.invalid/wasmgate) policy plugins in Rust.
//!
//! A plugin is a WebAssembly component (`wasm32-wasip2`, `crate-type = ["cdylib"]`) that
//! exports exactly one world of the `wasmgate:policy@0.1.0` contract (`wit/policy.wit`):
//! `auth`, `rewrite` or `rate-limit`. Turn on the SDK feature of that world, implement its
//! trait ([`AuthPlugin`], [`RewritePlugin`], [`RateLimitPlugin`]) and export it with the
//! matching macro ([`export_auth!`], [`export_rewrite!`], [`export_rate_limit!`]).
//!
//! The SDK parses the JSON config the gateway passes to `configure` into your `Config` type
//! (errors name the field: ``invalid config at `header.name`: ...``), keeps it, and hands it
//! to every call. It also gives you logging through the gateway ([`info!`], [`warn!`], ...),
//! OpenAI-shaped errors ([`error_response`]) and the host capabilities ([`host`]).
//!
//! A whole plugin (`Cargo.toml`: `wasmgate-sdk = { workspace = true, features = ["rewrite"] }`,
//! `serde`, `[lib] crate-type = ["cdylib"]`):
//!
//! ```ignore
//! use serde::Deserialize;
//! use wasmgate_sdk::{Decision, Edit, Request, RewritePlugin};
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// Model every request is pinned to.
//!     model: String,
//! }
//!
//! struct PinModel;
//!
//! impl RewritePlugin for PinModel {
//!     type Config = Config;
//!
//!     fn rewrite(config: &Config, req: Request) -> Decision {
//!         if req.model == config.model {
//!             return Decision::Continue;
//!         }
//!         wasmgate_sdk::info!("pinning {} to {}", req.model, config.model);
//!         Decision::Mutate(vec![Edit::SetModel(config.model.clone())])
//!     }
//! }
//!
//! wasmgate_sdk::export_rewrite!(PinModel);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`: the result is already a
//! component (rustup's `wasm-component-ld` links it). Keep the logic in plain functions so it
//! can be unit-tested natively; host imports only work inside the gateway ([`log`](log::log)
//! falls back to stderr natively, the [`host`] functions panic).
//!
//! Instances are reused for many requests (one at a time): do not rely on fresh memory, and
//! keep state that must be shared or survive a reload in the host (`quota-*`, `kv-*`).

mod bindings;
mod config;
pub mod log;
mod response;

#[cfg(feature = "auth")]
mod auth;
#[cfg(feature = "rate-limit")]
mod rate_limit;
#[cfg(feature = "rewrite")]
mod rewrite;

pub use bindings::base::wasmgate::policy::types::{
    Decision, Edit, Header, Identity, Level, Outcome, QuotaStatus, Request, Response, Usage,
};
pub use config::{NoConfig, parse_config};
pub use response::{error_body, error_response, test_request};

#[cfg(feature = "auth")]
pub use auth::AuthPlugin;
#[cfg(feature = "auth")]
pub use bindings::auth::AuthDecision;

#[cfg(feature = "rewrite")]
pub use rewrite::RewritePlugin;

#[cfg(feature = "rate-limit")]
pub use bindings::rate_limit::Admission;
#[cfg(feature = "rate-limit")]
pub use rate_limit::RateLimitPlugin;

/// Re-exported so plugins can read JSON bodies without their own dependency.
pub use serde_json;

/// What the gateway provides: `now_ms`, `quota_consume`, `quota_adjust`, `kv_get`, `kv_set`,
/// `kv_delete` (and the raw `log`; prefer the [`info!`] family). Counters and values are
/// private to the plugin and tenant. Only callable inside the gateway: natively they panic.
pub mod host {
    pub use crate::bindings::base::wasmgate::policy::host::{
        kv_delete, kv_get, kv_set, log, now_ms, quota_adjust, quota_consume,
    };
}

/// Declares the plugin's own defaults, for when the gateway config does not set them:
/// `failure` (`"fail-closed"` or `"fail-open"`: what the gateway does when the plugin fails)
/// and `body_limit` (the largest request body, in bytes, the plugin can process within its
/// deadline; a larger one fails without calling the plugin). A redaction or other security
/// plugin should declare `failure = "fail-closed"`: a skipped call would let data through.
///
/// ```ignore
/// wasmgate_sdk::declare_defaults!(failure = "fail-closed", body_limit = 262144);
/// ```
///
/// It writes a `wasmgate:defaults` custom section (TOML) into the component, which the
/// gateway reads at load and `wasmgate plugin check` prints. Precedence: the gateway config >
/// this declaration > the default of the plugin's kind. Use it once per plugin.
#[macro_export]
macro_rules! declare_defaults {
    (failure = $failure:literal $(, body_limit = $limit:literal)? $(,)?) => {
        $crate::__declare_defaults_section!(concat!(
            "failure = ", stringify!($failure), "\n" $(, "body-limit = ", stringify!($limit), "\n")?
        ));
    };
    (body_limit = $limit:literal $(,)?) => {
        $crate::__declare_defaults_section!(concat!("body-limit = ", stringify!($limit), "\n"));
    };
}

/// Declares the request headers the plugin reads (names, any case). The gateway then hands
/// it only those, instead of every header the client sent copied into the plugin's memory on
/// every call: least privilege, and on a small plugin most of the call's cost. `Request::headers`
/// holds the declared ones the request carries; credentials (`authorization`, `x-api-key`,
/// `cookie`, `proxy-authorization`) still reach only auth plugins. No declaration: every header.
///
/// ```ignore
/// wasmgate_sdk::declare_headers!("authorization", "x-api-key");
/// wasmgate_sdk::declare_headers!(); // reads none
/// ```
///
/// Written into the same `wasmgate:defaults` section as [`declare_defaults!`] (`headers = [..]`);
/// `wasmgate plugin check` prints it.
#[macro_export]
macro_rules! declare_headers {
    ($($name:literal),* $(,)?) => {
        $crate::__declare_defaults_section!(concat!("headers = [", $(stringify!($name), ",",)* "]\n"));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __declare_defaults_section {
    ($text:expr) => {
        const _: () = {
            const TEXT: &str = $text;
            #[used]
            #[unsafe(link_section = "wasmgate:defaults")]
            static WASMGATE_DEFAULTS: [u8; TEXT.len()] = $crate::__private::section_bytes::<{ TEXT.len() }>(TEXT);
        };
    };
}

/// Used by the export macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::config::ConfigSlot;
    use crate::{Response, error_response};

    #[cfg(feature = "auth")]
    pub use crate::bindings::auth;
    #[cfg(feature = "rate-limit")]
    pub use crate::bindings::rate_limit;
    #[cfg(feature = "rewrite")]
    pub use crate::bindings::rewrite;

    /// The bytes of a `declare_defaults!` section (a `&str` cannot be a section's static).
    pub const fn section_bytes<const N: usize>(text: &str) -> [u8; N] {
        let bytes = text.as_bytes();
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = bytes[i];
            i += 1;
        }
        out
    }

    /// What a plugin answers if the gateway calls it before a successful `configure`.
    pub fn not_configured() -> Response {
        error_response(
            500,
            "The policy plugin was called before it was configured.",
            "server_error",
            "plugin_not_configured",
        )
    }
}
