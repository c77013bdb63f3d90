//! Which client headers go upstream, and the request id.
//!
//! The client's credentials (`authorization`, `x-api-key`, cookies) are the gateway's, not the
//! provider's: they never leave. Hop-by-hop headers are connection-specific. `x-wasmgate-*`
//! headers are the gateway's own (identity), so a client cannot forge them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, header};

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
}

/// The client headers that may go upstream.
pub fn forwardable(client: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(client.len());
    for (name, value) in client {
        if !is_dropped(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Response headers from the upstream that must not be relayed as they are.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(*name, header::CONNECTION | header::TRANSFER_ENCODING | header::TE | header::TRAILER | header::UPGRADE)
        || matches!(name.as_str(), "keep-alive" | "proxy-connection")
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
