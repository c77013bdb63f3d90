//! What a plugin is, before it is loaded: its kind (world), where its bytes come from, its
//! failure policy, the whole load spec, and how a call can fail.

use std::sync::Arc;
use std::time::Duration;

use super::engine::LoadError;

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Auth,
    Rewrite,
    RateLimit,
}

impl PluginKind {
    pub const ALL: [PluginKind; 3] = [PluginKind::Auth, PluginKind::Rewrite, PluginKind::RateLimit];

    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Auth => "auth",
            PluginKind::Rewrite => "rewrite",
            PluginKind::RateLimit => "rate-limit",
        }
    }

    /// The export that identifies the world.
    pub(crate) fn entry_export(self) -> &'static str {
        match self {
            PluginKind::Auth => "authenticate",
            PluginKind::Rewrite => "rewrite",
            PluginKind::RateLimit => "admit",
        }
    }
}

/// Where the component bytes come from.
#[derive(Debug, Clone)]
pub enum PluginSource {
    Path(std::path::PathBuf),
    Bytes {
        name: String,
        bytes: Arc<[u8]>,
    },
    /// Bytes whose sha256 (hex) the caller already computed: a gateway with 10,000 tenants
    /// loads the same few components 20,000 times, and hashing each copy again cost seconds.
    Hashed {
        name: String,
        bytes: Arc<[u8]>,
        sha256: Arc<str>,
    },
}

impl PluginSource {
    pub(crate) async fn read(&self, id: &str) -> Result<Vec<u8>, LoadError> {
        match self {
            PluginSource::Path(p) => tokio::fs::read(p).await.map_err(|e| LoadError::Read {
                id: id.to_string(),
                path: p.display().to_string(),
                reason: e.to_string(),
            }),
            PluginSource::Bytes { bytes, .. } | PluginSource::Hashed { bytes, .. } => Ok(bytes.to_vec()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            PluginSource::Path(p) => p.display().to_string(),
            PluginSource::Bytes { name, .. } | PluginSource::Hashed { name, .. } => name.clone(),
        }
    }
}

/// What to do when a plugin fails (trap, deadline, memory kill, bad output, breaker open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Refuse the request (503 naming the plugin).
    FailClosed,
    /// Skip the plugin and go on.
    FailOpen,
}

impl FailurePolicy {
    /// As in the config: `fail-closed`, `fail-open`.
    pub fn label(self) -> &'static str {
        match self {
            FailurePolicy::FailClosed => "fail-closed",
            FailurePolicy::FailOpen => "fail-open",
        }
    }
}

/// Largest request body handed to a plugin unless its config or declaration says otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Everything needed to load one plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub id: String,
    pub kind: PluginKind,
    pub source: PluginSource,
    pub config_json: String,
    /// Tenant (or `global`): prefixes the plugin's quota and kv keys.
    pub namespace: String,
    pub failure: FailurePolicy,
    /// Whether `failure` was set in the config (else it is the kind's default, and the
    /// plugin's own declaration takes precedence).
    pub failure_explicit: bool,
    /// `body-limit` from the config, bytes; none = the plugin's declaration, else 1 MiB.
    pub body_limit: Option<usize>,
    pub timeout: Duration,
    /// Deadline of `configure` (a config of 100,000 keys takes far longer than a call).
    pub configure_timeout: Duration,
    pub memory_limit_bytes: usize,
    pub pass_body: bool,
    pub max_reuse: u32,
}

/// How a plugin call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Trap,
    Timeout,
    MemoryLimit,
    BreakerOpen,
    Instantiate,
    BadOutput,
    /// The body is larger than the plugin's `body-limit`: the plugin was not called.
    BodyTooLarge,
    /// No instance could be had in time (the engine's pool is full): capacity, not a fault.
    Capacity,
    /// A host capability the plugin called failed (the quota store timed out): the store's
    /// fault, not the plugin's.
    StoreUnavailable,
}

impl FailureKind {
    /// Short label for messages and metrics.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::MemoryLimit => "memory",
            FailureKind::BreakerOpen => "breaker_open",
            FailureKind::Instantiate => "instantiate",
            FailureKind::BadOutput => "bad_output",
            FailureKind::BodyTooLarge => "body_too_large",
            FailureKind::Capacity => "capacity",
            FailureKind::StoreUnavailable => "store_unavailable",
        }
    }

    /// Whether this failure is the plugin's fault (counts towards its breaker). A body over the
    /// limit is the client's doing and a full pool is load; neither says the plugin is broken.
    pub fn is_fault(self) -> bool {
        !matches!(
            self,
            FailureKind::BodyTooLarge
                | FailureKind::Capacity
                | FailureKind::BreakerOpen
                | FailureKind::StoreUnavailable
        )
    }
}
