//! wasmgate plugin (`rate-limit` world): request and token rate limits on quotas kept by the
//! gateway, with OpenAI-style `429` answers and `x-ratelimit-*` headers. See `README.md`.

mod limits;

use wasmgate_sdk::host::{quota_adjust, quota_consume};
use wasmgate_sdk::{Admission, Outcome, RateLimitPlugin, Request, Usage};

pub use limits::{Config, KeyKind, Limit, Quotas};

struct RateLimit;

/// The gateway's quota store, as [`Quotas`] for the pure logic.
struct HostQuotas;

impl Quotas for HostQuotas {
    fn consume(&mut self, key: &str, cost: u64, limit: &Limit) -> wasmgate_sdk::QuotaStatus {
        quota_consume(key, cost, limit.limit, limit.window_ms)
    }

    fn adjust(&mut self, key: &str, delta: i64, window_ms: u64) {
        quota_adjust(key, delta, window_ms);
    }
}

impl RateLimitPlugin for RateLimit {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn admit(config: &Config, req: Request) -> Admission {
        limits::admit(config, &req, &mut HostQuotas)
    }

    fn settle(config: &Config, reservation: String, usage: Option<Usage>, outcome: Outcome) {
        let _ = config;
        if let Err(err) = limits::settle(&reservation, usage, outcome, &mut HostQuotas) {
            wasmgate_sdk::warn!("rate-limit: cannot settle reservation {reservation:?}: {err}");
        }
    }
}

wasmgate_sdk::export_rate_limit!(RateLimit);
// Counters are kept per identity, tenant, model or client address, never per header.
wasmgate_sdk::declare_headers!();
