//! Gateway configuration: a strict TOML file ([`raw`]) validated into [`Config`], whose fields
//! are resolved (addresses parsed, durations read, paths made absolute, references checked)
//! so the rest of the gateway never handles an `Option` it has to guess about.
//!
//! Every validation error names its key and, when it comes from a file, its line.

mod embedded;
mod keypath;
mod print;
#[cfg(test)]
mod props;
mod raw;
pub mod secrets;
mod tenants_dir;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use embedded::{DEMO_API_KEY, embedded_default};
pub(crate) use tenants_dir::FileStamp;
pub use tenants_dir::{DirTenants, TenantFiles, tenant_file_id, tenant_files};
pub use validate::{ConfigError, ConfigErrors};

/// A validated gateway configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    pub models: Vec<ModelRoute>,
    pub plugins: BTreeMap<String, PluginConfig>,
    pub policy: PolicyConfig,
    /// Tenants by id (empty: every request runs the global chain only).
    pub tenants: BTreeMap<String, TenantConfig>,
    /// The file this came from (None for the embedded default).
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    /// Peers whose forwarding headers are trusted (`server.trusted-proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The connection layer's deadlines and limits (`server::listener`).
    pub connections: ConnectionLimits,
    /// What guards the admin listener (token, allowed Host names).
    pub admin: AdminAccess,
}

/// Access control of the admin listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminAccess {
    /// Env var the token came from (for display), and the token. None: no token required.
    pub token: Option<(String, Secret)>,
    /// `/metrics` needs the token too.
    pub token_metrics: bool,
    /// Extra allowed `Host` names, lower-case, without port.
    pub hosts: Vec<String>,
}

/// Deadlines and limits of client connections, from `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub http2_keep_alive_interval: Duration,
    /// `None`: derived from the open-file limit at start.
    pub max_connections: Option<usize>,
    pub listen_backlog: u32,
}

/// A secret read from the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One upstream base URL, split for cheap request building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Path prefix without a trailing slash (`/v1`), may be empty.
    pub base_path: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    /// Env var the key came from (for display), and the key.
    pub api_key: Option<(String, Secret)>,
    pub http2: bool,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub total_timeout: Duration,
    pub max_idle_per_endpoint: usize,
    /// Headers the upstream config sends itself (`organization`, `project`, `headers`).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Client headers let through although dropped by default (`forward-client-headers`).
    pub forward_client_headers: Vec<http::HeaderName>,
    pub limits: UpstreamLimits,
}

/// How an upstream's connections are shared and its streams watched (see `raw.rs` for each
/// key and its default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLimits {
    pub max_connections_per_endpoint: usize,
    pub max_streams_per_connection: usize,
    pub http2_stream_window: u32,
    pub http2_keep_alive_interval: Duration,
    pub http2_keep_alive_timeout: Duration,
    pub client_stall_timeout: Duration,
    pub chunk_idle_timeout: Duration,
}

impl UpstreamLimits {
    /// Every stream's window fits in the connection's (validation keeps this below 2^31).
    pub fn http2_connection_window(&self) -> u32 {
        let streams = u32::try_from(self.max_streams_per_connection).unwrap_or(u32::MAX);
        self.http2_stream_window.saturating_mul(streams).min(MAX_H2_WINDOW)
    }
}

/// The largest HTTP/2 flow-control window (RFC 9113 §6.9.1).
pub const MAX_H2_WINDOW: u32 = (1 << 31) - 1;

/// How a model name is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelPattern {
    Exact(String),
    /// `prefix*`
    Prefix(String),
}

impl ModelPattern {
    pub fn matches(&self, model: &str) -> bool {
        match self {
            ModelPattern::Exact(m) => m == model,
            ModelPattern::Prefix(p) => model.starts_with(p.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRoute {
    pub pattern: ModelPattern,
    pub upstream: String,
    pub upstream_model: Option<String>,
}

/// The kind of a plugin: which WIT world it implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKindConfig {
    Auth,
    Rewrite,
    RateLimit,
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PluginLocation {
    File(PathBuf),
    /// One of the reference plugins compiled into the binary (`builtin:auth-keys`).
    Builtin(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    FailClosed,
    FailOpen,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    pub id: String,
    pub kind: PluginKindConfig,
    pub location: PluginLocation,
    /// The plugin's own config, as the JSON its `configure` receives.
    pub config_json: String,
    pub failure: FailureMode,
    pub timeout: Duration,
    pub configure_timeout: Duration,
    pub memory_limit_bytes: usize,
    pub pass_body: bool,
    pub max_reuse: u32,
    /// Whether `failure` was written in the config (else `failure` is the kind's default and
    /// the plugin's own declaration takes precedence).
    pub failure_explicit: bool,
    /// `body-limit` if written (else the plugin's declaration, else 1 MiB).
    pub body_limit: Option<usize>,
    /// Values of `config_json` read from the environment (`NAME-env` keys): never shown.
    pub secrets: Vec<Secret>,
}

impl PluginConfig {
    /// `config_json` as it may be shown: secrets redacted (see [`secrets`]).
    pub fn config_for_display(&self) -> String {
        secrets::redact_config_json(&self.config_json, &self.secrets)
    }
}

/// One tenant: how requests are assigned to it, its own chain, its models.
///
/// A request's tenant is, in this order: the `/t/{tenant}/v1/...` path prefix, the `Host`
/// header, or the tenant of the identity the global chain's auth plugin returned.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    pub id: String,
    pub hosts: Vec<String>,
    /// The tenant's plugins, configs already resolved (ids are `<tenant>/<plugin>`).
    pub chain: Vec<PluginConfig>,
    /// Allowed models; empty = all.
    pub models: Vec<ModelPattern>,
    /// Requests running this tenant's chain at once.
    pub max_concurrent_plugin_calls: u32,
    /// Upstream name → the upstream this tenant uses instead.
    pub upstream_overrides: BTreeMap<String, String>,
    /// Tenant-less identities from the global chain may use this tenant.
    pub allow_global_identities: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    pub chain: Vec<String>,
    pub cache_dir: Option<PathBuf>,
    pub forward_identity: bool,
    /// Where tenant files are read from (`policy.tenants-dir`, made absolute); their tenants
    /// are in [`Config::tenants`] beside the main file's.
    pub tenants_dir: Option<PathBuf>,
    /// `[policy.instances]`, defaults resolved.
    pub instances: InstanceLimits,
}

/// How many plugin instances may live and sit idle (`[policy.instances]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Instance slots: running calls plus idle instances.
    pub max: u32,
    /// Idle instances kept, engine-wide.
    pub idle: u32,
    /// Their linear memory together, bytes.
    pub idle_memory_bytes: usize,
    pub idle_per_plugin: u32,
    pub idle_timeout: Duration,
}

impl Config {
    /// Reads and validates a config file and its tenants dir; any error fails the whole load.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let (config, broken) = Config::load_with(path, &mut TenantFiles::default())?;
        all_or_nothing(config, broken)
    }

    /// Reads and validates a config file; tenant files are read through `files` (only those
    /// that changed since its last load). A broken tenant file does not fail the load: its
    /// tenant is left out and its errors returned by tenant id (the reloader keeps that
    /// tenant's previous version). Err: the main file (or the tenants dir) is invalid.
    pub fn load_with(
        path: &Path,
        files: &mut TenantFiles,
    ) -> Result<(Config, BTreeMap<String, ConfigErrors>), ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(ConfigError::new("", None, format!("cannot read {}: {e}", path.display())))
        })?;
        // An empty file is a truncation or a failed write, never an intended config: it
        // would validate as "no models, no plugins" and a reload would serve that.
        if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            let msg = format!("{} is empty (no settings); refusing it", path.display());
            return Err(ConfigErrors::single(ConfigError::new("", None, msg)));
        }
        let env = |name: &str| std::env::var(name).ok();
        let config = validate::parse(&text, Some(path), &env)?;
        with_dir_tenants(config, files, &env)
    }

    /// Validates config text; `path` resolves relative paths (plugins, `tenants-dir`) and
    /// labels errors. A tenants dir is read too.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigErrors> {
        Config::parse_with_env(text, path, &|name| std::env::var(name).ok())
    }

    /// Like [`Config::parse`], reading environment variables through `env` (tests, embedders
    /// that keep secrets elsewhere).
    pub fn parse_with_env(
        text: &str,
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let config = validate::parse(text, path, env)?;
        let (config, broken) = with_dir_tenants(config, &mut TenantFiles::default(), env)?;
        all_or_nothing(config, broken)
    }

    /// The resolved config as a config file (TOML), secrets redacted (`config check --print`).
    pub fn describe(&self) -> String {
        print::to_toml(self)
    }
}

/// Adds the tenants of `config`'s tenants dir; broken files are returned by tenant id.
fn with_dir_tenants(
    mut config: Config,
    files: &mut TenantFiles,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, BTreeMap<String, ConfigErrors>), ConfigErrors> {
    let DirTenants { tenants, errors } = files.load(&config, env)?;
    config.tenants.extend(tenants);
    Ok((config, errors))
}

/// `config`, or every error of every broken tenant file, each naming its file.
fn all_or_nothing(config: Config, broken: BTreeMap<String, ConfigErrors>) -> Result<Config, ConfigErrors> {
    if broken.is_empty() {
        return Ok(config);
    }
    let errors = broken.into_values().flat_map(ConfigErrors::into_located).collect();
    Err(ConfigErrors { file: config.source.as_ref().map(|p| p.display().to_string()), errors })
}
