//! `/v2/groups`: the app tree by group. Groups exist because an app lies
//! under them or because they were created (with dependencies); a group
//! write is one deployment for every app it touches.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::deploy::{Change, deploy};
use super::json::{Embed, app_info};
use super::{Ctx, Params, body_json, deployment_result, ok};
use crate::api::error::ApiError;
use crate::master::registry::Registry;
use crate::scheduler::app::{GroupDefinition, PathId};
use crate::scheduler::state::{GroupRecord, version_at};

fn group_id(rest: &str) -> Result<String, ApiError> {
    let raw = format!("/{}", rest.trim_matches('/'));
    if raw == "/" {
        return Ok(raw);
    }
    PathId::parse(&raw)
        .map(|p| p.to_string())
        .map_err(|e| ApiError::bad_request(format!("id: {e}")))
}

fn parent_of(id: &str) -> String {
    match id.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((parent, _)) => parent.to_string(),
    }
}

/// Every group id: created ones and the ancestors of every app.
fn all_groups(registry: &Registry) -> BTreeSet<String> {
    let mut groups: BTreeSet<String> = registry.marathon.groups.keys().cloned().collect();
    groups.insert("/".into());
    for id in registry
        .marathon
        .apps
        .keys()
        .chain(registry.marathon.groups.keys())
    {
        let mut p = parent_of(id);
        while p != "/" {
            groups.insert(p.clone());
            p = parent_of(&p);
        }
    }
    groups
}

fn group_json(registry: &Registry, id: &str, groups: &BTreeSet<String>, embed: Embed) -> Value {
    let record = registry.marathon.groups.get(id);
    let apps: Vec<Value> = registry
        .marathon
        .apps
        .iter()
        .filter(|(app_id, _)| parent_of(app_id) == id)
        .map(|(_, r)| app_info(r.current(), registry, embed))
        .collect();
    let children: Vec<Value> = groups
        .iter()
        .filter(|g| g.as_str() != "/" && parent_of(g) == id)
        .map(|g| group_json(registry, g, groups, embed))
        .collect();
    let version = record
        .map(|r| r.version.clone())
        .or_else(|| {
            registry
                .marathon
                .apps
                .values()
                .filter_map(|r| r.current().version.clone())
                .max()
        })
        .unwrap_or_else(|| version_at(0.0));
    json!({
        "id": id,
        "apps": apps,
        "groups": children,
        "pods": [],
        "dependencies": record.map(|r| r.dependencies.clone()).unwrap_or_default(),
        "version": version,
    })
}

pub async fn get_root(State(ctx): State<Ctx>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    get(ctx, "/".into(), q).await
}

pub async fn get_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    get(ctx, group_id(&rest)?, q).await
}

async fn get(ctx: Ctx, id: String, q: Option<String>) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let embed = Embed {
        tasks: params.embeds("tasks"),
        last_task_failure: params.embeds("lastTaskFailure"),
        readiness: params.embeds("readiness"),
    };
    let registry = ctx.master.registry();
    let groups = all_groups(&registry);
    if !groups.contains(&id) {
        return Err(ApiError::not_found(format!("Group '{id}' does not exist")));
    }
    Ok(ok(group_json(&registry, &id, &groups, embed)))
}

pub async fn create_root(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(ctx, None, q, body, true).await
}

pub async fn create_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(ctx, Some(group_id(&rest)?), q, body, true).await
}

pub async fn put_root(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(ctx, None, q, body, false).await
}

pub async fn put_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    // marathon-python's rollback_group PUTs to `/{id}/versions/{v}`; group
    // versions are not kept, so that is refused plainly rather than misread.
    if rest.contains("/versions/") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "group versions are not kept; roll back each app with PUT /v2/apps/{id} {\"version\": ...}",
        ));
    }
    write(ctx, Some(group_id(&rest)?), q, body, false).await
}

/// POST (create: 409 if the group exists) and PUT (create or replace: apps
/// of the group missing from the body are removed; `{"scaleBy": x}` scales
/// every app under it).
async fn write(
    ctx: Ctx,
    path_id: Option<String>,
    q: Option<String>,
    body: Bytes,
    create: bool,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let force = params.flag("force", false)?;
    let mut body = body_json(&body)?;
    let base = path_id.clone().unwrap_or_else(|| "/".into());
    if let (Some(id), Some(obj)) = (&path_id, body.as_object_mut()) {
        obj.entry("id").or_insert_with(|| json!(id));
    }
    if let Some(factor) = body.get("scaleBy") {
        let factor = factor
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| ApiError::bad_request("scaleBy: a non-negative number is required"))?;
        let prefix = format!("{}/", base.trim_end_matches('/'));
        let put = {
            let registry = ctx.master.registry();
            registry
                .marathon
                .apps
                .iter()
                .filter(|(id, _)| base == "/" || id.starts_with(&prefix))
                .map(|(_, r)| {
                    let mut app = r.current().clone();
                    app.instances = (f64::from(app.instances) * factor).ceil() as u32;
                    app
                })
                .collect()
        };
        let deployed = deploy(
            &ctx,
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
    let parent =
        PathId::parse(&parent_of(&base)).map_err(|e| ApiError::bad_request(format!("id: {e}")))?;
    let definition = GroupDefinition::from_json(&body, &parent).map_err(ApiError::from)?;
    let group = definition.id.to_string();
    let flat = definition.flatten();
    let (remove, exists) = {
        let registry = ctx.master.registry();
        let exists = all_groups(&registry).contains(&group) && group != "/";
        let keep: BTreeSet<String> = flat.apps.iter().map(|a| a.id.to_string()).collect();
        let prefix = format!("{}/", group.trim_end_matches('/'));
        let remove: Vec<String> = if create {
            Vec::new()
        } else {
            registry
                .marathon
                .apps
                .keys()
                .filter(|id| id.starts_with(&prefix) && !keep.contains(*id))
                .cloned()
                .collect()
        };
        (remove, exists)
    };
    if create && exists {
        return Err(ApiError::conflict(format!(
            "Group {group} is already created. Use PUT to change this group."
        )));
    }
    let version = version_at(crate::master::now_secs());
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in &flat.groups {
        deps.insert(
            node.id.to_string(),
            node.dependencies.iter().map(|p| p.to_string()).collect(),
        );
    }
    let put_groups = deps
        .into_iter()
        .map(|(id, dependencies)| GroupRecord {
            id,
            dependencies,
            version: version.clone(),
        })
        .collect();
    let deployed = deploy(
        &ctx,
        Change {
            put: flat.apps,
            remove,
            put_groups,
            ..Change::default()
        },
        force,
    )
    .await?;
    let status = if create || !exists {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(deployment_result(status, &deployed.id, &deployed.version))
}

pub async fn delete_root(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    delete(ctx, "/".into(), q).await
}

pub async fn delete_path(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    delete(ctx, group_id(&rest)?, q).await
}

/// Removes every app under the group, and the group.
async fn delete(ctx: Ctx, id: String, q: Option<String>) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let force = params.flag("force", false)?;
    let prefix = format!("{}/", id.trim_end_matches('/'));
    let remove: Vec<String> = {
        let registry = ctx.master.registry();
        if !all_groups(&registry).contains(&id) {
            return Err(ApiError::not_found(format!("Group '{id}' does not exist")));
        }
        registry
            .marathon
            .apps
            .keys()
            .filter(|a| id == "/" || a.starts_with(&prefix))
            .cloned()
            .collect()
    };
    let deployed = deploy(
        &ctx,
        Change {
            remove,
            remove_groups: vec![id],
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
