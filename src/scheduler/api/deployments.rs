//! `/v2/deployments`: the running plans; deleting one rolls it back, or with
//! `force=true` just stops it where it is.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::deploy::{Change, deploy};
use super::json::{app_tasks, readiness_results};
use super::{Ctx, Params, deployment_result, ok};
use crate::api::error::{ApiError, propose_error};
use crate::master::command::Command;
use crate::scheduler::state::{MarathonCommand, Outcome};

/// `GET /v2/deployments`: a bare array, as Marathon answers. Each current
/// action shows the readiness of its app's new tasks.
pub async fn list(State(ctx): State<Ctx>) -> Response {
    let registry = ctx.master.registry();
    let all: Vec<Value> = registry
        .marathon
        .deployments
        .values()
        .map(|d| {
            let mut json = d.to_json();
            if let Some(actions) = json["currentActions"].as_array_mut() {
                for (action, current) in actions.iter_mut().zip(d.current()) {
                    if let Some(app) = registry.marathon.app(&current.app) {
                        action["readinessCheckResults"] = Value::from(readiness_results(
                            app,
                            &app_tasks(&registry, &current.app),
                        ));
                    }
                }
            }
            json
        })
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
