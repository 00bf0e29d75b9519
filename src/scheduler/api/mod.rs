//! Marathon's REST API v2, as Marathon 1.x serves it, so that its clients
//! (the Python `marathon` package, curl scripts) work unchanged.
//!
//! ```text
//!  GET  (any master: its own applied registry) ─▶ json.rs shapes the answer
//!  POST/PUT/PATCH/DELETE ─▶ leader (api/forward) ─▶ parse + validate (app/)
//!        ─▶ deploy.rs: lock check (409 unless force), plan, propose Deploy
//!        ─▶ {"deploymentId", "version"} + Marathon-Deployment-Id
//! ```
//!
//! Liberal on input, as Marathon's clients need: `//` in paths, booleans as
//! `True`/`false`, `embed` with any of Marathon's prefixes, unknown fields
//! ignored. Conservative on output: only the keys the Python client knows.

mod apps;
mod deploy;
mod deployments;
mod groups;
mod info;
pub mod json;
mod queue;
mod tasks;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::Value;

use super::driver::Unplaced;
use crate::api::error::ApiError;
use crate::master::Master;

/// What every handler needs.
#[derive(Clone)]
pub struct Ctx {
    pub master: Arc<Master>,
    pub unplaced: Unplaced,
    pub bus: super::events::Bus,
}

/// Reads: answered by any master.
pub fn read_router(ctx: Ctx) -> Router {
    Router::new()
        .route("/v2/apps", get(apps::list))
        .route("/v2/apps/", get(apps::list))
        .route("/v2/apps/{*rest}", get(apps::get_path))
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/deployments", get(deployments::list))
        .route("/v2/groups", get(groups::get_root))
        .route("/v2/groups/", get(groups::get_root))
        .route("/v2/groups/{*rest}", get(groups::get_path))
        .route("/v2/queue", get(queue::list))
        .route("/v2/info", get(info::info))
        .route("/v2/eventSubscriptions", get(info::subscriptions))
        .route("/v2/events", get(super::events::stream))
        .with_state(ctx)
}

/// Writes: the leader's (the API layer forwards them).
pub fn write_router(ctx: Ctx) -> Router {
    Router::new()
        .route(
            "/v2/apps",
            post(apps::create)
                .put(apps::put_many)
                .patch(apps::patch_many),
        )
        .route(
            "/v2/apps/{*rest}",
            post(apps::post_path)
                .put(apps::put_path)
                .patch(apps::patch_path)
                .delete(apps::delete_path),
        )
        .route("/v2/tasks/delete", post(tasks::delete_many))
        .route("/v2/deployments/{id}", delete(deployments::remove))
        .route(
            "/v2/groups",
            post(groups::create_root)
                .put(groups::put_root)
                .delete(groups::delete_root),
        )
        .route(
            "/v2/groups/{*rest}",
            post(groups::create_path)
                .put(groups::put_path)
                .delete(groups::delete_path),
        )
        .route("/v2/queue/{*rest}", delete(queue::reset_delay))
        .route(
            "/v2/eventSubscriptions",
            post(info::subscribe).delete(info::unsubscribe),
        )
        .with_state(ctx)
}

/// The query string as Marathon's clients send it: repeated keys kept,
/// booleans in any case.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: `true`/`True`/`TRUE`/`1` and their false
    /// counterparts; absent is `default`; anything else is a 400 naming it.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "query parameter {key}: '{v}' is not a boolean"
            ))),
        }
    }

    /// Whether `embed` asks for `what` (`tasks`, `counts`, `deployments`,
    /// `lastTaskFailure`, `readiness`...), under any prefix Marathon accepts.
    pub fn embeds(&self, what: &str) -> bool {
        self.all("embed").any(|e| {
            let e = e
                .strip_prefix("group.apps.")
                .or_else(|| e.strip_prefix("apps."))
                .or_else(|| e.strip_prefix("app."))
                .unwrap_or(e);
            e == what
        })
    }
}

impl From<crate::scheduler::app::AppError> for ApiError {
    /// 422 as Marathon answers a bad app: the message names every field
    /// path on one line, `details` lists them as Marathon does.
    fn from(e: crate::scheduler::app::AppError) -> Self {
        let details = serde_json::to_value(e.details()).unwrap_or(Value::Null);
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).with_details(details)
    }
}

/// 200 with a JSON body.
pub fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// The answer to a change: `{"deploymentId", "version"}` and the header
/// Marathon sets.
pub fn deployment_result(status: StatusCode, id: &str, version: &str) -> Response {
    let mut response = (
        status,
        axum::Json(serde_json::json!({"deploymentId": id, "version": version})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert("Marathon-Deployment-Id", v);
    }
    response
}

/// Reads a JSON body; a malformed one is a 400 that says where.
pub fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request has no JSON body"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}
