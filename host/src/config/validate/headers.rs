//! Validation of the header settings: `server.trusted-proxies` and an upstream's
//! `organization`, `project`, `headers` and `forward-client-headers`.

use std::ops::Range;

use toml::Spanned;

use super::Ctx;
use crate::config::raw::RawUpstream;

/// `server.trusted-proxies`: addresses (a host block) or CIDR blocks.
pub(super) fn trusted_proxies(cx: &mut Ctx<'_>, v: &Option<Spanned<Vec<String>>>) -> Vec<ipnet::IpNet> {
    let Some(v) = v else { return Vec::new() };
    let mut nets = Vec::new();
    for text in v.get_ref() {
        let parsed = text.parse::<ipnet::IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(n) => nets.push(n.trunc()),
            Err(_) => cx.err(
                "server.trusted-proxies",
                Some(v.span()),
                format!("`{text}` is not an address or a CIDR block like \"10.0.0.0/8\""),
            ),
        }
    }
    nets
}

/// The headers an upstream's config sends itself: `organization`, `project`, `headers`.
pub(super) fn upstream_headers(
    cx: &mut Ctx<'_>,
    key: &str,
    u: &RawUpstream,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    use crate::server::upstream_headers::is_framing_or_hop_by_hop;
    let mut out: Vec<(http::HeaderName, http::HeaderValue)> = Vec::new();
    let mut push = |cx: &mut Ctx<'_>, field: &str, span: Range<usize>, name: &str, value: &str| {
        let Ok(n) = http::HeaderName::from_bytes(name.as_bytes()) else {
            cx.err(field, Some(span), format!("`{name}` is not a header name"));
            return;
        };
        if is_framing_or_hop_by_hop(n.as_str())
            || n == http::header::AUTHORIZATION
            || n.as_str().starts_with("x-wasmgate-")
        {
            let why = if n == http::header::AUTHORIZATION { " (use api-key-env)" } else { "" };
            cx.err(field, Some(span), format!("`{name}` cannot be set here{why}"));
            return;
        }
        match http::HeaderValue::from_str(value) {
            Ok(v) if !value.trim().is_empty() => {
                if out.iter().any(|(o, _)| *o == n) {
                    cx.err(field, Some(span), format!("`{n}` is set twice (`organization`/`project` set it too)"));
                } else {
                    out.push((n, v));
                }
            }
            _ => cx.err(field, Some(span), format!("the value for `{name}` must be a non-empty header value")),
        }
    };
    if let Some(o) = &u.organization {
        push(cx, &format!("{key}.organization"), o.span(), "openai-organization", o.get_ref());
    }
    if let Some(p) = &u.project {
        push(cx, &format!("{key}.project"), p.span(), "openai-project", p.get_ref());
    }
    if let Some(h) = &u.headers {
        for (name, value) in h.get_ref() {
            push(cx, &format!("{key}.headers"), h.span(), name, value);
        }
    }
    out
}

/// `forward-client-headers`: only the provider account headers are dropped by default, so only
/// they can be let through (credentials never are).
pub(super) fn forward_client_headers(cx: &mut Ctx<'_>, key: &str, u: &RawUpstream) -> Vec<http::HeaderName> {
    use crate::server::upstream_headers::PROVIDER_ACCOUNT_HEADERS;
    let Some(list) = &u.forward_client_headers else { return Vec::new() };
    let mut out = Vec::new();
    for name in list.get_ref() {
        let lower = name.to_ascii_lowercase();
        match PROVIDER_ACCOUNT_HEADERS.iter().find(|h| **h == lower) {
            Some(h) => out.push(http::HeaderName::from_static(h)),
            None => cx.err(
                format!("{key}.forward-client-headers"),
                Some(list.span()),
                format!(
                    "`{name}`: only the provider account headers ({}) can be listed; other client headers are forwarded anyway, credentials never",
                    PROVIDER_ACCOUNT_HEADERS.join(", ")
                ),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::super::tests::check;

    #[test]
    fn header_settings_are_checked_with_their_keys() {
        let errs = check(
            "[server]\ntrusted-proxies = [\"10.0.0.0/8\", \"nope\"]\n[upstreams.a]\nendpoints = [\"http://127.0.0.1:9/v1\"]\nheaders = { host = \"x\", \"x-ok\" = \"1\", authorization = \"k\" }\nforward-client-headers = [\"authorization\"]\norganization = \"\"\n",
        )
        .unwrap_err();
        let keys: Vec<(&str, Option<usize>)> = errs.errors.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert!(keys.contains(&("server.trusted-proxies", Some(2))), "{errs}");
        assert_eq!(keys.iter().filter(|k| **k == ("upstreams.a.headers", Some(5))).count(), 2, "{errs}");
        assert!(keys.contains(&("upstreams.a.forward-client-headers", Some(6))), "{errs}");
        assert!(keys.contains(&("upstreams.a.organization", Some(7))), "{errs}");
        assert_eq!(errs.errors.len(), 5, "{errs}");
        let c = check(
            "[server]\ntrusted-proxies = [\"10.1.2.3/8\", \"::1\"]\n[upstreams.a]\nendpoints = [\"http://127.0.0.1:9/v1\"]\norganization = \"org-1\"\nforward-client-headers = [\"OpenAI-Project\"]\n",
        )
        .unwrap();
        assert_eq!(
            c.server.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.0.0.0/8", "::1/128"]
        );
        assert_eq!(c.upstreams["a"].headers[0].0, "openai-organization");
        assert_eq!(c.upstreams["a"].forward_client_headers[0], "openai-project");
    }
}
