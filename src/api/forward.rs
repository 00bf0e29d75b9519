//! Leader forwarding: a write that reaches a follower is replayed, unchanged, to
//! the leader's HTTP address, and the leader's answer is handed back. Clients
//! never need to know which master leads.
//!
//! A forwarded request carries `X-Meso-Forwarded`; a master that receives one
//! but no longer leads answers 503 instead of forwarding again, so a stale view
//! of leadership can never make a request loop.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::master::Master;

pub const FORWARDED: HeaderName = HeaderName::from_static("x-meso-forwarded");
const MAX_BODY: usize = 16 * 1024 * 1024;

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client builds")
    })
}

/// Middleware for leader-only routes.
pub async fn to_leader(State(master): State<Arc<Master>>, req: Request, next: Next) -> Response {
    if master.status().is_leader {
        return next.run(req).await;
    }
    if req.headers().contains_key(&FORWARDED) {
        return ApiError::unavailable("this master is not the leader (leadership changed); retry")
            .into_response();
    }
    let Some(leader) = master.leader_http() else {
        return ApiError::unavailable("No leader elected").into_response();
    };
    match proxy(&leader, master.id, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn proxy(leader: &str, self_id: u64, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))?;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path}", super::base_url(leader));
    let mut out = client()
        .request(parts.method.clone(), &url)
        .header(&FORWARDED, self_id.to_string())
        .body(body);
    for name in [header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION] {
        if let Some(v) = parts.headers.get(&name) {
            out = out.header(name, v);
        }
    }
    let answer = out.send().await.map_err(|e| {
        ApiError::unavailable(format!("the leader at {leader} did not answer: {e}"))
    })?;
    let mut response = Response::builder().status(answer.status());
    for name in [header::CONTENT_TYPE, header::LOCATION] {
        if let Some(v) = answer.headers().get(&name) {
            response = response.header(name, v);
        }
    }
    let bytes = answer.bytes().await.map_err(|e| {
        ApiError::unavailable(format!("the leader at {leader} broke off its answer: {e}"))
    })?;
    response
        .body(Body::from(bytes))
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))
}
