//! What a plugin instance can reach: the WIT `host` interface (log, clock, quota, kv) and an
//! empty WASI context (no files, environment, arguments, stdio, clocks beyond WASI's own, or
//! sockets). Also the per-instance memory limiter.
//!
//! Each capability namespaces keys by tenant and plugin before they reach a shared store, so a
//! plugin can never read or spend another tenant's (or another plugin's) state.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::host_iface::Host;
use super::bindings::types::{self, Level, QuotaStatus as WitQuotaStatus};
use super::kv::{KvStore, MAX_KEY};
use super::quota::QuotaStore;

/// Shared by every instance of one loaded plugin.
pub struct Capabilities {
    pub plugin_id: String,
    /// `<namespace>\x1f<plugin id>\x1f`: prepended to every quota and kv key.
    pub key_prefix: String,
    pub quota: Arc<dyn QuotaStore>,
    pub kv: Arc<KvStore>,
    /// Bound on one host call (epochs do not count time spent in the host).
    pub host_call_timeout: Duration,
}

impl Capabilities {
    fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.key_prefix.len() + key.len());
        k.push_str(&self.key_prefix);
        k.push_str(key);
        k
    }
}

/// Caps linear memory; remembers whether the cap was hit so the failure is reported as a
/// memory kill rather than a generic trap.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    pub max_bytes: usize,
    pub hit: bool,
    /// Linear memory of the instance, all its memories together (a Python component has several).
    pub linear_bytes: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        self.linear_bytes = self.linear_bytes.saturating_add(desired.saturating_sub(current));
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The data of one plugin instance's `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub caps: Arc<Capabilities>,
    /// The request being served (for log lines).
    pub request_id: String,
    /// Epoch ticks the current call may still run (its deadline, in ticks).
    pub ticks_left: u64,
    /// While `settle` runs: when the reservation was admitted (ms since the epoch), so its
    /// `quota-adjust` calls settle against the reservation's window, not the current one.
    pub quota_origin_ms: Option<u64>,
    /// A host capability failed during the current call (the store timed out). The guest got a
    /// neutral answer instead of a trap; the chain reads this after the call and applies the
    /// failure policy as a host failure, never counted against the plugin.
    pub host_error: Option<HostError>,
}

/// A host capability that failed under a plugin call: the gateway's (or its store's) fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the quota store did not answer within {0:?}")]
    QuotaStoreTimeout(Duration),
}

impl HostState {
    pub fn new(caps: Arc<Capabilities>, memory_limit: usize) -> Self {
        HostState {
            // Nothing inherited, nothing preopened: the guest links, but reaches nothing.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { max_bytes: memory_limit, ..MemoryLimiter::default() },
            caps,
            request_id: String::new(),
            ticks_left: 0,
            quota_origin_ms: None,
            host_error: None,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for HostState {}

const MAX_LOG: usize = 4096;

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` with control characters (newlines, ESC, C1) and bidi overrides written as escapes: a
/// plugin logs what clients send, and must not forge log lines or colour a terminal.
fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(unsafe_char) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> Result<()> {
        let msg = escape_controls(truncate(&message, MAX_LOG));
        let (plugin, rid) = (&self.caps.plugin_id, &self.request_id);
        match level {
            Level::Trace => tracing::trace!(plugin = %plugin, request_id = %rid, "{msg}"),
            Level::Debug => tracing::debug!(plugin = %plugin, request_id = %rid, "{msg}"),
            Level::Info => tracing::info!(plugin = %plugin, request_id = %rid, "{msg}"),
            Level::Warn => tracing::warn!(plugin = %plugin, request_id = %rid, "{msg}"),
            Level::Error => tracing::error!(plugin = %plugin, request_id = %rid, "{msg}"),
        }
        Ok(())
    }

    async fn now_ms(&mut self) -> Result<u64> {
        Ok(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(0)).unwrap_or(0))
    }

    async fn quota_consume(&mut self, key: String, cost: u64, limit: u64, window_ms: u64) -> Result<WitQuotaStatus> {
        let k = self.caps.key(&key);
        let window = Duration::from_millis(window_ms.max(1));
        let fut = self.caps.quota.consume(&k, cost, limit, window);
        match tokio::time::timeout(self.caps.host_call_timeout, fut).await {
            Ok(s) => {
                Ok(WitQuotaStatus { allowed: s.allowed, limit: s.limit, remaining: s.remaining, reset_ms: s.reset_ms })
            }
            Err(_) => {
                // Not a trap: the plugin did nothing wrong. It is told "not allowed" and the
                // chain fails the call as the store's (see `HostState::host_error`).
                self.host_error = Some(HostError::QuotaStoreTimeout(self.caps.host_call_timeout));
                Ok(WitQuotaStatus { allowed: false, limit, remaining: 0, reset_ms: 0 })
            }
        }
    }

    async fn quota_adjust(&mut self, key: String, delta: i64, window_ms: u64) -> Result<()> {
        let k = self.caps.key(&key);
        let window = Duration::from_millis(window_ms.max(1));
        let origin = self.quota_origin_ms.unwrap_or_else(super::quota::epoch_ms);
        if tokio::time::timeout(self.caps.host_call_timeout, self.caps.quota.adjust(&k, delta, window, origin))
            .await
            .is_err()
        {
            self.host_error = Some(HostError::QuotaStoreTimeout(self.caps.host_call_timeout));
        }
        Ok(())
    }

    async fn kv_get(&mut self, key: String) -> Result<Option<String>> {
        if key.len() > MAX_KEY {
            return Ok(None);
        }
        Ok(self.caps.kv.get(&self.caps.key(&key)))
    }

    async fn kv_set(&mut self, key: String, value: String, ttl_ms: Option<u64>) -> Result<()> {
        if key.len() <= MAX_KEY {
            self.caps.kv.set(self.caps.key(&key), value, ttl_ms.map(Duration::from_millis));
        }
        Ok(())
    }

    async fn kv_delete(&mut self, key: String) -> Result<()> {
        self.caps.kv.delete(&self.caps.key(&key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn plugin_log_lines_cannot_carry_control_characters() {
        assert_eq!(escape_controls("plain text, ünïcode 日本"), "plain text, ünïcode 日本");
        let forged = "ok\n2026-01-01T00:00:00Z  INFO forged\r\x1b[31mred\u{7f}\u{85}\u{202e}";
        let escaped = escape_controls(forged);
        assert_eq!(escaped, "ok\\n2026-01-01T00:00:00Z  INFO forged\\r\\u{1b}[31mred\\u{7f}\\u{85}\\u{202e}");
        assert!(!escaped.chars().any(char::is_control));
    }
}
