//! The gateway's own types for what crosses the plugin boundary. The generated bindings are
//! converted to and from these at the boundary (`bindings.rs`), so the rest of the gateway
//! never depends on bindgen output.

/// The request as policies see it (the WIT `request` record, minus the body).
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    pub id: String,
    pub method: String,
    pub path: String,
    /// Lower-case names, in client order.
    pub headers: Vec<(String, String)>,
    /// The peer address of the client connection (not a forwarded-for header).
    pub client_ip: String,
    pub tenant: Option<String>,
    pub identity: Option<Identity>,
    pub model: String,
    /// `chat`, `completions` or `embeddings`.
    pub endpoint: &'static str,
    pub stream: bool,
    pub max_tokens: Option<u32>,
    pub prompt_tokens_estimate: u32,
    /// The configured tenant the path or Host names, before any plugin ran (not shown to
    /// plugins): keys the per-tenant breakers of global plugins until the tenant is known.
    pub breaker_scope: Option<String>,
}

/// Who is calling, as an auth plugin established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub tenant: Option<String>,
    pub metadata: Vec<(String, String)>,
}

/// One change a plugin asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    SetHeader(String, String),
    RemoveHeader(String),
    SetModel(String),
    SetMaxTokens(u32),
    PrependSystem(String),
    /// Field name and JSON text.
    SetBodyField(String, String),
    SetResponseHeader(String, String),
}

/// A response a plugin answered with itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub use wasmgate_wire::Usage;

/// How a request ended (for `settle` and the completion of the request path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    UpstreamError,
    ClientAborted,
    /// Refused before it reached the upstream (nothing spent there).
    NotForwarded,
}
