//! Prometheus metrics: one process-wide recorder (the `metrics` facade), rendered by the admin
//! listener at `/metrics`.
//!
//! Names (all prefixed `wasmgate_`):
//! - `http_requests_total{route,status}`, `http_request_duration_seconds{route}` (until the
//!   response headers; streams are measured separately),
//! - `upstream_duration_seconds{upstream}` (until upstream response headers),
//!   `upstream_errors_total{upstream,kind}`,
//! - `active_streams`, `stream_duration_seconds`, `tokens_total{kind}`,
//! - plugin metrics, documented in [`crate::policy`].
//!
//! Label values are bounded: routes are the fixed API paths, statuses are numbers, upstreams
//! and plugins come from config.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often recorded histogram samples are folded into their buckets. The recorder keeps
/// every sample until then (8 bytes each, several per request): without upkeep a gateway
/// nobody scrapes grows by gigabytes a day.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(2);

/// Latency buckets from 50 µs to 60 s: plugin calls are µs, upstream calls are seconds.
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
];

/// Installs the global recorder once; later calls return the same handle. `None` if another
/// recorder was installed first (metrics are then not rendered by us).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS);
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(e) => {
                    tracing::warn!(error = %e, "invalid metric buckets; using defaults");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(_) => None,
            }
        })
        .clone()
}

/// Runs the recorder's upkeep for the life of the process. A thread, not a task: the
/// recorder is process-wide and outlives any one runtime (tests start many).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start metrics upkeep; histogram samples pile up until scraped");
    }
}

fn describe() {
    metrics::describe_counter!("wasmgate_http_requests_total", "Requests answered, by route and status.");
    metrics::describe_histogram!(
        "wasmgate_http_request_duration_seconds",
        "Time until the response headers, by route."
    );
    metrics::describe_histogram!("wasmgate_upstream_duration_seconds", "Time until the upstream's response headers.");
    metrics::describe_counter!("wasmgate_upstream_errors_total", "Upstream failures, by kind.");
    metrics::describe_gauge!("wasmgate_active_streams", "SSE streams being relayed now.");
    metrics::describe_histogram!("wasmgate_stream_duration_seconds", "Duration of relayed SSE streams.");
    metrics::describe_counter!("wasmgate_tokens_total", "Tokens reported by upstreams, by kind.");
}

/// A static label for an HTTP status (no allocation per request).
pub fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s => match s / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}
