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
    /// Let callers whose identity comes from the global chain without a tenant (a key bound to
    /// no tenant) use this tenant by naming it in the path or `Host`. Without it such a caller
    /// gets 403 `tenant_mismatch`: a tenant-less key must not pick a tenant, and with it the
    /// tenant's provider account (`upstream-overrides`). Default false.
    #[serde(default)]
    pub allow_global_identities: bool,
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
    /// Peers (addresses or CIDR blocks, `["10.0.0.0/8", "127.0.0.1"]`) whose `X-Forwarded-*` and
    /// `Forwarded` headers are kept and appended to. From any other peer they are replaced by
    /// what the gateway saw on the TCP connection. Default: none.
    pub trusted_proxies: Option<Spanned<Vec<String>>>,
    /// Time a new connection has to deliver its first complete request head (covers the
    /// HTTP/1-vs-2 detection, the h2 preface and a silent socket). Default `10s`.
    pub header_read_timeout: Option<Spanned<String>>,
    /// Time a keep-alive connection (h1 or h2) may sit without a request in flight before it
    /// is closed; a request head not complete by then is cut too. Default `75s`.
    pub idle_timeout: Option<Spanned<String>>,
    /// Time for the whole request body, from the end of the headers (not reset per chunk);
    /// over it the client gets 408 `request_timeout`. Default `30s`.
    pub body_timeout: Option<Spanned<String>>,
    /// Interval of HTTP/2 keep-alive PINGs to clients; a client that does not answer one
    /// within 20 s is disconnected. Default `30s`.
    pub http2_keep_alive_interval: Option<Spanned<String>>,
    /// Open client connections on the API listener; when full, the connection idle the
    /// longest is closed to make room. Default: half the open-file limit (after it is
    /// raised to the hard limit at start), leaving the rest for upstream sockets and files.
    pub max_connections: Option<Spanned<u64>>,
    /// Length of the kernel's queue of connections not yet accepted (both listeners; the
    /// kernel caps it at `net.core.somaxconn`). Default 1024.
    pub listen_backlog: Option<Spanned<u32>>,
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
    /// Sent as `OpenAI-Organization` with every request to this upstream. Default: none.
    pub organization: Option<Spanned<String>>,
    /// Sent as `OpenAI-Project` with every request to this upstream. Default: none.
    pub project: Option<Spanned<String>>,
    /// More headers sent with every request to this upstream (replacing a client's). Not
    /// framing, hop-by-hop, `host` or `authorization` (use `api-key-env`). Default: none.
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// Client headers forwarded to this upstream that are dropped by default: the provider
    /// account headers `openai-organization` and `openai-project` (a client must not choose
    /// what the gateway's key bills). Ignored for a header the upstream config sets itself.
    /// Default: none.
    pub forward_client_headers: Option<Spanned<Vec<String>>>,
    /// Connections (HTTP/2) or connection pools (HTTP/1) per endpoint; requests go to the
    /// least loaded. Default 16.
    pub max_connections_per_endpoint: Option<Spanned<u64>>,
    /// Requests in flight per connection (HTTP/2 streams; for HTTP/1, per pool). When every
    /// connection is full, a request waits within its `first-byte-timeout`. Default 100.
    pub max_streams_per_connection: Option<Spanned<u64>>,
    /// HTTP/2 receive window of one stream, in bytes; the connection window is this times
    /// `max-streams-per-connection`, so streams whose clients stopped reading can never
    /// starve the others. Default 262144 (256 KiB).
    pub http2_stream_window: Option<Spanned<u64>>,
    /// HTTP/2 keep-alive ping interval, also on idle connections. Default `20s`.
    pub http2_keep_alive_interval: Option<Spanned<String>>,
    /// A ping not answered within this closes the connection. Default `10s`.
    pub http2_keep_alive_timeout: Option<Spanned<String>>,
    /// A stream whose client accepted no bytes for this long is dropped (upstream cancelled,
    /// settled as client-aborted). Default `30s`.
    pub client_stall_timeout: Option<Spanned<String>>,
    /// A stream whose upstream sent nothing for this long ends with an SSE error event
    /// (`upstream_timeout`). Default `60s`.
    pub chunk_idle_timeout: Option<Spanned<String>>,
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
    /// Deadline of `configure` (at load, and whenever an instance is made). Default `10s`.
    pub configure_timeout: Option<Spanned<String>>,
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
    /// Largest request body handed to the plugin (with `body = true`), bytes. A larger body is
    /// a failure decided without calling the plugin: fail-closed answers 413, fail-open skips
    /// it. Default: what the plugin declares (`wasmgate:defaults`), else 1048576 (1 MiB).
    pub body_limit: Option<Spanned<u64>>,
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
    /// A directory of tenant files (relative to the config file): each `<id>.toml` in it holds
    /// the keys of one `[tenants.<id>]` table. Files are watched and reloaded one by one; a
    /// tenant may not be defined both there and in this file. Default: none.
    pub tenants_dir: Option<Spanned<String>>,
    /// The plugin instances' slots and idle budget (`[policy.instances]`).
    #[serde(default)]
    pub instances: RawInstances,
}

/// `[policy.instances]`: how many plugin instances may live, and how many may sit idle.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawInstances {
    /// Instance slots, engine-wide: running calls plus idle instances. Default 1000.
    pub max: Option<Spanned<u32>>,
    /// Idle instances kept, all plugins and tenants together. Default 512.
    pub idle: Option<Spanned<u32>>,
    /// Linear memory of the idle instances together, MiB. Default: 1/64 of the machine's
    /// memory, within 64..=1024.
    pub idle_memory_mib: Option<Spanned<u64>>,
    /// Idle instances kept per plugin (per tenant). Default 16.
    pub idle_per_plugin: Option<Spanned<u32>>,
    /// An instance unused this long is given back. Default `60s`.
    pub idle_timeout: Option<Spanned<String>>,
}
