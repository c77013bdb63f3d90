//! The [`Exchange`]: everything one request carries through the phases of
//! [`pipeline`](super::pipeline), from the moment it arrives to the moment its finisher runs.
//! Phases read and write its fields; nothing is threaded as loose parameters.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::{Gateway, Snapshot, TenantRuntime};
use crate::api::{ApiRequest, Endpoint};
use crate::finisher::Finisher;
use crate::policy::RequestView;
use crate::proxy::{Route, StreamWatch};

/// What the request asks for: one of the OpenAI endpoints with a body, or the model list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Api(Endpoint),
    Models,
}

impl Operation {
    /// The bounded metric label of the route.
    pub fn label(self) -> &'static str {
        match self {
            Operation::Api(e) => e.route(),
            Operation::Models => "/v1/models",
        }
    }

    /// The endpoint name plugins see (`chat`, `completions`, `embeddings`, `models`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Api(e) => e.name(),
            Operation::Models => "models",
        }
    }
}

/// How far the policy chains have run (the header-only auth step runs a prefix of them before
/// the body is read; the rest runs after parsing).
#[derive(Debug, Default, Clone, Copy)]
pub struct ChainProgress {
    /// Plugins of the global chain already run.
    pub global: usize,
    /// Plugins of the tenant's chain already run.
    pub tenant: usize,
}

/// The upstream side of the plan, fixed by the route phase.
pub struct Plan {
    pub route: Route,
    /// The gateway asked for stream usage the client did not ask for: strip it on the way back.
    pub strip_usage: bool,
    pub watch: StreamWatch,
}

/// One request on its way through the gateway.
pub struct Exchange {
    pub gw: Arc<Gateway>,
    /// The config and plugins this request sees to its end (one `ArcSwap` load).
    pub snap: Arc<Snapshot>,
    pub op: Operation,
    pub request_id: HeaderValue,
    /// The client's request head.
    pub parts: http::request::Parts,
    /// The client's body until the read phase takes it.
    pub client_body: Option<Body>,
    /// The body as the client sent it.
    pub raw: Bytes,
    /// The typed request, from the parse phase on; edited by the policy chain.
    pub request: Option<ApiRequest>,
    /// What plugins see (kept in step with `request` by the chain's edits).
    pub view: RequestView,
    /// The tenant the path names (`/t/{tenant}/...`).
    pub path_tenant: Option<String>,
    /// The tenant assigned by the tenant phase (a configured id).
    pub tenant: Option<String>,
    pub progress: ChainProgress,
    /// Headers for the upstream request: the client's forwardable ones, plus plugin edits.
    pub upstream_headers: HeaderMap,
    /// Headers plugins add to the client's response.
    pub response_headers: Vec<(String, String)>,
    /// The typed request changed since parsing: re-serialize it before forwarding.
    pub body_edited: bool,
    pub plan: Option<Plan>,
    /// Ends the request exactly once (metrics, access log, settlement).
    pub finisher: Finisher,
}

impl Exchange {
    /// A new exchange for `req` (snapshot loaded, request id chosen, finisher started).
    pub fn new(gw: &Arc<Gateway>, op: Operation, req: axum::extract::Request, path_tenant: Option<String>) -> Self {
        let snap = gw.snapshot.load_full();
        let request_id = super::upstream_headers::request_id(req.headers());
        let (parts, body) = req.into_parts();
        let finisher = Finisher::new(gw.supervisor.clone(), op.label(), request_id.clone());
        // Only plugins read the view: without any, the headers are not copied into it.
        let view = if snap.chain.is_empty() && snap.tenants.is_empty() {
            RequestView { endpoint: op.name(), ..RequestView::default() }
        } else {
            header_view(&parts, &request_id, op.name())
        };
        Exchange {
            gw: gw.clone(),
            snap,
            op,
            request_id,
            parts,
            client_body: Some(body),
            raw: Bytes::new(),
            request: None,
            view,
            path_tenant,
            tenant: None,
            progress: ChainProgress::default(),
            upstream_headers: HeaderMap::new(),
            response_headers: Vec::new(),
            body_edited: false,
            plan: None,
            finisher,
        }
    }

    /// The assigned tenant's runtime.
    pub fn tenant_runtime(&self) -> Option<&TenantRuntime> {
        self.tenant.as_deref().and_then(|t| self.snap.tenants.get(t)).map(|rt| &**rt)
    }

    /// The snapshot, for phases that need it while they borrow the exchange mutably.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snap.clone()
    }
}

/// The view of a request before its body was read: headers, path, peer; no model yet.
fn header_view(parts: &http::request::Parts, request_id: &HeaderValue, endpoint: &'static str) -> RequestView {
    RequestView {
        id: request_id.to_str().unwrap_or_default().to_string(),
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
            .collect(),
        client_ip: parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|ci| ci.0.ip().to_canonical().to_string())
            .unwrap_or_default(),
        endpoint,
        ..RequestView::default()
    }
}

/// Fills the view with what parsing learned.
pub fn fill_view(view: &mut RequestView, api: &ApiRequest) {
    view.model = api.model().to_string();
    view.endpoint = api.endpoint().name();
    view.stream = api.stream();
    view.max_tokens = api.max_tokens();
    view.prompt_tokens_estimate = api.prompt_tokens_estimate();
}
