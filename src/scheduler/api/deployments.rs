//! `/v2/deployments`: the running plans; deleting one rolls it back, or with
//! `force=true` just stops it where it is.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::deploy::{Change, deploy};
use super::{Ctx, Params, deployment_result, ok};
use crate::api::error::{ApiError, propose_error};
use crate::master::command::Command;
use crate::scheduler::state::{MarathonCommand, Outcome};

/// `GET /v2/deployments`: a bare array, as Marathon answers.
pub async fn list(State(ctx): State<Ctx>) -> Response {
    let registry = ctx.master.registry();
    let all: Vec<Value> = registry
        .marathon
        .deployments
        .values()
        .map(|d| d.to_json())
        .collect();
    ok(Value::Array(all))
}

pub async fn remove(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let force = params.flag("force", false)?;
    let deployment = ctx
        .master
        .registry()
        .marathon
        .deployments
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("DeploymentPlan {id} does not exist")))?;
    if force {
        let command = MarathonCommand::FinishDeployment {
            id,
            outcome: Outcome::Canceled,
        };
        ctx.master
            .raft
            .propose(Command::Marathon { command })
            .await
            .map_err(propose_error)?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    // Roll back: every affected app as it was before, in a new deployment
    // that replaces this one.
    let mut change = Change::default();
    for (app_id, before) in &deployment.original {
        match before {
            Some(app) => change.put.push(app.clone()),
            None => change.remove.push(app_id.clone()),
        }
    }
    let deployed = deploy(&ctx, change, true).await?;
    Ok(deployment_result(
        StatusCode::OK,
        &deployed.id,
        &deployed.version,
    ))
}
