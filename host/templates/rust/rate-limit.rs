//! {{name}}: a wasmgate `rate-limit` plugin. At most `requests` requests per `window-ms` per
//! caller (the subject an auth plugin established, else the client IP), counted by the
//! gateway's quota store so every instance and worker sees the same count.

use serde::Deserialize;
use wasmgate_sdk::host::quota_consume;
use wasmgate_sdk::{Admission, Decision, Edit, Outcome, RateLimitPlugin, Request, Usage, error_response};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Requests allowed per window and caller.
    requests: u64,
    /// Window length in milliseconds.
    #[serde(default = "default_window")]
    window_ms: u64,
}

fn default_window() -> u64 {
    60_000
}

struct Plugin;

impl RateLimitPlugin for Plugin {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        if config.requests == 0 || config.window_ms == 0 {
            return Err("`requests` and `window-ms` must be at least 1".into());
        }
        Ok(())
    }

    fn admit(config: &Config, req: Request) -> Admission {
        let key = caller(&req);
        let status = quota_consume(&key, 1, config.requests, config.window_ms);
        Admission { decision: decide(status.allowed, status.limit, status.remaining, status.reset_ms), reservation: None }
    }

    /// Nothing to correct: a request costs 1 whatever its tokens were.
    fn settle(_config: &Config, _reservation: String, _usage: Option<Usage>, _outcome: Outcome) {}
}

/// Who is counted: the authenticated subject, else the client IP.
fn caller(req: &Request) -> String {
    match &req.identity {
        Some(id) => format!("subject:{}", id.subject),
        None => format!("ip:{}", req.client_ip),
    }
}

/// Admit with OpenAI-style `x-ratelimit-*` headers, or refuse with a 429 and `retry-after`.
fn decide(allowed: bool, limit: u64, remaining: u64, reset_ms: u64) -> Decision {
    let headers = [
        ("x-ratelimit-limit-requests".to_string(), limit.to_string()),
        ("x-ratelimit-remaining-requests".to_string(), remaining.to_string()),
        ("x-ratelimit-reset-requests".to_string(), format!("{reset_ms}ms")),
    ];
    if allowed {
        return Decision::Mutate(headers.into_iter().map(Edit::SetResponseHeader).collect());
    }
    let mut resp = error_response(
        429,
        &format!("Rate limit reached: {limit} requests per window. Retry later."),
        "requests",
        "rate_limit_exceeded",
    )
    .with_header("retry-after", reset_ms.div_ceil(1000).to_string());
    resp.headers.extend(headers);
    Decision::Respond(resp)
}

wasmgate_sdk::export_rate_limit!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_subject_then_ip() {
        let mut req = Request { client_ip: "203.0.113.7".into(), ..wasmgate_sdk::test_request() };
        assert_eq!(caller(&req), "ip:203.0.113.7");
        req.identity = Some(wasmgate_sdk::Identity { subject: "alice".into(), tenant: None, metadata: Vec::new() });
        assert_eq!(caller(&req), "subject:alice");
    }

    #[test]
    fn refuses_with_429_and_retry_after() {
        match decide(false, 10, 0, 1500) {
            Decision::Respond(r) => {
                assert_eq!(r.status, 429);
                assert!(r.headers.contains(&("retry-after".to_string(), "2".to_string())));
            }
            _ => panic!("expected a 429"),
        }
        assert!(matches!(decide(true, 10, 9, 1500), Decision::Mutate(_)));
    }
}
