//! HTTP composition: one router per node, whatever roles it runs.
//!
//! ```text
//!  request ─▶ /ping, /metrics                       (every node)
//!          ─▶ master reads  (/master/state, ...)    answered locally
//!          ─▶ master writes (PUT /master/weights, /api/v1, members)
//!                 └─ forward::to_leader ─▶ here if leader, else proxied to it
//!          ─▶ /v1/* (masters with DNS)              answered from this node's zone
//!          ─▶ /files/* (agents, masters)        files_router:
//!                 this node's sandboxes hold the path? ─▶ answered here
//!                 else a master, not already relayed?  ─▶ relayed to the task's agent
//! ```

pub mod error;
pub mod forward;
pub mod metrics;
pub mod recordio;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::agent::files::{self as sandbox_files, FilesQuery, Op};
use crate::master::{self, Master, files as master_files};
use crate::scheduler;

/// The node's router. `sandboxes` is the agent's sandboxes root when the node
/// runs the agent role; `dns` is there when it runs the DNS role.
pub fn router(
    master: Option<Arc<Master>>,
    scheduler: Option<scheduler::api::Ctx>,
    sandboxes: Option<PathBuf>,
    dns: Option<crate::dns::http::Api>,
) -> Router {
    let mut router = Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/metrics", get(metrics::render))
        .merge(files_router(master.clone(), sandboxes));
    if let Some(m) = master {
        let writes = master::write_router(m.clone())
            .route_layer(from_fn_with_state(m.clone(), forward::to_leader));
        router = router.merge(master::read_router(m.clone())).merge(writes);
        if let Some(ctx) = scheduler {
            let writes = scheduler::api::write_router(ctx.clone())
                .route_layer(from_fn_with_state(m, forward::to_leader));
            router = router.merge(scheduler::api::read_router(ctx)).merge(writes);
        }
    }
    if let Some(api) = dns {
        router = router.merge(crate::dns::http::router(api));
    }
    router
}

/// `/files/{read,browse,download}` for whatever roles the node runs: its own
/// sandboxes first (agent), then a relay to the task's agent (master).
pub fn files_router(master: Option<Arc<Master>>, sandboxes: Option<PathBuf>) -> Router {
    if master.is_none() && sandboxes.is_none() {
        return Router::new();
    }
    let roles = Arc::new((master, sandboxes));
    let mut router = Router::new();
    for (route, op) in Op::ROUTES {
        let roles = roles.clone();
        router = router.route(
            route,
            get(move |req: Request| async move {
                let (master, sandboxes) = &*roles;
                files(master.as_deref(), sandboxes.as_deref(), op, req).await
            }),
        );
    }
    router
}

async fn files(
    master: Option<&Master>,
    sandboxes: Option<&std::path::Path>,
    op: Op,
    req: Request,
) -> Response {
    let query = match Query::<FilesQuery>::try_from_uri(req.uri()) {
        Ok(Query(q)) => q,
        Err(e) => return error::ApiError::bad_request(e.body_text()).into_response(),
    };
    if let Some(root) = sandboxes
        && let Some(answer) = sandbox_files::answer(root, op, &query).await
    {
        return answer;
    }
    // With sandboxes, `answer` already refused a missing path; a master alone checks it here.
    let path = match query.path() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match master {
        Some(m) if master_files::may_proxy(req.headers()) => {
            match master_files::proxy(m, path, req.uri()).await {
                Ok(answer) => answer,
                Err(e) => e.into_response(),
            }
        }
        _ => sandbox_files::no_sandbox(path),
    }
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
