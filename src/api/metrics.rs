//! `/metrics` in Prometheus text. One recorder per process (so `meso up
//! --masters 3` renders every member, told apart by the `node` label).

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
                ],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        let upkeep = handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    upkeep.run_upkeep();
                }
            });
        }
        handle
    })
}

/// Prometheus text, or, for a client that asks for JSON (Marathon's clients
/// do), the same samples in the Dropwizard shape Marathon's `/metrics` has:
/// every sample a gauge named as Prometheus names it, labels included.
pub async fn render(headers: HeaderMap) -> Response {
    let text = handle().render();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return axum::Json(dropwizard(&text)).into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn dropwizard(text: &str) -> serde_json::Value {
    let mut gauges = serde_json::Map::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, value)) = line.rsplit_once(' ')
            && let Ok(value) = value.parse::<f64>()
        {
            gauges.insert(name.to_string(), serde_json::json!({ "value": value }));
        }
    }
    serde_json::json!({
        "version": "4.0.0",
        "gauges": gauges,
        "counters": {},
        "histograms": {},
        "meters": {},
        "timers": {},
    })
}
