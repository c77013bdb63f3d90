//! **models** — the answer of `GET /v1/models` (and `/t/{tenant}/v1/models`), after the auth
//! plugins and the tenant assignment: the configured model names the caller's tenant may use
//! (all of them on a gateway without tenants, or for a tenant without an allow-list).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::exchange::Exchange;

pub fn answer(ex: &Exchange) -> Response {
    let allowed = ex.tenant_runtime().map(|rt| rt.models.as_slice());
    let data: Vec<serde_json::Value> = ex
        .snap
        .upstreams
        .model_names
        .iter()
        .filter(|m| allowed.is_none_or(|a| a.is_empty() || a.iter().any(|p| p.matches(m))))
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "wasmgate"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}
