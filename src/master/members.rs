//! Membership over HTTP: list the masters, add one (the server side of `--join`),
//! remove a dead one (`meso members remove ID`).
//!
//! `GET /master/members` is served by any master from its own registry; the
//! writes are leader-only and reach the leader through the API's forwarding.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Master;
use super::join::JoinAnswer;
use crate::api::error::{ApiError, propose_error};
use crate::model::Member;

#[derive(Debug, Serialize)]
pub struct MemberView {
    #[serde(flatten)]
    pub member: Member,
    pub voter: bool,
    pub leader: bool,
}

pub async fn list(State(master): State<Arc<Master>>) -> Json<Vec<MemberView>> {
    let status = master.status();
    let registry = master.registry();
    let mut ids: Vec<u64> = registry.members.keys().copied().collect();
    ids.extend(status.voters.iter().copied());
    ids.sort_unstable();
    ids.dedup();
    Json(
        ids.into_iter()
            .map(|id| MemberView {
                member: registry.members.get(&id).cloned().unwrap_or(Member {
                    id,
                    raft_addr: String::new(),
                    http_addr: None,
                    hostname: None,
                }),
                voter: status.voters.contains(&id),
                leader: status.leader == Some(id),
            })
            .collect(),
    )
}

pub async fn add(
    State(master): State<Arc<Master>>,
    body: Result<Json<Member>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<JoinAnswer>, ApiError> {
    let Json(mut member) = body.map_err(ApiError::from_json_rejection)?;
    if member.raft_addr.trim().is_empty() {
        return Err(ApiError::bad_request("raft_addr: must not be empty"));
    }
    let status = master.status();
    let removed = master.registry().removed_members.contains(&member.id);
    if member.id == 0 {
        member.id = master.registry().next_member_id(&status.voters);
    } else if status.voters.contains(&member.id) || removed {
        return Err(ApiError::conflict(format!(
            "id: master {} is or was a member; ids are never reused, pick another or omit it",
            member.id
        )));
    }
    master
        .raft
        .add_member(member.clone())
        .await
        .map_err(propose_error)?;
    let members = master.registry().members.values().cloned().collect();
    Ok(Json(JoinAnswer {
        id: member.id,
        members,
    }))
}

pub async fn remove(
    State(master): State<Arc<Master>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("id: '{id}' is not a master id")))?;
    let status = master.status();
    if !status.voters.contains(&id) {
        return Err(ApiError::not_found(format!("master {id} is not a member")));
    }
    if status.voters.len() == 1 {
        return Err(ApiError::conflict("cannot remove the last master"));
    }
    master.raft.remove_member(id).await.map_err(propose_error)?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
