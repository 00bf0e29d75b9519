//! HTTP composition: one router per node, whatever roles it runs.
//!
//! ```text
//!  request ─▶ /ping, /metrics                       (every node)
//!          ─▶ master reads  (/master/state, ...)    answered locally
//!          ─▶ master writes (PUT /master/weights, /api/v1, members)
//!                 └─ forward::to_leader ─▶ here if leader, else proxied to it
//! ```

pub mod error;
pub mod forward;
pub mod metrics;
pub mod recordio;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;

use crate::master::{self, Master};

pub fn router(master: Option<Arc<Master>>) -> Router {
    let mut router = Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/metrics", get(metrics::render));
    if let Some(m) = master {
        let writes = master::write_router(m.clone())
            .route_layer(from_fn_with_state(m.clone(), forward::to_leader));
        router = router.merge(master::read_router(m)).merge(writes);
    }
    router
}

/// `host:port` or a full URL, as users type it, to a base URL without a slash.
pub fn base_url(addr: &str) -> String {
    let addr = addr.trim().trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}
