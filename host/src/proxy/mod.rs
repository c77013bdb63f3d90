//! Upstreams: model → upstream routing, pooled HTTP clients per endpoint (built once per
//! config, never per request; spread so one stalled stream cannot stall others, see [`pool`]),
//! forwarding with timeouts and connect-failure retry, and the response side: the SSE codec
//! ([`events`]), the response filters ([`response`]) and the relay that pumps a stream through
//! them.

mod forward;
mod pool;
mod relay;
pub mod response;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{Config, ModelPattern, UpstreamConfig};

pub use forward::{ForwardError, UpstreamBody, UpstreamRequest, send};
pub use relay::{BoxError, MAX_EVENT_BYTES, Outcome, RelayBody, RelayError, StreamWatch, collect_bounded};
pub use response::{ResponsePlan, respond};
pub use wasmgate_wire::{Usage, events};

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
pub(crate) type HttpClient = Client<Connector, Full<Bytes>>;

/// One upstream: its settings, its connection pool, and the rotation over its endpoints.
pub struct Upstream {
    pub cfg: UpstreamConfig,
    /// One pool of lanes per endpoint, in `cfg.endpoints` order.
    pub(crate) pools: Vec<Arc<pool::EndpointPool>>,
    /// Round-robin position over `cfg.endpoints`.
    pub(crate) next: AtomicUsize,
    /// `Bearer <key>`, prepared once.
    pub(crate) auth_header: Option<http::HeaderValue>,
    /// Time to response headers (a handle: no registry lookup per request).
    pub(crate) duration: metrics::Histogram,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("name", &self.cfg.name).finish_non_exhaustive()
    }
}

impl Upstream {
    fn new(cfg: UpstreamConfig) -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let limits = &cfg.limits;
        let lanes = limits.max_connections_per_endpoint;
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(cfg.max_idle_per_endpoint.div_ceil(lanes.max(1)))
            // Fixed windows, sized so a connection's window holds every stream's (see `pool`).
            .http2_adaptive_window(false)
            .http2_initial_stream_window_size(limits.http2_stream_window)
            .http2_initial_connection_window_size(limits.http2_connection_window())
            // A silently dead connection is found by a missed ping, not by a request's timeout.
            .http2_keep_alive_interval(limits.http2_keep_alive_interval)
            .http2_keep_alive_timeout(limits.http2_keep_alive_timeout)
            .http2_keep_alive_while_idle(true);
        if cfg.http2 {
            builder.http2_only(true);
        }
        let pools = cfg
            .endpoints
            .iter()
            .map(|_| pool::EndpointPool::new(lanes, limits.max_streams_per_connection, || builder.build(https.clone())))
            .collect();
        let auth_header = match &cfg.api_key {
            Some((var, key)) => {
                let mut v = http::HeaderValue::try_from(format!("Bearer {}", key.expose()))
                    .map_err(|_| format!("the key in `{var}` contains characters not allowed in a header"))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        crate::metrics::install();
        let duration = metrics::histogram!("wasmgate_upstream_duration_seconds", "upstream" => cfg.name.clone());
        Ok(Upstream { cfg, pools, next: AtomicUsize::new(0), auth_header, duration })
    }
}

/// The result of routing a model.
#[derive(Clone)]
pub struct Route {
    pub upstream: Arc<Upstream>,
    /// The model name to send upstream, if it differs from the client's.
    pub upstream_model: Option<String>,
}

/// Model → upstream routing table plus the upstreams themselves.
pub struct Upstreams {
    exact: HashMap<String, Route>,
    prefixes: Vec<(String, Route)>,
    /// Exact model names, in config order, for `/v1/models`.
    pub model_names: Vec<String>,
    by_name: HashMap<String, Arc<Upstream>>,
}

impl Upstreams {
    /// Builds the clients for every upstream in `config`. Fails only on a key that cannot be a
    /// header value (config validation catches everything else).
    pub fn from_config(config: &Config) -> Result<Self, String> {
        Self::reusing(config, None)
    }

    /// Like [`Upstreams::from_config`], but keeps the upstreams (and their warm connection
    /// pools) of `previous` whose settings did not change.
    pub fn reusing(config: &Config, previous: Option<&Upstreams>) -> Result<Self, String> {
        let mut built: HashMap<String, Arc<Upstream>> = HashMap::new();
        for (name, u) in &config.upstreams {
            let old = previous.and_then(|p| p.by_name.get(name)).filter(|o| o.cfg == *u);
            let up = match old {
                Some(o) => o.clone(),
                None => Arc::new(Upstream::new(u.clone())?),
            };
            built.insert(name.clone(), up);
        }
        let mut exact = HashMap::new();
        let mut prefixes = Vec::new();
        let mut model_names = Vec::new();
        for m in &config.models {
            let Some(up) = built.get(&m.upstream) else {
                return Err(format!("model route names unknown upstream `{}`", m.upstream));
            };
            let route = Route { upstream: up.clone(), upstream_model: m.upstream_model.clone() };
            match &m.pattern {
                ModelPattern::Exact(name) => {
                    if !exact.contains_key(name) {
                        model_names.push(name.clone());
                        exact.insert(name.clone(), route);
                    }
                }
                ModelPattern::Prefix(p) => prefixes.push((p.clone(), route)),
            }
        }
        Ok(Upstreams { exact, prefixes, model_names, by_name: built })
    }

    /// The upstream named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.by_name.get(name)
    }

    /// Finds the route for `model`: an exact name first, then the first matching prefix.
    pub fn route(&self, model: &str) -> Option<&Route> {
        self.exact
            .get(model)
            .or_else(|| self.prefixes.iter().find(|(p, _)| model.starts_with(p.as_str())).map(|(_, r)| r))
    }
}
