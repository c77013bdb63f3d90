//! The admin listener: Prometheus metrics and the admin API, on its own address so it can be
//! kept off the public network.
//!
//! - `GET /metrics`: Prometheus text.
//! - `GET /admin/plugins`: every plugin of the serving snapshot: id, kind, sha256, source,
//!   loaded-at, effective failure policy and body limit, breaker state (any open, and per
//!   tenant: closed/open/half-open, consecutive failures, open until), versions alive, last
//!   reload error.
//! - `GET /admin/tenants`: each tenant with its hosts, path prefix and chain (plugin versions).
//! - `GET /admin/reload` status, `POST /admin/reload`: reload config and plugins now.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::api::ApiError;
use crate::reload::Reloader;

#[derive(Clone)]
struct AdminState {
    reloader: Arc<Reloader>,
    metrics: Option<PrometheusHandle>,
}

pub fn router(reloader: Arc<Reloader>, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/health", get(|| async { "ok" }))
        .route("/admin/plugins", get(plugins))
        .route("/admin/reload", get(reload_status).post(reload))
        .route("/admin/tenants", get(tenants))
        .fallback(|uri: axum::http::Uri| async move { ApiError::unknown_route("GET", uri.path()).into_response() })
        .with_state(AdminState { reloader, metrics })
}

async fn render_metrics(State(st): State<AdminState>) -> Response {
    let body = st.metrics.as_ref().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body).into_response()
}

fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(0)).unwrap_or(0)
}

fn plugin_json(p: &crate::policy::Plugin, tenant: &str, status: &crate::reload::ReloadStatus) -> serde_json::Value {
    json!({
        "id": p.id(),
        "kind": p.kind().world(),
        "sha256": p.sha256(),
        "source": p.spec.source.describe(),
        "loaded_at_unix_ms": unix_ms(p.loaded_at()),
        "failure": p.failure().label(),
        "breaker_open": p.breaker_open(),
        "breakers": p.breaker_states(),
        "body_limit": p.body_limit(),
        "versions_alive": crate::policy::versions_alive(p.id()),
        "tenant": tenant,
        "last_error": status.plugin_errors.get(p.id()),
    })
}

async fn tenants(State(st): State<AdminState>) -> Response {
    let snap = st.reloader.gateway().snapshot.load_full();
    let status = st.reloader.status();
    let mut list: Vec<serde_json::Value> = snap
        .config
        .tenants
        .values()
        .map(|t| {
            let chain: Vec<serde_json::Value> = snap
                .tenants
                .get(&t.id)
                .map(|rt| rt.chain.plugins().iter().map(|p| plugin_json(p, &t.id, &status)).collect())
                .unwrap_or_default();
            json!({"id": t.id, "hosts": t.hosts, "path_prefix": format!("/t/{}/v1", t.id), "chain": chain})
        })
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Json(json!({"global_chain": snap.chain.plugins().iter().map(|p| p.id()).collect::<Vec<_>>(), "tenants": list}))
        .into_response()
}

async fn plugins(State(st): State<AdminState>) -> Response {
    let snap = st.reloader.gateway().snapshot.load_full();
    let status = st.reloader.status();
    let mut list: Vec<serde_json::Value> =
        snap.chain.plugins().iter().map(|p| plugin_json(p, "global", &status)).collect();
    for (id, rt) in &snap.tenants {
        list.extend(rt.chain.plugins().iter().map(|p| plugin_json(p, id, &status)));
    }
    Json(json!({"plugins": list, "config_error": status.config_error})).into_response()
}

async fn reload_status(State(st): State<AdminState>) -> Response {
    Json(st.reloader.status()).into_response()
}

async fn reload(State(st): State<AdminState>) -> Response {
    let report = st.reloader.reload().await;
    let status = if report.config_error.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    (status, Json(report)).into_response()
}
