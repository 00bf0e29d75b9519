//! The sandbox files API, the master's half: a client asks any master for
//! `/files/{read,browse,download}?path=/tasks/<task_id>/...`, the master finds
//! the task's agent in its registry and relays the request there, streaming
//! the agent's answer back with its status.
//!
//! ```text
//!  client ─▶ master: path /tasks/<id>/... ─▶ registry: task ─▶ agent ─▶ addr
//!          ─▶ GET http://<addr><same path and query>  (X-Meso-Files-Proxied: 1)
//!          ◀─ the agent's status, type and bytes, as they arrive
//! ```
//!
//! Only virtual paths: an absolute path means something on one agent's disk,
//! and the master cannot tell which. A request that already carries
//! `X-Meso-Files-Proxied` is never relayed again, so a node that is both
//! master and agent cannot send a request round in circles
//! (`api::files_router` applies that rule).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, StatusCode, Uri, header};
use axum::response::Response;

use super::Master;
use crate::agent::files::Target;
use crate::api::error::ApiError;
use crate::model::AgentState;

/// Marks a request the master relayed to an agent.
pub const PROXIED: HeaderName = HeaderName::from_static("x-meso-files-proxied");

/// The master's files API alone (a master-only node composes it the same way).
pub fn router(master: Arc<Master>) -> Router {
    crate::api::files_router(Some(master), None)
}

/// Whether a request may be relayed: never twice.
pub fn may_proxy(headers: &HeaderMap) -> bool {
    !headers.contains_key(&PROXIED)
}

/// The task a path names, or the 404 that says the master serves only
/// virtual paths.
pub fn task_of(path: &str) -> Result<&str, ApiError> {
    match Target::parse(path) {
        Some(Target::Task { id, .. }) => Ok(id),
        _ => Err(ApiError::not_found(format!(
            "path: '{path}' is not on this node; masters serve sandbox files by \
             virtual path /tasks/<task_id>/..."
        ))),
    }
}

/// How long an agent may take to start its answer. It answers from its own
/// disk, in milliseconds when well; a stopped one (SIGSTOP, a frozen VM) still
/// accepts the connection, and the read timeout alone kept the client waiting
/// 30 s, longer than clients wait, so they never saw the 503 naming the agent.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // No overall timeout: a download may be large; a silent agent is cut off.
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client builds")
    })
}

/// Relays a files request for the task `path` names to its agent.
pub async fn proxy(master: &Master, path: &str, uri: &Uri) -> Result<Response, ApiError> {
    let task_id = task_of(path)?;
    let (agent_id, addr) = {
        // The guard is not Send: take what is needed and let it go before awaiting.
        let registry = master.registry();
        let task = registry
            .task(task_id)
            .ok_or_else(|| ApiError::not_found(format!("path: no task '{task_id}'")))?;
        let agent_id = task.spec.agent_id.clone();
        let agent = registry.agents.get(&agent_id);
        // An agent the master already knows to be silent is not waited for.
        if let Some(a) = agent.filter(|a| a.state != AgentState::Active) {
            return Err(ApiError::unavailable(format!(
                "agent {agent_id} at {} is {}",
                a.addr,
                format!("{:?}", a.state).to_lowercase()
            )));
        }
        (agent_id, agent.map(|a| a.addr.clone()))
    };
    let addr = addr.ok_or_else(|| {
        ApiError::unavailable(format!(
            "agent {agent_id} of task '{task_id}' is not registered"
        ))
    })?;
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{target}", crate::api::base_url(&addr));
    let unreachable = |why: String| {
        ApiError::unavailable(format!("agent {agent_id} at {addr} is unreachable: {why}"))
    };
    let request = client().get(&url).header(&PROXIED, "1").send();
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, request).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(unreachable(cause(&e))),
        Err(_) => return Err(unreachable(format!("no answer within {ANSWER_TIMEOUT:?}"))),
    };
    let mut response = Response::builder().status(answer.status());
    for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
        if let Some(v) = answer.headers().get(&name) {
            response = response.header(name, v);
        }
    }
    let chunks = futures::stream::try_unfold(answer, |mut answer| async move {
        Ok::<_, reqwest::Error>(answer.chunk().await?.map(|c| (c, answer)))
    });
    response
        .body(Body::from_stream(chunks))
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))
}

/// The innermost cause (connection refused, timed out): reqwest's own text
/// only repeats the URL.
fn cause(e: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(inner) = last.source() {
        last = inner;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_virtual_paths_name_a_task() {
        assert_eq!(task_of("/tasks/web.1/stdout").ok(), Some("web.1"));
        assert_eq!(task_of("/tasks/web.1").ok(), Some("web.1"));
        for path in ["/var/lib/x", "/tasks/", "/tasks/../x", "stdout"] {
            let e = task_of(path).unwrap_err();
            assert_eq!(e.status, StatusCode::NOT_FOUND, "{path}");
            assert!(e.message.contains("/tasks/<task_id>"), "{}", e.message);
        }
    }

    #[test]
    fn a_relayed_request_is_never_relayed_again() {
        let mut headers = HeaderMap::new();
        assert!(may_proxy(&headers));
        headers.insert(PROXIED, HeaderValue::from_static("1"));
        assert!(!may_proxy(&headers));
    }
}
