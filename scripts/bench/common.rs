//! What the bench tools share (marathonbench, dnsbench): each includes this
//! file with `#[path = "common.rs"] mod common;`.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Milliseconds, to the microsecond.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Nearest-rank percentile of sorted values; NaN when there are none.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// `GET base + path` as JSON; an answer other than 2xx is an error that
/// quotes the body.
pub async fn get_json(http: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<Value> {
    let r = http
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(60))
        .send()
        .await?;
    let status = r.status();
    let bytes = r.bytes().await?;
    if !status.is_success() {
        bail!(
            "GET {path} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    serde_json::from_slice(&bytes).with_context(|| format!("GET {path}: not JSON"))
}
