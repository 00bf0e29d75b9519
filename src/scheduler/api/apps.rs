//! `/v2/apps`: list, create, update (partial by default, as Marathon),
//! roll back, restart, delete, and an app's tasks and versions.
//!
//! Paths under `/v2/apps/` hold nested ids, so one wildcard route takes them
//! and [`Target::parse`] reads the suffix (`/restart`, `/tasks[/{id}]`,
//! `/versions[/{v}]`, `/*`) off the end, collapsing `//` on the way.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::deploy::{Change, deploy};
use super::json::{AppInfo, Embed, app_info, app_tasks, task_json};
use super::{Ctx, Params, body_json, deployment_result, ok};
use crate::api::error::ApiError;
use crate::scheduler::app::{AppDefinition, PathId, merge};

/// What a path under `/v2/apps/` names.
#[derive(Debug, PartialEq)]
enum Target {
    App(String),
    Restart(String),
    Tasks(String),
    Task(String, String),
    Versions(String),
    Version(String, String),
    /// `/v2/apps/{group}/*`: the apps under a group.
    GroupApps(String),
}

impl Target {
    fn parse(rest: &str) -> Result<Self, ApiError> {
        let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let id = |segs: &[&str]| -> Result<String, ApiError> {
            let raw = format!("/{}", segs.join("/"));
            PathId::parse(&raw)
                .map(|p| p.to_string())
                .map_err(|e| ApiError::bad_request(format!("id: {e}")))
        };
        let n = segs.len();
        if n == 0 {
            return Err(ApiError::not_found("no app id in the path"));
        }
        Ok(match (segs[n - 1], n.checked_sub(2).map(|i| segs[i])) {
            ("*", _) => Self::GroupApps(if n == 1 {
                "/".into()
            } else {
                id(&segs[..n - 1])?
            }),
            ("restart", _) if n >= 2 => Self::Restart(id(&segs[..n - 1])?),
            ("tasks", _) if n >= 2 => Self::Tasks(id(&segs[..n - 1])?),
            ("versions", _) if n >= 2 => Self::Versions(id(&segs[..n - 1])?),
            (task, Some("tasks")) if n >= 3 => Self::Task(id(&segs[..n - 2])?, task.to_string()),
            (v, Some("versions")) if n >= 3 => Self::Version(id(&segs[..n - 2])?, v.to_string()),
            _ => Self::App(id(&segs)?),
        })
    }
}

fn app_missing(id: &str) -> ApiError {
    ApiError::not_found(format!("App '{id}' does not exist"))
}

fn embed_of(params: &Params, always: bool) -> Embed {
    Embed {
        tasks: always || params.embeds("tasks"),
        last_task_failure: always || params.embeds("lastTaskFailure"),
        readiness: params.embeds("readiness"),
    }
}

/// `GET /v2/apps`: filters `cmd`, `id` (substring, any case), `label`.
pub async fn list(State(ctx): State<Ctx>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let selector = params.get("label").map(LabelSelector::parse).transpose()?;
    let cmd = params.get("cmd");
    let id = params.get("id").map(str::to_lowercase);
    let embed = embed_of(&params, false);
    let registry = ctx.master.registry();
    let apps: Vec<AppInfo> = registry
        .marathon
        .apps
        .values()
        .map(|r| r.current())
        .filter(|a| cmd.is_none_or(|c| a.cmd.as_deref().is_some_and(|x| x.contains(c))))
        .filter(|a| {
            id.as_ref()
                .is_none_or(|i| a.id.to_string().to_lowercase().contains(i.as_str()))
        })
        .filter(|a| selector.as_ref().is_none_or(|s| s.matches(&a.labels)))
        .map(|a| AppInfo::of(a, &registry, embed))
        .collect();
    // Serialized straight to bytes: a thousand apps as JSON trees first
    // would cost as much again.
    #[derive(serde::Serialize)]
    struct Apps<'a> {
        apps: Vec<AppInfo<'a>>,
    }
    Ok((StatusCode::OK, axum::Json(Apps { apps })).into_response())
}

pub async fn get_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let registry = ctx.master.registry();
    let marathon = &registry.marathon;
    match Target::parse(&rest)? {
        Target::App(id) => {
            let app = marathon.app(&id).ok_or_else(|| app_missing(&id))?;
            Ok(ok(
                json!({ "app": app_info(app, &registry, embed_of(&params, true)) }),
            ))
        }
        Target::GroupApps(group) => {
            let prefix = format!("{}/", group.trim_end_matches('/'));
            let apps: Vec<Value> = marathon
                .apps
                .iter()
                .filter(|(id, _)| id.starts_with(&prefix))
                .map(|(_, r)| app_info(r.current(), &registry, embed_of(&params, false)))
                .collect();
            Ok(ok(json!({ "*": apps })))
        }
        Target::Tasks(id) => {
            let app = marathon.app(&id).ok_or_else(|| app_missing(&id))?;
            let tasks: Vec<Value> = app_tasks(&registry, &id)
                .into_iter()
                .map(|t| task_json(t, &registry, Some(app)))
                .collect();
            Ok(ok(json!({ "tasks": tasks })))
        }
        Target::Versions(id) => {
            let record = marathon.apps.get(&id).ok_or_else(|| app_missing(&id))?;
            let versions: Vec<Value> = record
                .versions
                .iter()
                .rev()
                .filter_map(|a| a.version.clone().map(Value::String))
                .collect();
            Ok(ok(json!({ "versions": versions })))
        }
        Target::Version(id, version) => {
            let record = marathon.apps.get(&id).ok_or_else(|| app_missing(&id))?;
            let app = record
                .versions
                .iter()
                .find(|a| a.version.as_deref() == Some(version.as_str()))
                .ok_or_else(|| {
                    ApiError::not_found(format!("App '{id}' does not exist in version {version}"))
                })?;
            Ok(ok(app.to_json()))
        }
        Target::Restart(_) | Target::Task(..) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST for restart and DELETE for a task",
        )),
    }
}

/// Parses and validates an app from a request body value.
fn app_from(value: &Value, base: &str) -> Result<AppDefinition, ApiError> {
    let base = PathId::parse(base).map_err(|e| ApiError::bad_request(format!("id: {e}")))?;
    AppDefinition::from_json(value, &base).map_err(ApiError::from)
}

/// `POST /v2/apps`: 201 with the AppInfo, `Location` and the deployment id.
pub async fn create(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let force = params.flag("force", false)?;
    let app = app_from(&body_json(&body)?, "/")?;
    let id = app.id.to_string();
    if ctx.master.registry().marathon.app(&id).is_some() {
        return Err(ApiError::conflict(format!(
            "An app with id [{id}] already exists."
        )));
    }
    let deployed = deploy(
        &ctx,
        Change {
            put: vec![app],
            ..Change::default()
        },
        force,
    )
    .await?;
    let info = {
        let registry = ctx.master.registry();
        let stored = registry.marathon.app(&id).cloned();
        let mut info = match &stored {
            Some(app) => app_info(app, &registry, Embed::default()),
            None => deployed
                .apps
                .first()
                .map(AppDefinition::to_json)
                .unwrap_or_default(),
        };
        info["deployments"] = json!([{ "id": deployed.id }]);
        info
    };
    let mut response = (StatusCode::CREATED, axum::Json(info)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps{id}")) {
        headers.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&deployed.id) {
        headers.insert("Marathon-Deployment-Id", v);
    }
    Ok(response)
}

/// The new app for a PUT/PATCH body: a rollback (`{"version": v}` alone), a
/// partial update merged over the current app, or a whole new definition.
fn updated_app(
    ctx: &Ctx,
    id: &str,
    body: &Value,
    partial: bool,
) -> Result<(AppDefinition, bool), ApiError> {
    let registry = ctx.master.registry();
    let record = registry.marathon.apps.get(id);
    if let Some(v) = rollback_version(body) {
        let record = record.ok_or_else(|| app_missing(id))?;
        let old = record
            .versions
            .iter()
            .find(|a| a.version.as_deref() == Some(v))
            .ok_or_else(|| {
                ApiError::not_found(format!("App '{id}' does not exist in version {v}"))
            })?;
        return Ok(((**old).clone(), false));
    }
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut() {
        // The path names the app; a body id must agree or be absent.
        match obj.get("id").and_then(Value::as_str) {
            Some(given)
                if PathId::parse(given).map(|p| p.to_string()).ok().as_deref() != Some(id) =>
            {
                return Err(ApiError::bad_request(format!(
                    "id: '{given}' does not match the path's app '{id}'"
                )));
            }
            _ => {
                obj.insert("id".into(), json!(id));
            }
        }
    }
    match record {
        Some(record) if partial => Ok((
            merge(record.current(), &body).map_err(ApiError::from)?,
            false,
        )),
        Some(_) => Ok((app_from(&body, "/")?, false)),
        None => Ok((app_from(&body, "/")?, true)),
    }
}

fn rollback_version(body: &Value) -> Option<&str> {
    let obj = body.as_object()?;
    (obj.len() == 1)
        .then(|| obj.get("version")?.as_str())
        .flatten()
}

pub async fn put_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let partial = params.flag("partialUpdate", true)?;
    update_one(ctx, &rest, &params, &body, partial).await
}

pub async fn patch_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    update_one(ctx, &rest, &params, &body, true).await
}

async fn update_one(
    ctx: Ctx,
    rest: &str,
    params: &Params,
    body: &[u8],
    partial: bool,
) -> Result<Response, ApiError> {
    let force = params.flag("force", false)?;
    let Target::App(id) = Target::parse(rest)? else {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "PUT and PATCH take an app id",
        ));
    };
    let body = body_json(body)?;
    let (app, created) = updated_app(&ctx, &id, &body, partial)?;
    let deployed = deploy(
        &ctx,
        Change {
            put: vec![app],
            ..Change::default()
        },
        force,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(deployment_result(status, &deployed.id, &deployed.version))
}

/// `PUT /v2/apps` with an array: create or update each, in one deployment.
pub async fn put_many(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let partial = params.flag("partialUpdate", true)?;
    update_many(ctx, &params, &body, partial, false).await
}

/// `PATCH /v2/apps`: partial updates of existing apps only.
pub async fn patch_many(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    update_many(ctx, &params, &body, true, true).await
}

async fn update_many(
    ctx: Ctx,
    params: &Params,
    body: &[u8],
    partial: bool,
    existing_only: bool,
) -> Result<Response, ApiError> {
    let force = params.flag("force", false)?;
    let body = body_json(body)?;
    let items = body
        .as_array()
        .ok_or_else(|| ApiError::bad_request("the body must be an array of apps"))?;
    let mut put = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("[{i}].id: every app needs an id")))?;
        let id = PathId::parse(id)
            .map_err(|e| ApiError::bad_request(format!("[{i}].id: {e}")))?
            .to_string();
        if existing_only && ctx.master.registry().marathon.app(&id).is_none() {
            return Err(app_missing(&id));
        }
        let (app, _) = updated_app(&ctx, &id, item, partial).map_err(|mut e| {
            e.message = format!("[{i}]: {}", e.message);
            e
        })?;
        put.push(app);
    }
    let deployed = deploy(
        &ctx,
        Change {
            put,
            ..Change::default()
        },
        force,
    )
    .await?;
    Ok(deployment_result(
        StatusCode::OK,
        &deployed.id,
        &deployed.version,
    ))
}

/// `POST /v2/apps/{id}/restart`.
pub async fn post_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let force = params.flag("force", false)?;
    let Target::Restart(id) = Target::parse(&rest)? else {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST under /v2/apps/ is only for /restart",
        ));
    };
    let app = ctx
        .master
        .registry()
        .marathon
        .app(&id)
        .cloned()
        .ok_or_else(|| app_missing(&id))?;
    let deployed = deploy(
        &ctx,
        Change {
            put: vec![app],
            restart: vec![id],
            ..Change::default()
        },
        force,
    )
    .await?;
    Ok(deployment_result(
        StatusCode::OK,
        &deployed.id,
        &deployed.version,
    ))
}

/// `DELETE /v2/apps/{id}`, `/v2/apps/{id}/tasks` and `/v2/apps/{id}/tasks/{task}`.
pub async fn delete_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    match Target::parse(&rest)? {
        Target::App(id) => {
            // Marathon's own default for DELETE is force=true.
            let force = params.flag("force", true)?;
            if ctx.master.registry().marathon.app(&id).is_none() {
                return Err(app_missing(&id));
            }
            let deployed = deploy(
                &ctx,
                Change {
                    remove: vec![id],
                    ..Change::default()
                },
                force,
            )
            .await?;
            Ok(deployment_result(
                StatusCode::OK,
                &deployed.id,
                &deployed.version,
            ))
        }
        Target::Tasks(id) => {
            let host = params.get("host").map(str::to_string);
            let ids: Vec<String> = {
                let registry = ctx.master.registry();
                if registry.marathon.app(&id).is_none() {
                    return Err(app_missing(&id));
                }
                app_tasks(&registry, &id)
                    .into_iter()
                    .filter(|t| {
                        host.as_ref().is_none_or(|h| {
                            registry
                                .agents
                                .get(&t.spec.agent_id)
                                .is_some_and(|a| &a.hostname == h)
                        })
                    })
                    .map(|t| t.spec.task_id.clone())
                    .collect()
            };
            super::tasks::kill(&ctx, &ids, &params, "tasks").await
        }
        Target::Task(id, task) => {
            {
                let registry = ctx.master.registry();
                let belongs = registry
                    .tasks
                    .get(task.as_str())
                    .is_some_and(|t| t.spec.run_spec.as_ref().is_some_and(|r| r.app_id == id));
                if !belongs {
                    return Err(ApiError::not_found(format!("Task '{task}' does not exist")));
                }
            }
            super::tasks::kill(&ctx, &[task], &params, "task").await
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE takes an app, its tasks, or one of its tasks",
        )),
    }
}

/// Marathon's label selector: `k`, `k==v`, `k!=v`, `k in (a,b)`,
/// `k notin (a,b)`, several joined by commas outside parentheses.
#[derive(Debug)]
struct LabelSelector(Vec<(String, Op)>);

#[derive(Debug)]
enum Op {
    Exists,
    Eq(String),
    Ne(String),
    In(Vec<String>),
    NotIn(Vec<String>),
}

impl LabelSelector {
    fn parse(text: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        let bytes = text.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'(' => depth += 1,
                b')' => depth -= 1,
                b',' if depth == 0 => {
                    terms.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        terms.push(&text[start..]);
        let bad = |t: &str| ApiError::bad_request(format!("label: cannot read selector '{t}'"));
        let list = |v: &str| -> Option<Vec<String>> {
            let v = v.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(v.split(',').map(|s| s.trim().to_string()).collect())
        };
        let mut out = Vec::new();
        for term in terms.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
            let parsed = if let Some((k, v)) = term.split_once("==") {
                (k.trim().to_string(), Op::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = term.split_once("!=") {
                (k.trim().to_string(), Op::Ne(v.trim().to_string()))
            } else if let Some((k, v)) = term.split_once(" notin ") {
                (
                    k.trim().to_string(),
                    Op::NotIn(list(v).ok_or_else(|| bad(term))?),
                )
            } else if let Some((k, v)) = term.split_once(" in ") {
                (
                    k.trim().to_string(),
                    Op::In(list(v).ok_or_else(|| bad(term))?),
                )
            } else if term.contains(char::is_whitespace) {
                return Err(bad(term));
            } else {
                (term.to_string(), Op::Exists)
            };
            out.push(parsed);
        }
        Ok(Self(out))
    }

    fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, op)| {
            let v = labels.get(k);
            match op {
                Op::Exists => v.is_some(),
                Op::Eq(x) => v == Some(x),
                Op::Ne(x) => v != Some(x),
                Op::In(xs) => v.is_some_and(|v| xs.contains(v)),
                Op::NotIn(xs) => v.is_none_or(|v| !xs.contains(v)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_apps() {
        assert_eq!(Target::parse("/foo").ok(), Some(Target::App("/foo".into())));
        assert_eq!(
            Target::parse("/g/a/restart").ok(),
            Some(Target::Restart("/g/a".into()))
        );
        assert_eq!(
            Target::parse("g//a/tasks/g_a.instance-1._app.1").ok(),
            Some(Target::Task("/g/a".into(), "g_a.instance-1._app.1".into()))
        );
        assert_eq!(
            Target::parse("/a/versions/2020-01-01T00:00:00.000Z").ok(),
            Some(Target::Version(
                "/a".into(),
                "2020-01-01T00:00:00.000Z".into()
            ))
        );
        assert_eq!(
            Target::parse("/g/*").ok(),
            Some(Target::GroupApps("/g".into()))
        );
    }

    #[test]
    fn label_selectors() {
        let labels = [("env".to_string(), "prod".to_string())]
            .into_iter()
            .collect();
        for (sel, want) in [
            ("env", true),
            ("env==prod", true),
            ("env!=prod", false),
            ("env in (dev, prod)", true),
            ("env notin (prod)", false),
            ("team", false),
            ("env,team", false),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&labels),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("env in prod").is_err());
    }
}
