//! Who may use the admin listener. Three checks, in this order, on every request but
//! `/health`:
//!
//! 1. `Host` must name this listener: an IP literal of its own address (any IP literal when it
//!    listens on all addresses), `localhost`, or a name in `server.admin-hosts`. A DNS-rebinding
//!    page reaches the listener under the attacker's name, so its `Host` is refused.
//! 2. No cross-site browser request: an `Origin` must equal `http://<Host>`, and
//!    `Sec-Fetch-Site`, when sent, must be `same-origin` or `none`. A form or `fetch` with
//!    `Content-Type: text/plain` (a CORS-simple request any web page can send) carries one of
//!    them, so a cross-site `POST /admin/reload` never runs.
//! 3. With `server.admin-token-env`, `Authorization: Bearer <token>` on `/admin/*` and every
//!    other path, and on `/metrics` too with `admin-token-metrics = true`.
//!
//! Clients that are not browsers (curl, Prometheus, kubelet probes) send neither `Origin` nor
//! `Sec-Fetch-Site` and pass check 2.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::{ApiError, RenderError};
use crate::config::AdminAccess;
use crate::reload::Reloader;

#[derive(Clone)]
pub struct GuardState {
    pub reloader: std::sync::Arc<Reloader>,
    /// The address the admin listener is bound to.
    pub local: SocketAddr,
}

pub async fn guard(State(st): State<GuardState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/health" {
        return next.run(req).await;
    }
    // Read per request: a reload may add `admin-hosts`.
    let access = st.reloader.gateway().snapshot.load().config.server.admin.clone();
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string);
    let host = host.or_else(|| req.uri().authority().map(|a| a.as_str().to_string()));
    if let Some(h) = &host
        && !host_allowed(h, st.local, &access)
    {
        tracing::warn!(host = %h.escape_debug(), path, "admin request with a foreign Host refused (DNS rebinding?)");
        return ApiError::admin_forbidden(
            "admin_host_not_allowed",
            "This Host is not the admin listener's; add it to `server.admin-hosts` if it is yours.",
        )
        .into_response();
    }
    if let Err(why) = same_origin(req.headers(), host.as_deref()) {
        tracing::warn!(why, path, "cross-site admin request refused");
        return ApiError::admin_forbidden(
            "admin_cross_site",
            format!("Cross-site admin requests are refused ({why})."),
        )
        .into_response();
    }
    let needs_token = path != "/metrics" || access.token_metrics;
    if let Some((_, token)) = &access.token
        && needs_token
        && !bearer_matches(req.headers(), token.expose())
    {
        return ApiError::admin_unauthorized().into_response();
    }
    next.run(req).await
}

/// `host` is a `Host` header value: `name`, `name:port`, `1.2.3.4:port`, `[::1]:port`.
fn host_allowed(host: &str, local: SocketAddr, access: &AdminAccess) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default().to_string(),
        None => host
            .rsplit_once(':')
            .map_or(host.as_str(), |(n, port)| if port.bytes().all(|b| b.is_ascii_digit()) { n } else { host.as_str() })
            .to_string(),
    };
    let name = name.trim_end_matches('.');
    if let Ok(ip) = name.parse::<IpAddr>() {
        return ip.is_loopback() || local.ip().is_unspecified() || ip == local.ip();
    }
    name == "localhost" || access.hosts.iter().any(|h| h == name)
}

fn same_origin(headers: &HeaderMap, host: Option<&str>) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default().to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return Err("Sec-Fetch-Site is not same-origin");
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
    let expected = host.map(|h| format!("http://{}", h.to_ascii_lowercase()));
    if Some(origin) == expected { Ok(()) } else { Err("Origin is another site") }
}

/// Constant time in the token's content (both sides hashed to 32 bytes first).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some((scheme, value)) = given.trim().split_once(' ') else { return false };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let (a, b) = (Sha256::digest(value.trim().as_bytes()), Sha256::digest(token.as_bytes()));
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn hosts_of_the_listener_pass_and_others_do_not() {
        let local: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        let access = AdminAccess { hosts: vec!["admin.internal".into()], ..AdminAccess::default() };
        for ok in ["127.0.0.1:9090", "localhost:9090", "LOCALHOST", "[::1]:9090", "admin.internal:80", "127.0.0.2"] {
            assert!(host_allowed(ok, local, &access), "{ok}");
        }
        for bad in ["evil.example", "evil.example:9090", "10.0.0.1:9090", "localhost.evil.example", "127.0.0.1.nip.io"]
        {
            assert!(!host_allowed(bad, local, &access), "{bad}");
        }
        let any: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        assert!(host_allowed("10.0.0.1:9090", any, &access));
        assert!(!host_allowed("evil.example", any, &access));
    }
}
