//! Shared state, the request prelude every `/v1` handler runs ([`admit`]), and the small
//! endpoints (models, health, stats, recorded requests, 404).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, header};
use serde::Serialize;
use serde_json::Value;

use super::controls::{Controls, Stall, invalid_request, openai_error};
use super::record::{RecordedRequest, RequestRecorder, header_map};
use super::{MockConfig, MockStats};

/// `created` of every listed model: a fixed instant keeps `/v1/models` byte-for-byte stable.
const MODEL_CREATED: u64 = 1_700_000_000;

pub(crate) type Shared = Arc<MockState>;

pub(crate) struct MockState {
    pub cfg: MockConfig,
    pub stats: Arc<MockStats>,
    recorder: Arc<RequestRecorder>,
    /// Source of `chatcmpl-mock-<n>` / `cmpl-mock-<n>` ids.
    next_id: AtomicU64,
    /// `/v1/models`, serialized once.
    models_json: Bytes,
}

impl MockState {
    pub fn new(cfg: MockConfig, stats: Arc<MockStats>, recorder: Arc<RequestRecorder>) -> Self {
        let models: Vec<ModelObject<'_>> = cfg.models.iter().map(|id| ModelObject::new(id)).collect();
        let list = ModelList { object: "list", data: models };
        let models_json = serde_json::to_vec(&list).map(Bytes::from).unwrap_or_default();
        Self { cfg, stats, recorder, next_id: AtomicU64::new(1), models_json }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Counts a `/v1` request as in flight until dropped; streams move it into their body.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<MockStats>);

impl InFlight {
    fn new(stats: &Arc<MockStats>) -> Self {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(stats.clone())
    }

    pub fn stats(&self) -> &MockStats {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request that passed the prelude.
pub(crate) struct Admitted {
    pub in_flight: InFlight,
    pub controls: Controls,
    pub headers: BTreeMap<String, String>,
    /// The parsed JSON body (`null` for an empty body).
    pub body: Value,
}

/// The prelude of every `/v1` handler: count, read the control headers, record, then
/// short-circuit on an injected status, a header stall or a malformed body. `Err` is the
/// response to send as is.
pub(crate) async fn admit(
    state: &MockState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Admitted, Response> {
    let in_flight = InFlight::new(&state.stats);
    let controls = Controls::from_headers(&state.cfg, headers)?;
    let parsed = if body.is_empty() { Ok(Value::Null) } else { serde_json::from_slice::<Value>(body) };
    let header_echo = header_map(headers);
    if state.cfg.record > 0 {
        let recorded_body = match &parsed {
            Ok(value) => value.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(body).into_owned()),
        };
        state.recorder.record(RecordedRequest {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            headers: header_echo.clone(),
            body: recorded_body,
        });
    }
    if let Some((status, raw)) = controls.status.clone() {
        return Err(Controls::injected_error(status, raw));
    }
    if controls.stall == Some(Stall::Headers) {
        // Held until hyper drops this future because the client went away.
        std::future::pending::<()>().await;
    }
    let body = parsed.map_err(|error| {
        invalid_request(&format!("We could not parse the JSON body of your request: {error}"), None)
    })?;
    Ok(Admitted { in_flight, controls, headers: header_echo, body })
}

/// Seconds since the Unix epoch, for `created`.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Sleep for `d` unless it is zero (a zero sleep still costs a timer registration).
pub(crate) async fn delay(d: std::time::Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelObject<'a>>,
}

#[derive(Serialize)]
struct ModelObject<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

impl<'a> ModelObject<'a> {
    fn new(id: &'a str) -> Self {
        Self { id, object: "model", created: MODEL_CREATED, owned_by: "wasmgate-mock" }
    }
}

pub(crate) async fn list_models(State(state): State<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let admitted = match admit(&state, &method, &uri, &headers, &Bytes::new()).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    delay(admitted.controls.latency).await;
    ([(header::CONTENT_TYPE, "application/json")], state.models_json.clone()).into_response()
}

pub(crate) async fn get_model(
    State(state): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let admitted = match admit(&state, &method, &uri, &headers, &Bytes::new()).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    delay(admitted.controls.latency).await;
    if state.cfg.models.contains(&id) {
        Json(ModelObject::new(&id)).into_response()
    } else {
        openai_error(
            StatusCode::NOT_FOUND,
            &format!("The model '{id}' does not exist"),
            "invalid_request_error",
            Some("model"),
            Some("model_not_found"),
        )
    }
}

pub(crate) async fn health() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#).into_response()
}

pub(crate) async fn stats(State(state): State<Shared>) -> Response {
    Json(state.stats.snapshot()).into_response()
}

pub(crate) async fn requests(State(state): State<Shared>) -> Response {
    Json(state.recorder.snapshot()).into_response()
}

pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    openai_error(
        StatusCode::NOT_FOUND,
        &format!("Unknown request URL: {method} {}", uri.path()),
        "invalid_request_error",
        None,
        Some("unknown_url"),
    )
}
