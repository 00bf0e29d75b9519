//! The Mesos v1 Operator API (`POST /api/v1`, JSON): health, version, master,
//! weights, `GET_TASKS`, `MARK_AGENT_GONE`, and meso's own `LAUNCH_TASKS` and
//! `KILL_TASK` (Mesos launches only through frameworks; these let an operator or
//! a test drive the launch path directly, with `TaskSpec`'s flat shape). Like Mesos, it is served by the leader (a follower forwards the
//! call); unknown or malformed calls get a 400 naming the field.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::command::Command;
use super::endpoints::{MESOS_API_VERSION, elected_secs, master_info_of, parse_weights};
use super::{Master, task_json};
use crate::api::error::{ApiError, parse_json, propose_error};
use crate::model::TaskSpec;

#[derive(Deserialize)]
struct Call {
    #[serde(rename = "type")]
    kind: Option<String>,
    update_weights: Option<Value>,
    launch_tasks: Option<Value>,
    kill_task: Option<Value>,
    mark_agent_gone: Option<Value>,
}

/// A call's body for `kind`, or a 400 naming it.
fn body_of<'a>(body: &'a Option<Value>, name: &str) -> Result<&'a Value, ApiError> {
    body.as_ref()
        .ok_or_else(|| ApiError::bad_request(format!("{name}: missing")))
}

fn string_at<'a>(body: &'a Value, path: &str, field: &str) -> Result<&'a str, ApiError> {
    body.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(format!("{path}.{field}: missing or not a string")))
}

pub async fn call(State(master): State<Arc<Master>>, body: Bytes) -> Result<Response, ApiError> {
    let call: Call = parse_json(&body, "")?;
    let kind = call
        .kind
        .ok_or_else(|| ApiError::bad_request("type: missing; expected e.g. GET_HEALTH"))?;
    let answer = match kind.as_str() {
        "GET_HEALTH" => {
            json!({"type": kind, "get_health": {"healthy": master.status().leader.is_some()}})
        }
        "GET_VERSION" => json!({"type": kind, "get_version": {"version_info": {
            "version": MESOS_API_VERSION,
            "build_user": "meso",
        }}}),
        "GET_MASTER" => {
            let nanos = |secs: f64| (secs * 1e9) as i64;
            let start = master
                .start_time
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let mut get_master = json!({
                "master_info": master_info_of(&master),
                "start_time": {"nanoseconds": nanos(start)},
            });
            if let Some(elected) = elected_secs(&master) {
                get_master["elected_time"] = json!({"nanoseconds": nanos(elected)});
            }
            json!({"type": kind, "get_master": get_master})
        }
        "GET_WEIGHTS" => {
            json!({"type": kind, "get_weights": {"weight_infos": master.registry().weights()}})
        }
        "UPDATE_WEIGHTS" => {
            let infos = call
                .update_weights
                .as_ref()
                .and_then(|u| u.get("weight_infos"))
                .ok_or_else(|| ApiError::bad_request("update_weights.weight_infos: missing"))?;
            let weights =
                parse_weights(infos.to_string().as_bytes(), "update_weights.weight_infos")?;
            master
                .raft
                .propose(Command::UpdateWeights { weights })
                .await
                .map_err(propose_error)?;
            return Ok(StatusCode::OK.into_response());
        }
        "GET_TASKS" => {
            let registry = master.registry();
            json!({"type": kind, "get_tasks": {
                "tasks": registry.tasks.values().map(|t| task_json(t)).collect::<Vec<_>>(),
                "completed_tasks": registry.completed_tasks.iter().map(|t| task_json(t)).collect::<Vec<_>>(),
            }})
        }
        "LAUNCH_TASKS" => {
            let body = body_of(&call.launch_tasks, "launch_tasks")?;
            let tasks = body
                .get("tasks")
                .ok_or_else(|| ApiError::bad_request("launch_tasks.tasks: missing"))?;
            let specs: Vec<TaskSpec> =
                parse_json(tasks.to_string().as_bytes(), "launch_tasks.tasks")?;
            let recorded = master.launch_tasks(specs).await?;
            json!({"type": kind, "launch_tasks": {
                "tasks": recorded.iter().map(task_json).collect::<Vec<_>>(),
            }})
        }
        "KILL_TASK" => {
            let body = body_of(&call.kill_task, "kill_task")?;
            master
                .kill_task(string_at(body, "kill_task", "task_id")?)
                .await?;
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        "MARK_AGENT_GONE" => {
            let body = body_of(&call.mark_agent_gone, "mark_agent_gone")?;
            let id = string_at(body, "mark_agent_gone", "agent_id")?.to_string();
            if !master.registry().agents.contains_key(&id) {
                return Err(ApiError::not_found(format!("agent '{id}' is not known")));
            }
            let gone = Command::MarkAgentGone {
                id,
                time: super::now_secs(),
            };
            master.raft.propose(gone).await.map_err(propose_error)?;
            return Ok(StatusCode::OK.into_response());
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "type: unsupported call type '{other}'"
            )));
        }
    };
    Ok(Json(answer).into_response())
}
