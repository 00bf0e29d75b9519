//! Which Marathon events a registry change makes, in the shapes the Python
//! client `marathon` 0.13.0 parses. Deployment events carry the plan in the
//! "heavy" form (with `original` and `target`): the client crashes on the
//! light form Marathon ≥ 1.8 sends.
//!
//! Health: the agent reports a task's health when its verdict flips
//! (`Change::TaskHealthChanged`), so each flip is one
//! `health_status_changed_event` and one `instance_health_changed_event`
//! (a task is one instance here), and a flip to unhealthy adds a
//! `failed_health_check_event` naming the app's check that failed. A task
//! that ends while reported healthy makes `instance_health_changed_event`
//! with `healthy: false`, so a client following health alone never counts a
//! gone task as healthy. Only event types the Python client knows are sent.

use serde_json::{Value, json};

use super::Event;
use crate::master::registry::{Change, Registry};
use crate::model::{Task, TaskState};
use crate::scheduler::app::AppDefinition;
use crate::scheduler::state::{Deployment, MarathonChange, Outcome, actions_json};

pub fn events(registry: &Registry, change: &Change, now: f64) -> Vec<Event> {
    match change {
        Change::TaskUpdated { task_id, state, .. } => registry
            .task(task_id)
            .filter(|t| t.spec.run_spec.is_some() && t.state == *state)
            .map(|t| task_events(registry, t, now))
            .unwrap_or_default(),
        Change::TaskHealthChanged {
            task_id, healthy, ..
        } => registry
            .task(task_id)
            .map(|t| health_events(registry, t, *healthy, now))
            .unwrap_or_default(),
        Change::Marathon(change) => marathon_events(registry, change, now),
        _ => Vec::new(),
    }
}

/// A task's health flipped to `healthy`.
fn health_events(registry: &Registry, task: &Task, healthy: Option<bool>, now: f64) -> Vec<Event> {
    let Some(run) = &task.spec.run_spec else {
        return Vec::new();
    };
    let id = &task.spec.task_id;
    let mut out = Vec::new();
    if healthy == Some(false)
        && let Some(check) = failed_check(registry, task)
    {
        out.push(Event::new(
            "failed_health_check_event",
            json!({"appId": run.app_id, "taskId": id, "instanceId": id, "healthCheck": check}),
            now,
        ));
    }
    out.push(Event::new(
        "health_status_changed_event",
        json!({
            "appId": run.app_id,
            "taskId": id,
            "instanceId": id,
            "version": run.version,
            "alive": healthy == Some(true),
        }),
        now,
    ));
    out.push(instance_health_event(task, healthy, now));
    out
}

fn instance_health_event(task: &Task, healthy: Option<bool>, now: f64) -> Event {
    let run = task.spec.run_spec.as_ref();
    Event::new(
        "instance_health_changed_event",
        json!({
            "instanceId": task.spec.task_id,
            "runSpecId": run.map(|r| r.app_id.as_str()),
            "runSpecVersion": run.map(|r| r.version.as_str()),
            "healthy": healthy,
        }),
        now,
    )
}

/// The app's health check (as the app declares it) that the task's latest
/// report says is failing: from the app version the task runs, the first
/// check not alive.
fn failed_check(registry: &Registry, task: &Task) -> Option<Value> {
    let run = task.spec.run_spec.as_ref()?;
    let record = registry.marathon.apps.get(&run.app_id)?;
    let app = record
        .versions
        .iter()
        .rev()
        .find(|a| a.version.as_deref() == Some(run.version.as_str()))
        .unwrap_or_else(|| record.current());
    let index = task
        .health
        .as_ref()
        .and_then(|r| r.checks.iter().position(|c| !c.alive))
        .unwrap_or(0);
    let check = app
        .health_checks
        .get(index)
        .or_else(|| app.health_checks.first())?;
    serde_json::to_value(check).ok()
}

fn task_events(registry: &Registry, task: &Task, now: f64) -> Vec<Event> {
    let Some(run) = &task.spec.run_spec else {
        return Vec::new();
    };
    let host = registry
        .agents
        .get(&task.spec.agent_id)
        .map(|a| a.hostname.clone())
        .unwrap_or_default();
    let status = task.latest();
    let ports: Vec<u16> = task.spec.ports.iter().map(|p| p.number).collect();
    let ips: Vec<Value> = status
        .map(|s| s.container_ips.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|ip| json!({"ipAddress": ip, "protocol": "IPv4"}))
        .collect();
    let mut out = vec![
        Event::new(
            "status_update_event",
            json!({
                "slaveId": task.spec.agent_id,
                "taskId": task.spec.task_id,
                "taskStatus": task.state,
                "message": status.and_then(|s| s.message.clone()).unwrap_or_default(),
                "appId": run.app_id,
                "host": host,
                "ipAddresses": ips,
                "ports": ports,
                "version": run.version,
            }),
            now,
        ),
        Event::new(
            "instance_changed_event",
            json!({
                "instanceId": task.spec.task_id,
                "condition": condition(task.state),
                "runSpecId": run.app_id,
                "agentId": task.spec.agent_id,
                "slaveId": task.spec.agent_id,
                "host": host,
                "runSpecVersion": run.version,
            }),
            now,
        ),
    ];
    if task.state.is_terminal() && task.healthy == Some(true) {
        out.push(instance_health_event(task, Some(false), now));
    }
    if task.state == TaskState::Killed
        && status.and_then(|s| s.reason.as_deref())
            == Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED")
    {
        out.push(Event::new(
            "unhealthy_instance_kill_event",
            json!({
                "appId": run.app_id,
                "taskId": task.spec.task_id,
                "instanceId": task.spec.task_id,
                "version": run.version,
                "reason": status.and_then(|s| s.message.clone()).unwrap_or_default(),
                "host": host,
                "slaveId": task.spec.agent_id,
            }),
            now,
        ));
    }
    out
}

/// Marathon's instance condition for a task state.
fn condition(state: TaskState) -> &'static str {
    match state {
        TaskState::Staging => "Staging",
        TaskState::Starting => "Starting",
        TaskState::Running => "Running",
        TaskState::Killing => "Killing",
        TaskState::Finished => "Finished",
        TaskState::Failed => "Failed",
        TaskState::Killed => "Killed",
        TaskState::Error => "Error",
        TaskState::Lost => "Unknown",
        TaskState::Dropped => "Dropped",
        TaskState::Unreachable => "Unreachable",
        TaskState::Gone => "Gone",
    }
}

fn marathon_events(registry: &Registry, change: &MarathonChange, now: f64) -> Vec<Event> {
    let marathon = &registry.marathon;
    match change {
        MarathonChange::AppsChanged { put, removed } => {
            let mut out: Vec<Event> = put
                .iter()
                .filter_map(|id| marathon.app(id))
                .map(|app| {
                    Event::new(
                        "api_post_event",
                        json!({
                            "clientIp": "",
                            "uri": format!("/v2/apps{}", app.id),
                            "appDefinition": app.to_json(),
                        }),
                        now,
                    )
                })
                .collect();
            out.extend(
                removed
                    .iter()
                    .map(|id| Event::new("app_terminated_event", json!({"appId": id}), now)),
            );
            out
        }
        MarathonChange::DeploymentStarted { id } => marathon
            .deployments
            .get(id)
            .map(|d| {
                vec![step_event(
                    "deployment_info",
                    registry,
                    d,
                    d.current_step,
                    now,
                )]
            })
            .unwrap_or_default(),
        MarathonChange::DeploymentAdvanced { id, finished_step } => marathon
            .deployments
            .get(id)
            .map(|d| {
                vec![
                    step_event("deployment_step_success", registry, d, *finished_step, now),
                    step_event("deployment_info", registry, d, d.current_step, now),
                ]
            })
            .unwrap_or_default(),
        MarathonChange::DeploymentFinished {
            deployment,
            outcome,
        } => {
            let d = deployment.as_ref();
            match outcome {
                Outcome::Succeeded => {
                    let mut out = Vec::new();
                    if !d.steps.is_empty() {
                        out.push(step_event(
                            "deployment_step_success",
                            registry,
                            d,
                            d.current_step,
                            now,
                        ));
                    }
                    out.push(Event::new(
                        "deployment_success",
                        json!({"id": d.id, "plan": plan_json(registry, d)}),
                        now,
                    ));
                    out
                }
                Outcome::Failed { reason } => failed(registry, d, reason, now),
                Outcome::Canceled => failed(registry, d, "canceled", now),
            }
        }
        MarathonChange::DelayReset { .. } => Vec::new(),
        MarathonChange::SubscriptionsChanged { url, subscribed } => vec![Event::new(
            if *subscribed {
                "subscribe_event"
            } else {
                "unsubscribe_event"
            },
            json!({"clientIp": "", "callbackUrl": url}),
            now,
        )],
    }
}

/// As Marathon's deployment actor: the step that was running fails, then the
/// deployment (a cancel fails its step too).
fn failed(registry: &Registry, d: &Deployment, reason: &str, now: f64) -> Vec<Event> {
    let mut out = Vec::new();
    if !d.steps.is_empty() {
        out.push(step_event(
            "deployment_step_failure",
            registry,
            d,
            d.current_step,
            now,
        ));
    }
    out.push(Event::new(
        "deployment_failed",
        json!({"id": d.id, "plan": plan_json(registry, d), "reason": reason}),
        now,
    ));
    out
}

fn step_event(kind: &str, registry: &Registry, d: &Deployment, step: usize, now: f64) -> Event {
    let actions = d.steps.get(step).map(Vec::as_slice).unwrap_or(&[]);
    Event::new(
        kind,
        json!({
            "plan": plan_json(registry, d),
            "currentStep": {"actions": actions_json(actions)},
        }),
        now,
    )
}

/// The plan with the app tree before (`original`) and after (`target`).
fn plan_json(registry: &Registry, d: &Deployment) -> Value {
    let steps: Vec<Value> = d
        .steps
        .iter()
        .map(|s| json!({"actions": actions_json(s)}))
        .collect();
    let original: Vec<Value> = d
        .original
        .values()
        .flatten()
        .map(AppDefinition::to_json)
        .collect();
    let target: Vec<Value> = d
        .affected_apps
        .iter()
        .filter_map(|id| registry.marathon.app(id))
        .map(AppDefinition::to_json)
        .collect();
    let tree = |apps: Vec<Value>| json!({"id": "/", "apps": apps, "groups": [], "dependencies": [], "version": d.version});
    json!({
        "id": d.id,
        "version": d.version,
        "steps": steps,
        "original": tree(original),
        "target": tree(target),
    })
}
