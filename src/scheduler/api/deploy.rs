//! Every change to apps and groups goes through [`deploy`]: stamp versions,
//! check the apps are not locked by a running deployment, plan, propose.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;

use super::Ctx;
use crate::api::error::{ApiError, propose_error};
use crate::master::command::Command;
use crate::master::now_secs;
use crate::scheduler::app::{AppDefinition, UpdateKind, VersionInfo};
use crate::scheduler::deployment::{self, Apps};
use crate::scheduler::placement::Constraint;
use crate::scheduler::service_ports::{self, Assigner};
use crate::scheduler::state::{GroupRecord, MarathonCommand, version_at};

/// A change of the app tree.
#[derive(Debug, Default)]
pub struct Change {
    /// New or updated apps (their versions are stamped here).
    pub put: Vec<AppDefinition>,
    pub remove: Vec<String>,
    /// Apps to restart even if unchanged.
    pub restart: Vec<String>,
    pub put_groups: Vec<GroupRecord>,
    pub remove_groups: Vec<String>,
}

pub struct Deployed {
    pub id: String,
    pub version: String,
    /// The apps as stored.
    pub apps: Vec<AppDefinition>,
}

/// Proposes the change and its deployment. `force` cancels the running
/// deployments of the affected apps instead of answering 409.
pub async fn deploy(ctx: &Ctx, mut change: Change, force: bool) -> Result<Deployed, ApiError> {
    let time = now_secs();
    let version = version_at(time);
    let id = uuid::Uuid::new_v4().to_string();
    for app in &change.put {
        if let Err((i, why)) = Constraint::parse_all(&app.constraints) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{}: /constraints({i}): {why}", app.id),
            )
            .with_details(
                serde_json::json!([{"path": format!("/constraints({i})"), "errors": [why]}]),
            ));
        }
    }
    let (command, apps) = {
        let registry = ctx.master.registry();
        let marathon = &registry.marathon;
        let mut original: Apps = BTreeMap::new();
        let mut target: Apps = BTreeMap::new();
        let mut ports = Assigner::new(&marathon.service_ports, &change.put);
        for app in &mut change.put {
            let key = app.id.to_string();
            let before = marathon.app(&key).cloned();
            stamp(
                app,
                before.as_ref(),
                &version,
                change.restart.contains(&key),
            );
            ports
                .assign(app, before.as_ref())
                .map_err(|path| ports_exhausted(&key, &path))?;
            original.insert(key.clone(), before);
            target.insert(key, Some(app.clone()));
        }
        for key in &change.remove {
            original.insert(key.clone(), marathon.app(key).cloned());
            target.insert(key.clone(), None);
        }
        // Only an app put with dependencies can close a cycle: the stored
        // apps have none (each change was checked). Most changes put none,
        // and skip reading every app.
        if change.put.iter().any(|a| !a.dependencies.is_empty()) {
            // The dependency order needs the apps the change leaves as they are.
            let mut whole: BTreeMap<&str, &AppDefinition> = marathon
                .apps
                .iter()
                .map(|(k, r)| (k.as_str(), r.current()))
                .collect();
            for (key, after) in &target {
                match after {
                    Some(app) => whole.insert(key.as_str(), app),
                    None => whole.remove(key.as_str()),
                };
            }
            if let Some(cycle) = deployment::find_cycle(&whole) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("/dependencies: dependency cycle: {cycle}"),
                ));
            }
        }
        let locked: Vec<String> = marathon
            .deployments
            .touching(target.keys().map(String::as_str))
            .map(|d| d.id.clone())
            .collect();
        if !locked.is_empty() && !force {
            return Err(locked_error(&locked));
        }
        let plan = deployment::plan(
            id.clone(),
            version.clone(),
            &original,
            &target,
            &change.restart,
        );
        let apps: Vec<AppDefinition> = change.put.clone();
        (
            MarathonCommand::Deploy {
                put: change.put.into_iter().map(Arc::new).collect(),
                remove: change.remove,
                put_groups: change.put_groups,
                remove_groups: change.remove_groups,
                deployment: Arc::new(plan),
                cancel: locked,
            },
            apps,
        )
    };
    ctx.master
        .raft
        .propose(Command::Marathon { command })
        .await
        .map_err(propose_error)?;
    Ok(Deployed { id, version, apps })
}

/// No service port left for the app's field at `path`.
fn ports_exhausted(app: &str, path: &str) -> ApiError {
    let why = format!(
        "no service port left in {}-{}: every one is held by an app",
        service_ports::RANGE.start,
        service_ports::RANGE.end - 1
    );
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("{app}: {path}: {why}"),
    )
    .with_details(serde_json::json!([{"path": path, "errors": [why]}]))
}

/// Marathon's 409 for an app a running deployment holds.
pub fn locked_error(deployments: &[String]) -> ApiError {
    let ids: Vec<String> = deployments.iter().map(|d| format!("'{d}'")).collect();
    ApiError::conflict(format!(
        "App is locked by one or more deployments ({}). Override with the option '?force=true'. \
         View details at '/v2/deployments/<DEPLOYMENT_ID>'.",
        ids.join(", ")
    ))
    .with_details(serde_json::json!(
        deployments
            .iter()
            .map(|d| serde_json::json!({"id": d}))
            .collect::<Vec<_>>()
    ))
}

/// Sets `version` and `versionInfo` as Marathon does: a scale keeps the last
/// configuration change, anything else (and a restart) moves it.
fn stamp(app: &mut AppDefinition, before: Option<&AppDefinition>, version: &str, restart: bool) {
    let config_changed = match before {
        None => true,
        Some(before) => restart || UpdateKind::between(before, app) == UpdateKind::Restart,
    };
    let last_config = match (config_changed, before) {
        (false, Some(before)) => before
            .version_info
            .as_ref()
            .map(|v| v.last_config_change_at.clone())
            .or_else(|| before.version.clone())
            .unwrap_or_else(|| version.to_string()),
        _ => version.to_string(),
    };
    app.version = Some(version.to_string());
    app.version_info = Some(VersionInfo {
        last_scaling_at: version.to_string(),
        last_config_change_at: last_config,
    });
}
