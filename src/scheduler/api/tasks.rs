//! `/v2/tasks` and killing tasks (here, and under `/v2/apps/{id}/tasks`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::deploy::{Change, deploy};
use super::json::task_json;
use super::{Ctx, Params, body_json, deployment_result, ok};
use crate::api::error::ApiError;
use crate::model::TaskState;

/// `GET /v2/tasks[?status=running|staging]`: the tasks of every app.
pub async fn list(State(ctx): State<Ctx>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let wanted: Vec<String> = params
        .all("status")
        .chain(params.all("status[]"))
        .map(str::to_lowercase)
        .collect();
    for w in &wanted {
        if w != "running" && w != "staging" {
            return Err(ApiError::bad_request(format!(
                "status: '{w}' is not one of running, staging"
            )));
        }
    }
    let registry = ctx.master.registry();
    let tasks: Vec<Value> = registry
        .tasks
        .values()
        .filter_map(|t| Some((t, registry.marathon.app(&t.spec.run_spec.as_ref()?.app_id))))
        .filter(|(t, _)| {
            wanted.is_empty()
                || wanted.iter().any(|w| match w.as_str() {
                    "running" => t.state == TaskState::Running,
                    _ => matches!(t.state, TaskState::Staging | TaskState::Starting),
                })
        })
        .map(|(t, app)| task_json(t, &registry, app))
        .collect();
    Ok(ok(json!({ "tasks": tasks })))
}

/// `POST /v2/tasks/delete {"ids": [...]}`; unknown ids are a 400.
pub async fn delete_many(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let body = body_json(&body)?;
    let ids: Vec<String> = body
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("ids: an array of task ids is required"))?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::bad_request(format!("ids[{i}]: not a string")))
        })
        .collect::<Result<_, _>>()?;
    {
        let registry = ctx.master.registry();
        if let Some(unknown) = ids.iter().find(|id| {
            registry
                .tasks
                .get(id.as_str())
                .is_none_or(|t| t.spec.run_spec.is_none())
        }) {
            return Err(ApiError::bad_request(format!(
                "ids: no app's task has the id '{unknown}'"
            )));
        }
    }
    kill(&ctx, &ids, &params, "tasks").await
}

/// Kills tasks. With `scale=true` their apps shrink by as many (one
/// deployment); otherwise the scheduler replaces them. Answers the killed
/// tasks (under `key`: `task` for one, `tasks` for several) or the deployment.
pub async fn kill(
    ctx: &Ctx,
    ids: &[String],
    params: &Params,
    key: &str,
) -> Result<Response, ApiError> {
    let scale = params.flag("scale", false)?;
    let force = params.flag("force", false)?;
    // `wipe` forgets resident instances in Marathon; there are none here, so a
    // wiped task is simply killed.
    params.flag("wipe", false)?;
    let (shown, shrink): (Vec<Value>, BTreeMap<String, u32>) = {
        let registry = ctx.master.registry();
        let mut shrink = BTreeMap::new();
        let shown = ids
            .iter()
            .filter_map(|id| registry.tasks.get(id.as_str()))
            .map(|t| {
                let app_id = t.spec.run_spec.as_ref().map(|r| r.app_id.clone());
                if let Some(app_id) = &app_id {
                    *shrink.entry(app_id.clone()).or_insert(0) += 1;
                }
                let app = app_id.and_then(|a| registry.marathon.app(&a));
                let mut json = task_json(t, &registry, app);
                json["state"] = json!("TASK_KILLING");
                json
            })
            .collect();
        (shown, shrink)
    };
    if scale {
        let put = {
            let registry = ctx.master.registry();
            shrink
                .iter()
                .filter_map(|(app_id, n)| {
                    let mut app = registry.marathon.app(app_id)?.clone();
                    app.instances = app.instances.saturating_sub(*n);
                    Some(app)
                })
                .collect()
        };
        ctx.master.kill_tasks(ids).await?;
        let deployed = deploy(
            ctx,
            Change {
                put,
                ..Change::default()
            },
            force,
        )
        .await?;
        return Ok(deployment_result(
            StatusCode::OK,
            &deployed.id,
            &deployed.version,
        ));
    }
    ctx.master.kill_tasks(ids).await?;
    if key == "task" {
        Ok(ok(
            json!({ "task": shown.into_iter().next().unwrap_or(Value::Null) }),
        ))
    } else {
        Ok(ok(json!({ "tasks": shown })))
    }
}
