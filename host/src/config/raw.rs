//! The config file as written: TOML, kebab-case keys, unknown keys rejected. Defaults live in
//! [`super::validate`], next to the validation that turns this into [`super::Config`].
//!
//! Fields that need checking beyond their type are `Spanned`, so an error can name its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub upstreams: BTreeMap<String, RawUpstream>,
    #[serde(default)]
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub plugins: BTreeMap<String, RawPlugin>,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub tenants: BTreeMap<String, RawTenant>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTenant {
    /// Host names (the `Host` header, without port) that select this tenant.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Plugin ids (from `[plugins]`) run for this tenant after the global chain, in order.
    pub chain: Option<Spanned<Vec<String>>>,
    /// Per-plugin config replacing the plugin's `config` for this tenant.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Table>,
    /// Models this tenant may use (exact names or `prefix*`). Default: all routed models.
    pub models: Option<Spanned<Vec<String>>>,
    /// Requests of this tenant running its chain at once; more wait up to 100 ms, then get 503
    /// `tenant_busy`. Keeps one tenant from taking every plugin instance. Default 64.
    pub max_concurrent_plugin_calls: Option<Spanned<u32>>,
    /// Upstream substitutions for this tenant: `{ openai = "openai-acme" }` sends what would go
    /// to `[upstreams.openai]` to `[upstreams.openai-acme]` (its own key or endpoint).
    pub upstream_overrides: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawServer {
    /// Address of the API listener. Default `127.0.0.1:8080`.
    pub listen: Option<Spanned<String>>,
    /// Address of the admin listener (`/metrics`, `/admin/*`). Default `127.0.0.1:9090`.
    pub admin_listen: Option<Spanned<String>>,
    /// Largest request body accepted, in bytes. Default 4 MiB.
    pub max_body_bytes: Option<Spanned<u64>>,
    /// How long in-flight requests and streams may take to finish after SIGTERM. Default `30s`.
    pub shutdown_grace: Option<Spanned<String>>,
    /// Name of the environment variable holding the bearer token the admin listener requires
    /// on `/admin/*` (`Authorization: Bearer <token>`). Default: none (no token; then
    /// `admin-listen` must be a loopback address).
    pub admin_token_env: Option<Spanned<String>>,
    /// Require the admin token on `/metrics` too (a scraper sends it as a bearer token).
    /// Default false. Needs `admin-token-env`.
    pub admin_token_metrics: Option<Spanned<bool>>,
    /// Extra `Host` names the admin listener answers to (besides IP literals of its own
    /// address and `localhost`), e.g. `["wasmgate-admin.internal"]`. Default `[]`.
    pub admin_hosts: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawUpstream {
    /// Base URLs (`https://api.openai.com/v1`); requests rotate over them and fail over on
    /// connect errors.
    pub endpoints: Spanned<Vec<String>>,
    /// Name of the environment variable holding the upstream API key (sent as a bearer token).
    pub api_key_env: Option<Spanned<String>>,
    /// Speak HTTP/2 with prior knowledge to `http://` endpoints (https negotiates by ALPN).
    /// Default false.
    #[serde(default)]
    pub http2: bool,
    /// Default `5s`.
    pub connect_timeout: Option<Spanned<String>>,
    /// Time until the response headers arrive. Default `60s`.
    pub first_byte_timeout: Option<Spanned<String>>,
    /// Time for the whole exchange, streams included. Default `10m`.
    pub total_timeout: Option<Spanned<String>>,
    /// Idle pooled connections kept per endpoint. Default 512.
    pub max_idle_per_endpoint: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawModel {
    /// The model name clients use; a trailing `*` matches any suffix (`gpt-4o*`).
    pub name: Spanned<String>,
    /// Name of the `[upstreams.X]` that serves it.
    pub upstream: Spanned<String>,
    /// The name sent upstream, if different.
    pub upstream_model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPlugin {
    /// `auth`, `rewrite` or `rate-limit`.
    pub kind: Spanned<String>,
    /// Path of the `.wasm` component (relative to the config file), or `builtin:NAME`.
    pub path: Spanned<String>,
    /// `fail-closed` (default for auth and rate-limit) or `fail-open` (default for rewrite).
    pub failure: Option<Spanned<String>>,
    /// Deadline of one call. Default `50ms`.
    pub timeout: Option<Spanned<String>>,
    /// Linear-memory cap of one instance, MiB (1..=256). Default 64.
    pub memory_limit_mib: Option<Spanned<u64>>,
    /// Pass the JSON body to the plugin (`request.body`). Default false.
    #[serde(default)]
    pub body: bool,
    /// Requests one instance may serve before it is replaced (1 = fresh per request). Default 1000.
    pub max_reuse: Option<Spanned<u32>>,
    /// The plugin's own config, handed to its `configure` as JSON.
    #[serde(default)]
    pub config: Option<toml::Table>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPolicy {
    /// Plugin ids, in the order they run. Default: none.
    pub chain: Option<Spanned<Vec<String>>>,
    /// Where precompiled plugins are cached. Default: none (compile at every start).
    pub cache_dir: Option<String>,
    /// Send the caller's identity upstream as `x-wasmgate-subject` / `x-wasmgate-tenant`.
    /// Default true.
    pub forward_identity: Option<bool>,
}
