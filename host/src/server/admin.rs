//! The admin listener: Prometheus metrics and the admin API, on its own address so it can be
//! kept off the public network.
//!
//! - `GET /metrics`: Prometheus text.
//! - `GET /admin/plugins`: every plugin of the serving snapshot: id, kind, sha256, source,
//!   loaded-at, effective failure policy and body limit, breaker state (any open, and per
//!   tenant: closed/open/half-open, consecutive failures, open until), versions alive, last
//!   reload error.
//! - `GET /admin/tenants`: each tenant with its hosts, path prefix and chain (plugin versions),
//!   and the errors of its tenant file when the serving version is a previous one (`file_error`).
//! - `GET /admin/reload` status, `POST /admin/reload`: reload config and plugins now;
//!   `?force=true` applies a config the reload guards refuse (see `reload::guard`). Both name
//!   the changed keys that apply only at a restart (`restart_required`, see `reload::restart`),
//!   and broken tenant files by tenant id (`tenant_errors`).
//! - `GET /admin/config`: the serving config, resolved, secrets redacted.
//!
//! Every request but `/health` passes [`super::admin_guard`] (Host, Origin, token). Every
//! answer that could carry a config value is redacted (see [`crate::config::secrets`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use super::admin_guard::{GuardState, guard};
use crate::api::{ApiError, RenderError};
use crate::config::{Config, PluginConfig, secrets};
use crate::reload::Reloader;

#[derive(Clone)]
struct AdminState {
    reloader: Arc<Reloader>,
    metrics: Option<PrometheusHandle>,
}

pub fn router(reloader: Arc<Reloader>, metrics: Option<PrometheusHandle>, local: SocketAddr) -> Router {
    let guarded = GuardState { reloader: reloader.clone(), local };
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/health", get(|| async { "ok" }))
        .route("/admin/plugins", get(plugins))
        .route("/admin/reload", get(reload_status).post(reload))
        .route("/admin/tenants", get(tenants))
        .route("/admin/capacity", get(capacity))
        .route("/admin/config", get(config))
        .fallback(|uri: axum::http::Uri| async move { ApiError::unknown_route("GET", uri.path()).into_response() })
        // Outermost: refused requests never reach a handler (or the fallback).
        .layer(axum::middleware::from_fn_with_state(guarded, guard))
        .with_state(AdminState { reloader, metrics })
}

async fn render_metrics(State(st): State<AdminState>) -> Response {
    let body = st.metrics.as_ref().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body).into_response()
}

fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(0)).unwrap_or(0)
}

/// Every secret value of the serving config, to scrub from free text (errors) shown here.
fn known_secrets(c: &Config) -> Vec<String> {
    let mut out: Vec<String> =
        c.upstreams.values().filter_map(|u| u.api_key.as_ref()).map(|(_, k)| k.expose().to_string()).collect();
    out.extend(c.server.admin.token.as_ref().map(|(_, t)| t.expose().to_string()));
    let tenant_plugins = c.tenants.values().flat_map(|t| t.chain.iter());
    for pc in c.plugins.values().chain(tenant_plugins) {
        out.extend(pc.secrets.iter().map(|s| s.expose().to_string()));
        out.extend(secrets::secret_values(&pc.config_json));
    }
    out.sort();
    out.dedup();
    out
}

fn scrub(text: &str, known: &[String]) -> String {
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    secrets::scrub(text, &refs)
}

/// The config a loaded plugin was configured with (`tenant/plugin` ids live in tenant chains).
fn plugin_config<'a>(c: &'a Config, tenant: &str, id: &str) -> Option<&'a PluginConfig> {
    match c.tenants.get(tenant) {
        Some(t) => t.chain.iter().find(|p| p.id == id),
        None => c.plugins.get(id),
    }
}

fn plugin_json(
    p: &crate::policy::Plugin,
    tenant: &str,
    status: &crate::reload::ReloadStatus,
    c: &Config,
    known: &[String],
) -> serde_json::Value {
    let config = plugin_config(c, tenant, p.id())
        .and_then(|pc| serde_json::from_str::<serde_json::Value>(&pc.config_for_display()).ok());
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
        "last_error": status.plugin_errors.get(p.id()).map(|e| scrub(e, known)),
        "config": config,
    })
}

async fn tenants(State(st): State<AdminState>) -> Response {
    let snap = st.reloader.gateway().snapshot.load_full();
    let status = st.reloader.status();
    let known = known_secrets(&snap.config);
    let mut list: Vec<serde_json::Value> = snap
        .config
        .tenants
        .values()
        .map(|t| {
            let chain: Vec<serde_json::Value> = snap
                .tenants
                .get(&t.id)
                .map(|rt| {
                    rt.chain.plugins().iter().map(|p| plugin_json(p, &t.id, &status, &snap.config, &known)).collect()
                })
                .unwrap_or_default();
            let file_error = status.tenant_errors.get(&t.id).map(|e| scrub(e, &known));
            json!({"id": t.id, "hosts": t.hosts, "path_prefix": format!("/t/{}/v1", t.id), "chain": chain, "file_error": file_error})
        })
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Json(json!({"global_chain": snap.chain.plugins().iter().map(|p| p.id()).collect::<Vec<_>>(), "tenants": list}))
        .into_response()
}

async fn plugins(State(st): State<AdminState>) -> Response {
    let snap = st.reloader.gateway().snapshot.load_full();
    let status = st.reloader.status();
    let known = known_secrets(&snap.config);
    let mut list: Vec<serde_json::Value> =
        snap.chain.plugins().iter().map(|p| plugin_json(p, "global", &status, &snap.config, &known)).collect();
    for (id, rt) in &snap.tenants {
        list.extend(rt.chain.plugins().iter().map(|p| plugin_json(p, id, &status, &snap.config, &known)));
    }
    let config_error = status.config_error.as_deref().map(|e| scrub(e, &known));
    Json(json!({"plugins": list, "config_error": config_error})).into_response()
}

/// The plugin engine's instance slots and idle pool (`[policy.instances]`).
async fn capacity(State(st): State<AdminState>) -> Response {
    let snap = st.reloader.gateway().snapshot.load_full();
    let c = snap.engine.capacity();
    Json(json!({
        "slots": c.slots,
        "live": c.live,
        "created": c.created,
        "idle": {
            "instances": c.idle.instances,
            "bytes": c.idle.bytes,
            "plugins": c.idle.owners,
            "budget": {
                "instances": c.budget.max_instances,
                "bytes": c.budget.max_bytes,
                "per_plugin": c.budget.max_per_plugin,
                "timeout_ms": u64::try_from(c.budget.idle_timeout.as_millis()).unwrap_or(u64::MAX),
            },
        },
        "evicted": {"budget": c.evicted_budget, "idle": c.evicted_idle, "capacity": c.evicted_capacity},
    }))
    .into_response()
}

async fn config(State(st): State<AdminState>) -> Response {
    let snap = st.reloader.gateway().snapshot.load_full();
    let text = scrub(&snap.config.describe(), &known_secrets(&snap.config));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], text).into_response()
}

async fn reload_status(State(st): State<AdminState>) -> Response {
    let mut status = st.reloader.status();
    let known = known_secrets(&st.reloader.gateway().snapshot.load().config);
    status.config_error = status.config_error.map(|e| scrub(&e, &known));
    status.plugin_errors.values_mut().for_each(|e| *e = scrub(e, &known));
    status.tenant_errors.values_mut().for_each(|e| *e = scrub(e, &known));
    Json(status).into_response()
}

#[derive(serde::Deserialize)]
struct ReloadParams {
    force: Option<String>,
}

async fn reload(State(st): State<AdminState>, Query(q): Query<ReloadParams>) -> Response {
    let force = match q.force.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return ApiError::invalid_param("force", "`force` must be true or false.").into_response(),
    };
    let mut report = st.reloader.reload_with(force).await;
    let status = if report.refused {
        axum::http::StatusCode::CONFLICT
    } else if report.config_error.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let known = known_secrets(&st.reloader.gateway().snapshot.load().config);
    report.config_error = report.config_error.map(|e| scrub(&e, &known));
    report.plugin_errors.values_mut().for_each(|e| *e = scrub(e, &known));
    report.tenant_errors.values_mut().for_each(|e| *e = scrub(e, &known));
    (status, Json(report)).into_response()
}
