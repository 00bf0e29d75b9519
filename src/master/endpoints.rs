//! The master's HTTP surface in Mesos's shapes: `/master/state`, `/master/health`,
//! `/master/redirect`, `/master/weights`, `/version`, `/metrics/snapshot`, the
//! operator API (`operator.rs`) and membership (`members.rs`); plus Marathon's
//! `/v2/leader`. Every path Mesos serves under `/master/` is served at the root too.
//!
//! Reads answer from this master's own applied registry; writes are routed
//! through [`write_router`], which the API layer puts behind leader forwarding.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::command::Command;
use super::{Master, agents, members, operator, task_json};
use crate::api::error::{ApiError, propose_error};
use crate::model::{AgentState, Task, TaskState, WeightInfo};

/// The Mesos API level whose shapes we serve (clients such as pymesos read it).
pub const MESOS_API_VERSION: &str = "1.11.0";

pub fn read_router(master: Arc<Master>) -> Router {
    Router::new()
        .route("/master/health", get(health))
        .route("/health", get(health))
        .route("/master/redirect", get(redirect))
        .route("/redirect", get(redirect))
        .route("/master/state", get(state))
        .route("/state", get(state))
        .route("/master/state.json", get(state))
        .route("/state.json", get(state))
        .route("/master/weights", get(weights))
        .route("/weights", get(weights))
        .route("/master/members", get(members::list))
        .route("/api/v1/agent", post(agents::call))
        .route("/master/tasks", get(tasks))
        .route("/tasks", get(tasks))
        .route("/master/slaves", get(agents::slaves))
        .route("/slaves", get(agents::slaves))
        .route("/version", get(version))
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/v2/leader", get(marathon_leader))
        .with_state(master)
}

/// Routes that change the registry; served by the leader only.
pub fn write_router(master: Arc<Master>) -> Router {
    Router::new()
        .route("/master/weights", put(update_weights))
        .route("/weights", put(update_weights))
        .route("/master/members", post(members::add))
        .route("/master/members/{id}", delete(members::remove))
        .route("/api/v1", post(operator::call))
        .with_state(master)
}

async fn health(State(master): State<Arc<Master>>) -> StatusCode {
    if master.status().leader.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn redirect(State(master): State<Arc<Master>>) -> Response {
    match master.leader_http() {
        Some(addr) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("//{addr}"))],
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "No leader elected").into_response(),
    }
}

async fn marathon_leader(State(master): State<Arc<Master>>) -> Response {
    match master.leader_http() {
        Some(addr) => Json(json!({ "leader": addr })).into_response(),
        None => ApiError::not_found("There is no leader").into_response(),
    }
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `master@ip:port`, Mesos's libprocess pid of a master.
fn pid(addr: &str) -> String {
    format!("master@{addr}")
}

fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

fn master_info(id: &str, hostname: &str, addr: &str) -> Value {
    let (ip, port) = split_addr(addr);
    json!({
        "id": id,
        "pid": pid(addr),
        "port": port,
        "hostname": hostname,
        "address": { "hostname": hostname, "ip": ip, "port": port },
        "version": MESOS_API_VERSION,
    })
}

async fn state(State(master): State<Arc<Master>>) -> Json<Value> {
    let status = master.status();
    let leader_addr = master.leader_http();
    let registry = master.registry();
    let mut body = json!({
        "version": MESOS_API_VERSION,
        "meso_version": env!("CARGO_PKG_VERSION"),
        "build_user": "meso",
        "start_time": secs(master.start_time),
        "id": master.run_id,
        "pid": pid(&master.advertise_http),
        "hostname": master.hostname,
        "cluster": master.cluster_name,
        "cluster_id": registry.cluster_id,
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": registry.agents.values().filter(|a| a.state == AgentState::Active).count(),
        "deactivated_slaves": 0,
        "unreachable_slaves": registry.agents.values().filter(|a| a.state == AgentState::Unreachable).count(),
        "flags": {
            "cluster": master.cluster_name,
            "hostname": master.hostname,
            "port": split_addr(&master.advertise_http).1.to_string(),
        },
        "slaves": agents::agents_json(&registry),
        "recovered_slaves": [],
        "frameworks": frameworks_json(&registry),
        "completed_frameworks": [],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    });
    if let (Some(leader), Some(addr)) = (status.leader, leader_addr) {
        let hostname = registry
            .members
            .get(&leader)
            .and_then(|m| m.hostname.clone())
            .unwrap_or_else(|| split_addr(&addr).0);
        body["leader"] = json!(pid(&addr));
        let leader_id = if leader == master.id {
            master.run_id.clone()
        } else {
            format!("master-{leader}")
        };
        body["leader_info"] = master_info(&leader_id, &hostname, &addr);
    }
    if let Some(at) = status.elected_at.filter(|_| status.is_leader) {
        body["elected_time"] = json!(secs(at));
    }
    Json(body)
}

/// Tasks grouped by framework, as `/master/state` has them. Tasks launched
/// without a framework (operator launches) sit under the framework `meso`.
fn frameworks_json(registry: &super::registry::Registry) -> Vec<Value> {
    let mut by_framework: std::collections::BTreeMap<String, (Vec<Value>, Vec<Value>)> =
        Default::default();
    let framework = |t: &crate::model::Task| t.spec.framework_id.clone().unwrap_or("meso".into());
    for t in registry.tasks.values() {
        by_framework
            .entry(framework(t))
            .or_default()
            .0
            .push(task_json(t));
    }
    for t in &registry.completed_tasks {
        by_framework
            .entry(framework(t))
            .or_default()
            .1
            .push(task_json(t));
    }
    by_framework
        .into_iter()
        .map(|(id, (tasks, completed))| {
            json!({
                "id": id,
                "name": id,
                "active": true,
                "role": "*",
                "tasks": tasks,
                "completed_tasks": completed,
                "unreachable_tasks": [],
            })
        })
        .collect()
}

/// Mesos's `task_id` and `framework_id` filters of `/master/tasks`; its
/// `limit`, `offset` and `order` are not taken (every task is answered).
#[derive(Debug, Default, Deserialize)]
struct TasksQuery {
    task_id: Option<String>,
    framework_id: Option<String>,
}

/// Mesos's `/master/tasks`: every task the registry holds, live first, or
/// those the query names. Only the tasks answered are rendered, so a client
/// watching one task (`?task_id=`) costs the same with 10 or 10,000 tasks.
async fn tasks(State(master): State<Arc<Master>>, Query(q): Query<TasksQuery>) -> Json<Value> {
    let registry = master.registry();
    let wanted = |t: &&Arc<Task>| {
        q.framework_id
            .as_ref()
            .is_none_or(|f| t.spec.framework_id.as_ref() == Some(f))
    };
    let live: Box<dyn Iterator<Item = &Arc<Task>>> = match &q.task_id {
        Some(id) => Box::new(registry.tasks.get(id.as_str()).into_iter()),
        None => Box::new(registry.tasks.values()),
    };
    let ended = registry
        .completed_tasks
        .iter()
        .filter(|t| q.task_id.as_ref().is_none_or(|id| &t.spec.task_id == id));
    let tasks: Vec<Value> = live
        .chain(ended)
        .filter(wanted)
        .map(|t| task_json(t))
        .collect();
    Json(json!({ "tasks": tasks }))
}

async fn weights(State(master): State<Arc<Master>>) -> Json<Vec<WeightInfo>> {
    Json(master.registry().weights())
}

/// Parses and checks a list of weights; errors name the offending field.
pub fn parse_weights(body: &[u8], path: &str) -> Result<Vec<WeightInfo>, ApiError> {
    let weights: Vec<WeightInfo> = crate::api::error::parse_json(body, path)?;
    for (i, w) in weights.iter().enumerate() {
        w.validate(&format!("{path}[{i}]"))
            .map_err(ApiError::bad_request)?;
    }
    Ok(weights)
}

async fn update_weights(
    State(master): State<Arc<Master>>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let weights = parse_weights(&body, "")?;
    master
        .raft
        .propose(Command::UpdateWeights { weights })
        .await
        .map_err(propose_error)?;
    Ok(StatusCode::OK)
}

async fn version() -> Json<Value> {
    Json(json!({
        "version": MESOS_API_VERSION,
        "meso_version": env!("CARGO_PKG_VERSION"),
        "build_user": "meso",
    }))
}

async fn metrics_snapshot(State(master): State<Arc<Master>>) -> Json<Value> {
    let status = master.status();
    let uptime = SystemTime::now()
        .duration_since(master.start_time)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let registry = master.registry();
    // Counted as the registry applies (scans of every task per request
    // were a sixth of the leader's CPU under the scale bench's poll).
    let counts = registry.counts();
    let agents_in = |state: AgentState| counts.agents(state) as f64;
    let mut body = json!({
        "master/elected": if status.is_leader { 1.0 } else { 0.0 },
        "master/uptime_secs": uptime,
        "master/slaves_active": agents_in(AgentState::Active),
        "master/slaves_connected": agents_in(AgentState::Active),
        "master/slaves_unreachable": agents_in(AgentState::Unreachable),
        "registrar/raft/term": status.term as f64,
        "registrar/raft/commit_index": status.commit as f64,
        "registrar/raft/applied_index": status.applied as f64,
        "registrar/raft/leader_changes": status.leader_changes as f64,
    });
    // Gauges of live tasks by state (Mesos's terminal counters are lifetime
    // totals, which the bounded completed list cannot give, so they are left out).
    for state in [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Unreachable,
    ] {
        let n = counts.tasks(state);
        let name = state.name().trim_start_matches("TASK_").to_lowercase();
        body[format!("master/tasks_{name}")] = json!(n as f64);
    }
    Json(body)
}

pub fn elected_secs(master: &Master) -> Option<f64> {
    let s = master.status();
    s.elected_at.filter(|_| s.is_leader).map(secs)
}

pub fn master_info_of(master: &Master) -> Value {
    master_info(&master.run_id, &master.hostname, &master.advertise_http)
}
