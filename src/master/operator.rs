//! The Mesos v1 Operator API (`POST /api/v1`, JSON): the calls the registry can
//! answer today. Like Mesos, it is served by the leader (a follower forwards the
//! call); unknown or malformed calls get a 400 naming the field.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Master;
use super::command::Command;
use super::endpoints::{MESOS_API_VERSION, elected_secs, master_info_of, parse_weights};
use crate::api::error::{ApiError, parse_json, propose_error};

#[derive(Deserialize)]
struct Call {
    #[serde(rename = "type")]
    kind: Option<String>,
    update_weights: Option<Value>,
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
        other => {
            return Err(ApiError::bad_request(format!(
                "type: unsupported call type '{other}'"
            )));
        }
    };
    Ok(Json(answer).into_response())
}
