//! Routes and the transport layers of the API listener.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use super::Gateway;
use super::pipeline::{handle, handle_models};
use crate::api::{ApiError, Endpoint, RenderError};

/// The API router: OpenAI endpoints, health, readiness.
pub fn api_router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        // The same endpoints for one tenant: /t/{tenant}/v1/...
        .route("/t/{tenant}/v1/chat/completions", post(tenant_chat))
        .route("/t/{tenant}/v1/completions", post(tenant_completions))
        .route("/t/{tenant}/v1/embeddings", post(tenant_embeddings))
        .route("/t/{tenant}/v1/models", get(tenant_models))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gw)
        .layer(
            ServiceBuilder::new()
                // Outermost: a bug that panics answers 500 in the OpenAI shape, never drops the connection.
                // Slow uploads are cut by the read phase's total body deadline (408), and
                // slow heads and idle connections by the accept loop (`server::listener`).
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("request handler panicked");
                    ApiError::internal().into_response()
                })),
        )
}

async fn health() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], r#"{"status":"ok"}"#).into_response()
}

async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    if gw.ready.load(Ordering::Relaxed) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        ApiError::not_ready("The gateway is shutting down.").into_response()
    }
}

async fn models(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    handle_models(gw, req, None).await
}

async fn tenant_models(State(gw): State<Arc<Gateway>>, Path(tenant): Path<String>, req: Request) -> Response {
    handle_models(gw, req, Some(tenant)).await
}

async fn chat(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    handle(gw, Endpoint::Chat, req, None).await
}

async fn completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    handle(gw, Endpoint::Completions, req, None).await
}

async fn embeddings(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    handle(gw, Endpoint::Embeddings, req, None).await
}

async fn tenant_chat(State(gw): State<Arc<Gateway>>, Path(tenant): Path<String>, req: Request) -> Response {
    handle(gw, Endpoint::Chat, req, Some(tenant)).await
}

async fn tenant_completions(State(gw): State<Arc<Gateway>>, Path(tenant): Path<String>, req: Request) -> Response {
    handle(gw, Endpoint::Completions, req, Some(tenant)).await
}

async fn tenant_embeddings(State(gw): State<Arc<Gateway>>, Path(tenant): Path<String>, req: Request) -> Response {
    handle(gw, Endpoint::Embeddings, req, Some(tenant)).await
}

async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::unknown_route(method.as_str(), uri.path()).into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::method_not_allowed(method.as_str(), uri.path()).into_response()
}
