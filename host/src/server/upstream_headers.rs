//! Which client headers go upstream, which upstream headers go back, and the request id.
//!
//! The client's credentials (`authorization`, `x-api-key`, cookies) are the gateway's, not the
//! provider's: they never leave. Hop-by-hop headers, and those the client's `Connection:` names,
//! are connection-specific. `x-wasmgate-*` headers are the gateway's own (identity), so a client
//! cannot forge them. The provider account headers (`OpenAI-Organization`, `OpenAI-Project`)
//! choose what the gateway's provider key bills: an upstream's config sets them or lets the
//! client's through (`forward-client-headers`), never the client alone. `X-Forwarded-*` and
//! `Forwarded` say what the gateway saw on the connection; a client's are kept (and appended
//! to) only when the TCP peer is a trusted proxy (`server.trusted-proxies`).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, header};
use ipnet::IpNet;

use crate::config::UpstreamConfig;

/// Client headers that choose the provider account billed (dropped unless an upstream allows them).
pub const PROVIDER_ACCOUNT_HEADERS: &[&str] = &["openai-organization", "openai-project"];

/// Headers about the path a request took; only a trusted proxy may send them.
const FORWARDING_HEADERS: &[&str] =
    &["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip"];

/// Framing and hop-by-hop names (and `host`): the gateway and hyper own them, so neither a
/// plugin nor an upstream's config may set them (a wrong `content-length` truncates a body or
/// desynchronises a keep-alive connection).
pub fn is_framing_or_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "content-length" | "transfer-encoding" | "connection" | "host" | "keep-alive" | "upgrade" | "te" | "trailer"
    ) || name.starts_with("proxy-")
}

/// Headers never forwarded from the client to the upstream.
fn is_dropped(name: &HeaderName) -> bool {
    matches!(
        *name,
        header::HOST
            | header::AUTHORIZATION
            | header::CONTENT_LENGTH
            | header::CONTENT_TYPE
            | header::CONNECTION
            | header::TRANSFER_ENCODING
            | header::TE
            | header::TRAILER
            | header::UPGRADE
            | header::COOKIE
            | header::ACCEPT_ENCODING
            | header::PROXY_AUTHORIZATION
            | header::EXPECT
    ) || matches!(name.as_str(), "keep-alive" | "proxy-connection" | "x-api-key")
        || name.as_str().starts_with("x-wasmgate-")
        || PROVIDER_ACCOUNT_HEADERS.contains(&name.as_str())
        || FORWARDING_HEADERS.contains(&name.as_str())
}

/// The header names a `Connection:` header lists (RFC 9110 §7.6.1: hop-by-hop for this hop).
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

/// The client headers that may go upstream.
pub fn forwardable(client: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(client);
    let mut out = HeaderMap::with_capacity(client.len());
    for (name, value) in client {
        if !is_dropped(name) && !listed.contains(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Sets `X-Forwarded-For`/`-Proto`/`-Host` and `Forwarded` from the TCP peer and the `Host` the
/// gateway received. A trusted proxy's own values are kept in front (the proxy saw the client).
pub fn add_forwarded(out: &mut HeaderMap, parts: &http::request::Parts, trusted: &[IpNet]) {
    let Some(peer) =
        parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|ci| ci.0.ip().to_canonical())
    else {
        return;
    };
    let client = &parts.headers;
    let from_proxy = trusted.iter().any(|n| n.contains(&peer));
    let host =
        client.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| parts.uri.authority().map(|a| a.as_str()));
    // What the previous hop said (only from a trusted proxy), joined with what we add.
    let chain = |name: &str, ours: Option<String>| -> Option<String> {
        let prior: Vec<&str> =
            if from_proxy { client.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect() } else { Vec::new() };
        match (prior.is_empty(), ours) {
            (true, ours) => ours,
            (false, Some(o)) => Some(format!("{}, {o}", prior.join(", "))),
            (false, None) => Some(prior.join(", ")),
        }
    };
    let first = |name: &str| if from_proxy { client.get(name).and_then(|v| v.to_str().ok()) } else { None };
    let node = match peer {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("\"[{ip}]\""),
    };
    let mut element = format!("for={node};proto=http");
    if let Some(h) = host {
        element.push_str(&format!(";host=\"{}\"", h.replace('\\', "\\\\").replace('"', "\\\"")));
    }
    let values = [
        ("x-forwarded-for", chain("x-forwarded-for", Some(peer.to_string()))),
        ("x-forwarded-proto", Some(first("x-forwarded-proto").unwrap_or("http").to_string())),
        ("x-forwarded-host", first("x-forwarded-host").or(host).map(str::to_string)),
        ("forwarded", chain("forwarded", Some(element))),
        ("x-real-ip", first("x-real-ip").map(str::to_string)),
    ];
    for (name, value) in values {
        if let Some(v) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
            out.insert(HeaderName::from_static(name), v);
        }
    }
}

/// What the chosen upstream's config adds: the client's provider account headers it lets
/// through (unless a plugin already set them), then the headers it sets itself (which win).
pub fn for_upstream(out: &mut HeaderMap, client: &HeaderMap, up: &UpstreamConfig) {
    for name in &up.forward_client_headers {
        if out.contains_key(name) || up.headers.iter().any(|(n, _)| n == name) {
            continue;
        }
        for v in client.get_all(name) {
            out.append(name.clone(), v.clone());
        }
    }
    for (name, value) in &up.headers {
        out.insert(name.clone(), value.clone());
    }
}

/// Response headers from the upstream that must not be relayed as they are.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(*name, header::CONNECTION | header::TRANSFER_ENCODING | header::TE | header::TRAILER | header::UPGRADE)
        || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// The upstream response headers relayed to the client: not hop-by-hop, not named in the
/// upstream's `Connection:`, and not the provider account (the gateway's organization).
pub fn relayable(upstream: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if !is_hop_by_hop(name) && !listed.contains(name) && !PROVIDER_ACCOUNT_HEADERS.contains(&name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Whether a plugin may set (or remove) this header; logs the refusal.
pub fn plugin_may_set(plugin_edit: &str, name: &str, request_id: &str) -> bool {
    if is_framing_or_hop_by_hop(&name.to_ascii_lowercase()) {
        tracing::warn!(request_id = %request_id, header = %name, edit = plugin_edit, "plugin edit refused: framing and hop-by-hop headers belong to the gateway");
        return false;
    }
    true
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The client's `x-request-id` if it is sane (≤ 128 visible ASCII chars), else a new one.
pub fn request_id(client: &HeaderMap) -> HeaderValue {
    if let Some(v) = client.get("x-request-id") {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    // Process-unique and roughly time-ordered: start time (seconds) and a counter.
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    HeaderValue::try_from(format!("req_{start:x}{n:010x}")).unwrap_or(HeaderValue::from_static("req_unknown"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn upstream_connection_listed_and_account_headers_are_not_relayed() {
        let up = map(&[
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("openai-organization", "org-gateway"),
            ("x-request-id", "r"),
            ("content-type", "application/json"),
        ]);
        let out = relayable(&up);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-request-id", "content-type"]);
    }

    #[test]
    fn framing_names_are_the_gateways() {
        for n in ["Content-Length", "transfer-encoding", "HOST", "connection", "te", "proxy-authorization"] {
            assert!(!plugin_may_set("set-header", n, "r"), "{n}");
        }
        for n in ["x-custom", "openai-project", "content-type", "x-ratelimit-limit"] {
            assert!(plugin_may_set("set-response-header", n, "r"), "{n}");
        }
    }
}
