//! The admin listener: Prometheus metrics and the admin API, on its own address so it can be
//! kept off the public network.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use super::Gateway;
use crate::api::ApiError;

#[derive(Clone)]
struct AdminState {
    #[allow(dead_code)]
    gateway: Arc<Gateway>,
    metrics: Option<PrometheusHandle>,
}

pub fn router(gateway: Arc<Gateway>, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/health", get(|| async { "ok" }))
        .fallback(|uri: axum::http::Uri| async move { ApiError::unknown_route("GET", uri.path()).into_response() })
        .with_state(AdminState { gateway, metrics })
}

async fn render_metrics(State(st): State<AdminState>) -> Response {
    let body = st.metrics.as_ref().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body).into_response()
}
