//! Conversions at the plugin boundary, and the checks on what plugins return: a plugin's
//! output is untrusted input to the gateway.

use super::bindings::types as wit;
use super::defaults::PluginDefaults;
use super::plugin::{FailureKind, PluginKind};
use super::view::{Edit, Identity, LocalResponse, Outcome, RequestView, Usage};

const MAX_BODY: usize = 1 << 20;
const MAX_HEADER_VALUE: usize = 64 << 10;
const MAX_EDITS: usize = 256;

/// Headers only auth plugins may see.
pub(crate) fn is_credential(name: &str) -> bool {
    matches!(name, "authorization" | "x-api-key" | "cookie" | "proxy-authorization")
}

/// The WIT request for one plugin: the headers it declares it reads (all without a
/// declaration), credentials only for auth, the body only if asked for.
pub fn request(view: &RequestView, kind: PluginKind, declared: &PluginDefaults, body: Option<&[u8]>) -> wit::Request {
    let headers = view
        .headers
        .iter()
        .filter(|(n, _)| (kind == PluginKind::Auth || !is_credential(n)) && declared.reads_header(n))
        .cloned()
        .collect();
    wit::Request {
        id: view.id.clone(),
        method: view.method.clone(),
        path: view.path.clone(),
        headers,
        client_ip: view.client_ip.clone(),
        tenant: view.tenant.clone(),
        identity: view.identity.as_ref().map(|i| wit::Identity {
            subject: i.subject.clone(),
            tenant: i.tenant.clone(),
            metadata: i.metadata.clone(),
        }),
        model: view.model.clone(),
        endpoint: view.endpoint.to_string(),
        stream: view.stream,
        max_tokens: view.max_tokens,
        prompt_tokens_estimate: view.prompt_tokens_estimate,
        body: body.map(|b| String::from_utf8_lossy(b).into_owned()),
    }
}

fn header_ok(name: &str, value: &str) -> bool {
    value.len() <= MAX_HEADER_VALUE
        && http::HeaderName::try_from(name).is_ok()
        && http::HeaderValue::try_from(value).is_ok()
}

pub fn response(r: wit::Response) -> Result<LocalResponse, FailureKind> {
    if !(100..=599).contains(&r.status) || r.body.len() > MAX_BODY || r.headers.len() > MAX_EDITS {
        return Err(FailureKind::BadOutput);
    }
    if !r.headers.iter().all(|(n, v)| header_ok(n, v)) {
        return Err(FailureKind::BadOutput);
    }
    Ok(LocalResponse { status: r.status, headers: r.headers, body: r.body })
}

pub fn identity(i: wit::Identity) -> Result<Identity, FailureKind> {
    if i.subject.is_empty() || i.subject.len() > 256 || i.metadata.len() > 64 {
        return Err(FailureKind::BadOutput);
    }
    Ok(Identity { subject: i.subject, tenant: i.tenant, metadata: i.metadata })
}

pub fn edits(list: Vec<wit::Edit>) -> Result<Vec<Edit>, FailureKind> {
    if list.len() > MAX_EDITS {
        return Err(FailureKind::BadOutput);
    }
    list.into_iter()
        .map(|e| {
            Ok(match e {
                wit::Edit::SetHeader((n, v)) if header_ok(&n, &v) => Edit::SetHeader(n.to_ascii_lowercase(), v),
                wit::Edit::SetResponseHeader((n, v)) if header_ok(&n, &v) => {
                    Edit::SetResponseHeader(n.to_ascii_lowercase(), v)
                }
                wit::Edit::RemoveHeader(n) if http::HeaderName::try_from(n.as_str()).is_ok() => {
                    Edit::RemoveHeader(n.to_ascii_lowercase())
                }
                wit::Edit::SetModel(m) if !m.is_empty() && m.len() <= 256 => Edit::SetModel(m),
                wit::Edit::SetMaxTokens(n) if n > 0 => Edit::SetMaxTokens(n),
                wit::Edit::PrependSystem(t) if t.len() <= MAX_BODY => Edit::PrependSystem(t),
                wit::Edit::SetBodyField((n, v)) if v.len() <= MAX_BODY => Edit::SetBodyField(n, v),
                _ => return Err(FailureKind::BadOutput),
            })
        })
        .collect()
}

pub fn usage(u: Usage) -> wit::Usage {
    wit::Usage { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens }
}

pub fn outcome(o: Outcome) -> wit::Outcome {
    match o {
        Outcome::Completed => wit::Outcome::Completed,
        Outcome::UpstreamError => wit::Outcome::UpstreamError,
        Outcome::ClientAborted => wit::Outcome::ClientAborted,
        Outcome::NotForwarded => wit::Outcome::NotForwarded,
    }
}

#[cfg(test)]
#[path = "convert_props.rs"]
mod props;
