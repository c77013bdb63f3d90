//! The one place where failures become HTTP responses, always in the OpenAI error shape:
//! `{"error":{"message":..,"type":..,"param":..,"code":..}}`.
//!
//! Every failure a client can see is an [`ApiError`]: it carries the status, the OpenAI error
//! `type` and `code`, a message written for the caller, who is to blame ([`Blame`]), whether a
//! retry may help ([`Retry`]) and the underlying cause (`source`, never shown to the client).
//! Leaf errors of each area (`ForwardError`, `PolicyFailure`, `ReadError`, …) convert into it;
//! the gateway renders and logs it once (`server::pipeline::rescue` in the gateway crate).

use http::StatusCode;
use serde::Serialize;

/// Who caused a failure: decides the log level, and which breaker or metric it counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blame {
    /// The request itself (bad JSON, too large, unknown model, no credentials).
    Client,
    /// A policy plugin, by id.
    Plugin(String),
    /// An upstream provider, by configured name.
    Upstream(String),
    /// The quota/KV state store.
    Store,
    /// The gateway (a bug, or it is shutting down or over capacity).
    Gateway,
}

impl Blame {
    /// A bounded label for metrics (`client`, `plugin`, `upstream`, `store`, `gateway`).
    pub fn label(&self) -> &'static str {
        match self {
            Blame::Client => "client",
            Blame::Plugin(_) => "plugin",
            Blame::Upstream(_) => "upstream",
            Blame::Store => "store",
            Blame::Gateway => "gateway",
        }
    }
}

/// Whether sending the same request again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    No,
    Yes,
    /// Only while nothing of the response reached the client (a fallback upstream may serve it).
    BeforeFirstByte,
}

/// The underlying cause of an [`ApiError`], for logs only.
pub type Source = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A failure that ends a request, ready to be rendered for the client. Boxed: it travels in
/// every `Result` of the request path, which stays one pointer wide on the success path.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ErrorDetails>);

/// What an [`ApiError`] says (reached through it by `Deref`).
#[derive(Debug, Clone)]
pub struct ErrorDetails {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Extra response headers (e.g. `retry-after`).
    pub headers: Vec<(&'static str, String)>,
    pub blame: Blame,
    pub retry: Retry,
    pub source: Option<Source>,
}

impl std::ops::Deref for ApiError {
    type Target = ErrorDetails;
    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorDetails {
        &mut self.0
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl ApiError {
    /// A 4xx is the client's and not worth retrying; a 5xx is the gateway's until a constructor
    /// says whose it is.
    fn new(status: StatusCode, kind: &'static str, code: Option<&'static str>, message: impl Into<String>) -> Self {
        let (blame, retry) =
            if status.is_client_error() { (Blame::Client, Retry::No) } else { (Blame::Gateway, Retry::Yes) };
        ApiError(Box::new(ErrorDetails {
            status,
            message: message.into(),
            kind,
            param: None,
            code,
            headers: Vec::new(),
            blame,
            retry,
            source: None,
        }))
    }

    /// What the error says, by value.
    pub fn into_details(self) -> ErrorDetails {
        *self.0
    }

    /// The same error, blamed on `blame`.
    pub fn blamed(mut self, blame: Blame) -> Self {
        self.blame = blame;
        self
    }

    /// The same error, with `retry`.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The same error, caused by `source` (logged, never rendered).
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }

    /// The cause chain, for the log line.
    pub fn cause_chain(&self) -> String {
        let mut out = String::new();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = self.source.as_deref().map(|e| e as _);
        while let Some(e) = cur {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }

    /// 400: the body is not valid JSON; `message` says where.
    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", Some("invalid_json"), message)
    }

    /// 400: a field is missing or invalid; `param` names it (`messages[1].role`).
    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", Some("invalid_value"), message);
        e.param = Some(param.into());
        e
    }

    /// 400: a required field is missing.
    pub fn missing_param(param: &str) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("missing_required_parameter"),
            format!("Missing required parameter: '{param}'."),
        );
        e.param = Some(param.to_string());
        e
    }

    /// 413: the body is larger than the configured limit.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!("Request body is larger than the limit of {limit} bytes."),
        )
    }

    /// 408: the client did not send its body in time.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            Some("request_timeout"),
            "The request body did not arrive in time.",
        )
    }

    /// 400: the body could not be read (the client broke the upload).
    pub fn body_unreadable() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("invalid_body"),
            "The request body could not be read.",
        )
    }

    /// 404: no route serves this model.
    pub fn model_not_found(model: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            format!("The model `{model}` does not exist or you do not have access to it."),
        );
        e.param = Some("model".to_string());
        e
    }

    /// 401: tenants are configured and nothing in the request names one.
    pub fn tenant_not_identified() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("tenant_not_identified"),
            "This gateway serves several tenants and the request names none: use /t/{tenant}/v1/..., a tenant's host name, or an API key bound to a tenant.",
        )
    }

    /// 404: the request names a tenant that does not exist.
    pub fn tenant_not_found(tenant: &str) -> Self {
        let t: String = tenant.chars().take(64).collect();
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("tenant_not_found"),
            format!("No tenant `{t}` here."),
        )
    }

    /// 403: the caller's identity belongs to another tenant than the one the request names.
    pub fn tenant_mismatch(tenant: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            Some("tenant_mismatch"),
            format!("Your API key does not belong to tenant `{tenant}`."),
        )
    }

    /// 503: the tenant already runs as many plugin chains as it may.
    pub fn tenant_busy(tenant: &str) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("tenant_busy"),
            format!("Tenant `{tenant}` has too many requests in its policy chain; retry shortly."),
        );
        e.headers.push(("retry-after", "1".to_string()));
        e
    }

    /// 404: unknown path.
    pub fn unknown_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("unknown_url"),
            format!("Unrecognized request URL ({method} {path})."),
        )
    }

    /// 405: known path, wrong method.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            Some("method_not_allowed"),
            format!("Method {method} is not allowed for {path}."),
        )
    }

    /// 502: the upstream could not be reached or broke the exchange.
    pub fn upstream_unreachable(upstream: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            Some("upstream_unreachable"),
            format!("The upstream `{upstream}` could not be reached."),
        )
        .blamed(Blame::Upstream(upstream.to_string()))
        .retry(Retry::BeforeFirstByte)
    }

    /// 502: the upstream answered something that is not a valid HTTP response for us.
    pub fn upstream_bad_response(upstream: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            Some("upstream_bad_response"),
            format!("The upstream `{upstream}` sent an invalid response."),
        )
        .blamed(Blame::Upstream(upstream.to_string()))
        .retry(Retry::BeforeFirstByte)
    }

    /// 504: the upstream did not answer in time.
    pub fn upstream_timeout(upstream: &str, what: &str) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_error",
            Some("upstream_timeout"),
            format!("The upstream `{upstream}` did not answer in time ({what})."),
        )
        .blamed(Blame::Upstream(upstream.to_string()))
        .retry(Retry::BeforeFirstByte)
    }

    /// 504, mid-stream: the upstream sent nothing for `after` (`chunk-idle-timeout`).
    pub fn upstream_stream_idle(upstream: &str, after: std::time::Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_error",
            Some("upstream_timeout"),
            format!(
                "The upstream `{upstream}` sent nothing for {}; the stream was ended.",
                humantime::format_duration(after)
            ),
        )
    }

    /// 502, mid-stream: the upstream sent an event larger than the gateway holds.
    pub fn upstream_event_too_large(upstream: &str, limit: usize) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            Some("upstream_bad_response"),
            format!("The upstream `{upstream}` sent a stream event larger than {limit} bytes; the stream was ended."),
        )
    }

    /// 503: a fail-closed policy plugin failed; the request was not forwarded.
    pub fn policy_unavailable(plugin: &str, what: &str) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("policy_unavailable"),
            format!("The policy plugin `{plugin}` failed ({what}); the request was not forwarded."),
        );
        e.headers.push(("retry-after", "1".to_string()));
        e.blamed(Blame::Plugin(plugin.to_string()))
    }

    /// 503: the quota store did not answer under a fail-closed plugin's call; the request was
    /// not forwarded. The store's fault, not the plugin's.
    pub fn quota_store_unavailable(plugin: &str) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("quota_store_unavailable"),
            format!("The quota store did not answer for the policy plugin `{plugin}`; the request was not forwarded."),
        );
        e.headers.push(("retry-after", "1".to_string()));
        e.blamed(Blame::Store)
    }

    /// 413: the body is larger than a fail-closed policy plugin accepts (its `body-limit`); the
    /// plugin was not called and the request was not forwarded.
    pub fn plugin_body_too_large(plugin: &str, limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!(
                "Request body is larger than the policy plugin `{plugin}` accepts ({limit} bytes); the request was not forwarded."
            ),
        )
    }

    /// 503: the gateway is shutting down or not ready.
    pub fn not_ready(why: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", Some("not_ready"), why.to_string())
    }

    /// 401: the admin listener requires its token (`server.admin-token-env`).
    pub fn admin_unauthorized() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_admin_token"),
            "This admin endpoint needs `Authorization: Bearer <admin token>`.",
        );
        e.headers.push(("www-authenticate", "Bearer realm=\"wasmgate-admin\"".to_string()));
        e
    }

    /// 403: an admin request from a foreign `Host` (DNS rebinding) or another site (CSRF).
    pub fn admin_forbidden(code: &'static str, why: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "invalid_request_error", Some(code), why)
    }

    /// 500: a bug in the gateway. The message never carries the cause.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            Some("internal_error"),
            "The gateway hit an internal error; it has been logged.",
        )
        .retry(Retry::No)
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// Renders an OpenAI-shaped error body.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Vec<u8> {
    let env = Envelope { error: Body { message, kind, param, code } };
    // Serializing plain strings into a Vec cannot fail; fall back to a fixed body regardless.
    serde_json::to_vec(&env)
        .unwrap_or_else(|_| br#"{"error":{"message":"error","type":"server_error","param":null,"code":null}}"#.to_vec())
}

impl ApiError {
    /// The error as the last event of an SSE stream whose status is already sent: the OpenAI
    /// error object as one `data:` event (what the OpenAI SDKs raise mid-stream).
    pub fn to_sse_event(&self) -> bytes::Bytes {
        let body = error_body(&self.message, self.kind, self.param.as_deref(), self.code);
        let mut event = Vec::with_capacity(body.len() + 8);
        event.extend_from_slice(b"data: ");
        event.extend_from_slice(&body);
        event.extend_from_slice(b"\n\n");
        event.into()
    }
}

impl ApiError {
    /// The response body: the OpenAI error object.
    pub fn body(&self) -> Vec<u8> {
        error_body(&self.message, self.kind, self.param.as_deref(), self.code)
    }
}
