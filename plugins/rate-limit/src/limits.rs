//! The pure logic, over a [`Quotas`] trait so it is unit-tested natively with a fake store.

use serde::{Deserialize, Serialize};
use wasmgate_sdk::serde_json;
use wasmgate_sdk::{Admission, Decision, Edit, Header, Outcome, QuotaStatus, Request, Response, Usage, error_body};

/// The plugin config. `requests` and `tokens` are each optional; at least one is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// What a counter is kept per. Default: `identity`.
    #[serde(default)]
    pub key: KeyKind,
    /// Requests per window.
    #[serde(default)]
    pub requests: Option<Limit>,
    /// Tokens (prompt estimate + `max_tokens`, settled to the real usage) per window.
    #[serde(default)]
    pub tokens: Option<Limit>,
    /// Completion tokens reserved when the request sets no `max_tokens`. Default: 1024.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u32,
}

fn default_max_tokens() -> u32 {
    1024
}

/// `limit` per fixed window of `window-ms`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limit {
    /// At least 1.
    pub limit: u64,
    /// At least 1.
    pub window_ms: u64,
}

/// What the counters are kept per.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// The caller: identity subject, else `tenant:<tenant>`, else `anonymous`.
    #[default]
    Identity,
    /// The tenant (request tenant, else identity tenant), else `anonymous`.
    Tenant,
    /// The model (after earlier rewrites).
    Model,
    /// `<identity key>|<model>`.
    IdentityModel,
    /// One counter for everything.
    Global,
    /// The client's IP address (the TCP peer the gateway saw), e.g. for unauthenticated routes.
    ClientIp,
}

impl Config {
    /// Checks serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.requests.is_none() && self.tokens.is_none() {
            return Err("invalid config: set `requests`, `tokens` or both".into());
        }
        for (name, limit) in [("requests", self.requests), ("tokens", self.tokens)] {
            if let Some(l) = limit {
                if l.limit == 0 {
                    return Err(format!("invalid config at `{name}.limit`: must be at least 1"));
                }
                if l.window_ms == 0 {
                    return Err(format!("invalid config at `{name}.window-ms`: must be at least 1"));
                }
            }
        }
        Ok(())
    }
}

/// The quota store (the gateway's `quota-consume` / `quota-adjust`).
pub trait Quotas {
    /// Take `cost` from `key` if it fits in `limit`.
    fn consume(&mut self, key: &str, cost: u64, limit: &Limit) -> QuotaStatus;
    /// Add `delta` to `key` in its current window, without a limit check.
    fn adjust(&mut self, key: &str, delta: i64, window_ms: u64);
}

/// What `admit` reserved, carried to `settle` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Reservation {
    /// The token quota key (`tok:<k>`).
    pub key: String,
    /// Its window.
    pub window_ms: u64,
    /// Tokens taken by `admit`.
    pub reserved: u64,
}

/// The counter key `<k>` for this request.
pub fn counter_key(kind: KeyKind, req: &Request) -> String {
    let caller = || match (&req.identity, &req.tenant) {
        (Some(id), _) => id.subject.clone(),
        (None, Some(tenant)) => format!("tenant:{tenant}"),
        (None, None) => "anonymous".to_string(),
    };
    match kind {
        KeyKind::Identity => caller(),
        KeyKind::Tenant => req
            .tenant
            .clone()
            .or_else(|| req.identity.as_ref().and_then(|id| id.tenant.clone()))
            .unwrap_or_else(|| "anonymous".into()),
        KeyKind::Model => req.model.clone(),
        KeyKind::IdentityModel => format!("{}|{}", caller(), req.model),
        KeyKind::Global => "global".into(),
        KeyKind::ClientIp => format!("ip:{}", req.client_ip),
    }
}

/// Tokens reserved for a request: prompt estimate + `max_tokens` (or the default).
pub fn token_cost(config: &Config, req: &Request) -> u64 {
    u64::from(req.prompt_tokens_estimate) + u64::from(req.max_tokens.unwrap_or(config.default_max_tokens))
}

/// OpenAI's duration format for `x-ratelimit-reset-*`: `20ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`.
pub fn openai_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let secs = format_seconds(ms % 60_000);
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

/// `ms` as seconds with the fraction only when needed: 1000 → `1`, 1200 → `1.2`, 1234 → `1.234`.
fn format_seconds(ms: u64) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return s.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{s}.{}", digits.trim_end_matches('0'))
}

/// `retry-after`: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(reset_ms: u64) -> u64 {
    reset_ms.div_ceil(1000).max(1)
}

/// The `x-ratelimit-{limit,remaining,reset}-<what>` headers for one quota.
fn rate_headers(what: &str, status: &QuotaStatus) -> [Header; 3] {
    [
        (format!("x-ratelimit-limit-{what}"), status.limit.to_string()),
        (format!("x-ratelimit-remaining-{what}"), status.remaining.to_string()),
        (format!("x-ratelimit-reset-{what}"), openai_duration(status.reset_ms)),
    ]
}

/// The whole `admit`: take a request, then reserve tokens; refuse (and undo) if either is out.
pub fn admit(config: &Config, req: &Request, quotas: &mut impl Quotas) -> Admission {
    let k = counter_key(config.key, req);
    let req_key = format!("req:{k}");
    let tok_key = format!("tok:{k}");
    let cost = token_cost(config, req);

    let req_status = config.requests.as_ref().map(|l| (l, quotas.consume(&req_key, 1, l)));
    if let Some((_, status)) = req_status.as_ref().filter(|(_, s)| !s.allowed) {
        // Peek (cost 0 always fits) so the 429 carries the token headers too.
        let tok_status = config.tokens.as_ref().map(|l| quotas.consume(&tok_key, 0, l));
        return refuse("requests", 1, status, Some(status), tok_status.as_ref());
    }

    let tok_status = config.tokens.as_ref().map(|l| (l, quotas.consume(&tok_key, cost, l)));
    if let Some((_, status)) = tok_status.as_ref().filter(|(_, s)| !s.allowed) {
        // Give back the request this refused call took.
        let req_status = req_status.map(|(l, mut s)| {
            quotas.adjust(&req_key, -1, l.window_ms);
            s.remaining = s.remaining.saturating_add(1).min(s.limit);
            s
        });
        return refuse("tokens", cost, status, req_status.as_ref(), Some(status));
    }

    let mut edits = Vec::new();
    if let Some((_, s)) = &req_status {
        edits.extend(rate_headers("requests", s).map(Edit::SetResponseHeader));
    }
    if let Some((_, s)) = &tok_status {
        edits.extend(rate_headers("tokens", s).map(Edit::SetResponseHeader));
    }
    let reservation = tok_status.map(|(l, _)| Reservation { key: tok_key, window_ms: l.window_ms, reserved: cost });
    Admission {
        decision: Decision::Mutate(edits),
        reservation: reservation.and_then(|r| serde_json::to_string(&r).ok()),
    }
}

/// A 429 for the quota `what` (`requests` or `tokens`) that refused `requested`.
fn refuse(
    what: &str,
    requested: u64,
    refused: &QuotaStatus,
    requests: Option<&QuotaStatus>,
    tokens: Option<&QuotaStatus>,
) -> Admission {
    let wait = format_seconds(refused.reset_ms.max(1));
    let message = if requested > refused.limit {
        format!(
            "Request too large for {what}: Limit {}, Requested {requested}. Reduce the prompt or max_tokens.",
            refused.limit
        )
    } else {
        format!(
            "Rate limit reached for {what}: Limit {}, Remaining {}, Requested {requested}. Please try again in {wait}s.",
            refused.limit, refused.remaining
        )
    };
    let mut headers = vec![("retry-after".to_string(), retry_after_secs(refused.reset_ms).to_string())];
    if let Some(s) = requests {
        headers.extend(rate_headers("requests", s));
    }
    if let Some(s) = tokens {
        headers.extend(rate_headers("tokens", s));
    }
    Admission {
        decision: Decision::Respond(Response {
            status: 429,
            headers,
            body: error_body(&message, what, None, Some("rate_limit_exceeded")),
        }),
        reservation: None,
    }
}

/// The whole `settle`: correct the token reservation with what the request really used.
///
/// - usage reported → adjust by `total_tokens - reserved` (refund or extra charge);
/// - `client-aborted` with usage (the upstream's, or the gateway's count of the prompt and the
///   output relayed before the abort) → charge the larger of it and the reservation: never a
///   refund (the upstream may have generated more than was relayed), never less than relayed;
/// - no usage, `upstream-error` or `not-forwarded` → refund everything reserved;
/// - no usage, `client-aborted` or `completed` → keep the reservation charged (the upstream
///   may have spent the tokens; we cannot tell).
pub fn settle(
    reservation: &str,
    usage: Option<Usage>,
    outcome: Outcome,
    quotas: &mut impl Quotas,
) -> Result<(), String> {
    let r: Reservation = serde_json::from_str(reservation).map_err(|e| e.to_string())?;
    let reserved = i64::try_from(r.reserved).map_err(|e| e.to_string())?;
    let delta = match (usage, outcome) {
        (Some(u), Outcome::ClientAborted) => (i64::from(u.total_tokens) - reserved).max(0),
        (Some(u), _) => i64::from(u.total_tokens) - reserved,
        (None, Outcome::UpstreamError | Outcome::NotForwarded) => -reserved,
        (None, Outcome::ClientAborted | Outcome::Completed) => 0,
    };
    if delta != 0 {
        quotas.adjust(&r.key, delta, r.window_ms);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use std::collections::HashMap;

    use super::*;
    use wasmgate_sdk::{Identity, parse_config, test_request};

    /// A fixed-window store frozen in time: every window ends in `reset_ms`.
    #[derive(Default)]
    struct Fake {
        used: HashMap<String, u64>,
        adjusts: Vec<(String, i64)>,
    }

    impl Quotas for Fake {
        fn consume(&mut self, key: &str, cost: u64, limit: &Limit) -> QuotaStatus {
            let used = self.used.entry(key.into()).or_default();
            let allowed = *used + cost <= limit.limit;
            if allowed {
                *used += cost;
            }
            QuotaStatus { allowed, limit: limit.limit, remaining: limit.limit - *used, reset_ms: 1200 }
        }

        fn adjust(&mut self, key: &str, delta: i64, _window_ms: u64) {
            self.adjusts.push((key.into(), delta));
            let used = self.used.entry(key.into()).or_default();
            *used = used.saturating_add_signed(delta);
        }
    }

    fn cfg(json: &str) -> Config {
        let c: Config = parse_config(json).unwrap();
        c.validate().unwrap();
        c
    }

    fn alice() -> Request {
        Request {
            identity: Some(Identity { subject: "alice".into(), tenant: Some("acme".into()), metadata: vec![] }),
            prompt_tokens_estimate: 10,
            client_ip: String::new(),
            max_tokens: Some(90),
            ..test_request()
        }
    }

    fn header<'a>(headers: &'a [Header], name: &str) -> &'a str {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap()
    }

    #[test]
    fn keys() {
        let anon = test_request();
        let tenant_only = Request { tenant: Some("t".into()), ..test_request() };
        assert_eq!(counter_key(KeyKind::Identity, &alice()), "alice");
        assert_eq!(counter_key(KeyKind::Identity, &tenant_only), "tenant:t");
        assert_eq!(counter_key(KeyKind::Identity, &anon), "anonymous");
        assert_eq!(counter_key(KeyKind::Tenant, &alice()), "acme");
        assert_eq!(counter_key(KeyKind::Model, &alice()), "gpt-4o-mini");
        assert_eq!(counter_key(KeyKind::IdentityModel, &alice()), "alice|gpt-4o-mini");
        assert_eq!(counter_key(KeyKind::Global, &alice()), "global");
        let from_ip = Request { client_ip: "203.0.113.7".into(), ..alice() };
        assert_eq!(counter_key(KeyKind::ClientIp, &from_ip), "ip:203.0.113.7");
    }

    #[test]
    fn durations() {
        assert_eq!(openai_duration(20), "20ms");
        assert_eq!(openai_duration(1000), "1s");
        assert_eq!(openai_duration(1200), "1.2s");
        assert_eq!(openai_duration(360_000), "6m0s");
        assert_eq!(openai_duration(3_661_500), "1h1m1.5s");
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(1200), 2);
        assert_eq!(retry_after_secs(3000), 3);
    }

    #[test]
    fn admits_with_headers_and_reservation_then_refuses_requests() {
        let c = cfg(r#"{"requests":{"limit":2,"window-ms":60000},"tokens":{"limit":1000,"window-ms":60000}}"#);
        let mut q = Fake::default();
        let a = admit(&c, &alice(), &mut q);
        let Decision::Mutate(edits) = &a.decision else { panic!("{a:?}") };
        assert_eq!(edits.len(), 6);
        assert!(edits.contains(&Edit::SetResponseHeader(("x-ratelimit-remaining-requests".into(), "1".into()))));
        assert!(edits.contains(&Edit::SetResponseHeader(("x-ratelimit-remaining-tokens".into(), "900".into()))));
        assert!(edits.contains(&Edit::SetResponseHeader(("x-ratelimit-reset-tokens".into(), "1.2s".into()))));
        let r: Reservation = serde_json::from_str(a.reservation.as_deref().unwrap()).unwrap();
        assert_eq!(r, Reservation { key: "tok:alice".into(), window_ms: 60000, reserved: 100 });

        admit(&c, &alice(), &mut q);
        let a = admit(&c, &alice(), &mut q);
        let Decision::Respond(resp) = &a.decision else { panic!("{a:?}") };
        assert_eq!(resp.status, 429);
        assert!(a.reservation.is_none());
        assert_eq!(header(&resp.headers, "retry-after"), "2");
        assert_eq!(header(&resp.headers, "x-ratelimit-remaining-requests"), "0");
        assert_eq!(header(&resp.headers, "x-ratelimit-remaining-tokens"), "800");
        let body: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
        assert_eq!(body["error"]["type"], "requests");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert!(body["error"]["param"].is_null());
        assert!(body["error"]["message"].as_str().unwrap().ends_with("Please try again in 1.2s."));
    }

    #[test]
    fn token_refusal_refunds_the_request() {
        let c = cfg(r#"{"requests":{"limit":10,"window-ms":1000},"tokens":{"limit":150,"window-ms":1000}}"#);
        let mut q = Fake::default();
        assert!(matches!(admit(&c, &alice(), &mut q).decision, Decision::Mutate(_)));
        let a = admit(&c, &alice(), &mut q);
        let Decision::Respond(resp) = &a.decision else { panic!("{a:?}") };
        assert!(resp.body.contains(r#""type":"tokens""#));
        assert_eq!(q.adjusts, vec![("req:alice".to_string(), -1)]);
        assert_eq!(q.used["req:alice"], 1);
        assert_eq!(header(&resp.headers, "x-ratelimit-remaining-requests"), "9");
        assert_eq!(header(&resp.headers, "x-ratelimit-remaining-tokens"), "50");
        // Larger than the whole limit: a different message, still 429.
        let huge = Request { max_tokens: Some(10_000), ..alice() };
        let Decision::Respond(resp) = admit(&c, &huge, &mut q).decision else { panic!() };
        assert!(resp.body.contains("Request too large for tokens"));
    }

    #[test]
    fn requests_only_reserves_nothing_and_default_max_tokens_applies() {
        let c = cfg(r#"{"key":"global","requests":{"limit":5,"window-ms":1000}}"#);
        let a = admit(&c, &alice(), &mut Fake::default());
        assert!(a.reservation.is_none());
        let c = cfg(r#"{"tokens":{"limit":5000,"window-ms":1000}}"#);
        assert_eq!(token_cost(&c, &Request { max_tokens: None, ..alice() }), 10 + 1024);
    }

    #[test]
    fn settle_rules() {
        let r = r#"{"key":"tok:alice","window-ms":60000,"reserved":100}"#;
        let usage = Usage { prompt_tokens: 10, completion_tokens: 30, total_tokens: 40 };
        let mut q = Fake::default();
        settle(r, Some(usage), Outcome::Completed, &mut q).unwrap();
        settle(r, None, Outcome::UpstreamError, &mut q).unwrap();
        settle(r, None, Outcome::ClientAborted, &mut q).unwrap();
        settle(r, None, Outcome::NotForwarded, &mut q).unwrap();
        let refund = ("tok:alice".to_string(), -100);
        assert_eq!(q.adjusts, vec![("tok:alice".to_string(), -60), refund.clone(), refund]);
        assert!(settle("nope", None, Outcome::Completed, &mut q).is_err());
    }

    #[test]
    fn an_abort_charges_at_least_what_was_relayed_and_never_refunds() {
        let r = r#"{"key":"tok:alice","window-ms":60000,"reserved":1028}"#;
        let mut q = Fake::default();
        let streamed = Usage { prompt_tokens: 4, completion_tokens: 2900, total_tokens: 2904 };
        settle(r, Some(streamed), Outcome::ClientAborted, &mut q).unwrap();
        let early = Usage { prompt_tokens: 4, completion_tokens: 10, total_tokens: 14 };
        settle(r, Some(early), Outcome::ClientAborted, &mut q).unwrap();
        assert_eq!(q.adjusts, vec![("tok:alice".to_string(), 2904 - 1028)]);
    }

    #[test]
    fn config_errors() {
        assert!(parse_config::<Config>("{}").unwrap().validate().is_err());
        let err = parse_config::<Config>(r#"{"key":"user"}"#).unwrap_err();
        assert!(err.contains("`key`"), "{err}");
        let err = parse_config::<Config>(r#"{"tokens":{"limit":1}}"#).unwrap_err();
        assert!(err.contains("`tokens`") && err.contains("window-ms"), "{err}");
        let zero: Config = parse_config(r#"{"requests":{"limit":0,"window-ms":1}}"#).unwrap();
        assert!(zero.validate().unwrap_err().contains("`requests.limit`"));
    }
}
