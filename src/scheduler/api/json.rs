//! The shapes Marathon answers with: AppInfo (the app plus counts, tasks,
//! deployments, last failure) and its task JSON. Only keys the Python client
//! `marathon` 0.13.0 accepts are emitted; nulls are left out.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::master::registry::Registry;
use crate::model::{Task, TaskState};
use crate::scheduler::app::{AppDefinition, marathon_timestamp};
use crate::scheduler::driver::reconcile::config_version;
use crate::scheduler::state::TaskFailure;

/// Which optional parts of AppInfo to include.
#[derive(Debug, Clone, Copy, Default)]
pub struct Embed {
    pub tasks: bool,
    pub last_task_failure: bool,
    /// `readinessCheckResults` (`embed=app.readiness`).
    pub readiness: bool,
}

/// The live tasks of an app, oldest first (ties in task id order), through
/// the registry's index of each app's tasks: a scan of every task for the
/// answer to each POST was 6% of the master's CPU for 1,000 apps POSTed one
/// by one.
pub fn app_tasks<'a>(registry: &'a Registry, app_id: &str) -> Vec<&'a Task> {
    let mut tasks: Vec<&Task> = registry.app_tasks(app_id).collect();
    tasks.sort_by(|a, b| a.staged_at.total_cmp(&b.staged_at));
    tasks
}

/// An app's AppInfo as JSON.
pub fn app_info(app: &AppDefinition, registry: &Registry, embed: Embed) -> Value {
    AppInfo::of(app, registry, embed).to_json()
}

/// Marathon's AppInfo: the app's own JSON with the task counts, the running
/// deployments and, when asked for, the tasks and the last failure.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo<'a> {
    #[serde(flatten)]
    app: &'a AppDefinition,
    tasks_staged: usize,
    tasks_running: usize,
    tasks_healthy: usize,
    tasks_unhealthy: usize,
    deployments: Vec<DeploymentRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_task_failure: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    readiness_check_results: Option<Vec<Value>>,
}

#[derive(Serialize)]
struct DeploymentRef<'a> {
    id: &'a str,
}

impl<'a> AppInfo<'a> {
    /// The app's AppInfo, to serialize as it is (a listing of many apps
    /// never builds a JSON tree of each). Its tasks and running deployments
    /// come from the registry's and the Marathon state's indices by app, so
    /// a listing of every app costs a lookup per app, not a pass over every
    /// task.
    pub fn of(app: &'a AppDefinition, registry: &'a Registry, embed: Embed) -> Self {
        let id = app.id.to_string();
        let tasks = app_tasks(registry, &id);
        let running = tasks.iter().filter(|t| t.state == TaskState::Running);
        let (mut healthy, mut unhealthy) = (0, 0);
        if !app.health_checks.is_empty() {
            for t in running.clone() {
                match t.healthy {
                    Some(true) => healthy += 1,
                    Some(false) => unhealthy += 1,
                    None => {}
                }
            }
        }
        let staged = tasks
            .iter()
            .filter(|t| matches!(t.state, TaskState::Staging | TaskState::Starting))
            .count();
        Self {
            app,
            tasks_staged: staged,
            tasks_running: running.count(),
            tasks_healthy: healthy,
            tasks_unhealthy: unhealthy,
            deployments: registry
                .marathon
                .deployments
                .of(&id)
                .map(|d| DeploymentRef { id: &d.id })
                .collect(),
            tasks: embed.tasks.then(|| {
                tasks
                    .iter()
                    .map(|t| task_json(t, registry, Some(app)))
                    .collect()
            }),
            last_task_failure: embed
                .last_task_failure
                .then(|| registry.marathon.last_failures.get(&id))
                .flatten()
                .map(failure_json),
            readiness_check_results: embed.readiness.then(|| readiness_results(app, &tasks)),
        }
    }

    pub fn to_json(&self) -> Value {
        // Plain data: string keys, finite floats; this cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Marathon's `readinessCheckResults` of an app: one for each of its live
/// `tasks` of its current configuration that has a readiness check, ready or not.
pub fn readiness_results(app: &AppDefinition, tasks: &[&Task]) -> Vec<Value> {
    let version = config_version(app);
    tasks
        .iter()
        .filter(|t| {
            t.spec
                .run_spec
                .as_ref()
                .is_some_and(|r| r.config_version == version)
        })
        .filter_map(|t| {
            let check = t.spec.readiness_check.as_ref()?;
            Some(json!({
                "name": check.name,
                "taskId": t.spec.task_id,
                "ready": t.ready == Some(true),
            }))
        })
        .collect()
}

fn failure_json(f: &TaskFailure) -> Value {
    json!({
        "appId": f.app_id,
        "host": f.host,
        "message": f.message,
        "state": f.state,
        "taskId": f.task_id,
        "timestamp": marathon_timestamp(f.timestamp),
        "version": f.version,
        "slaveId": f.agent_id,
    })
}

/// A task as `/v2/tasks` and `/v2/apps/{id}/tasks` show it.
pub fn task_json(task: &Task, registry: &Registry, app: Option<&AppDefinition>) -> Value {
    let spec = &task.spec;
    let run = spec.run_spec.as_ref();
    let agent = registry.agents.get(&spec.agent_id);
    let host = agent.map(|a| a.hostname.clone()).unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), json!(spec.task_id));
    out.insert(
        "appId".into(),
        json!(run.map(|r| r.app_id.clone()).unwrap_or_default()),
    );
    out.insert("host".into(), json!(host));
    out.insert("slaveId".into(), json!(spec.agent_id));
    out.insert("state".into(), json!(task.state));
    if let Some(version) = run.map(|r| r.version.clone()) {
        out.insert("version".into(), json!(version));
    }
    if !task.state.is_terminal() {
        out.insert("stagedAt".into(), json!(marathon_timestamp(task.staged_at)));
        if let Some(started) = task.started_at {
            out.insert("startedAt".into(), json!(marathon_timestamp(started)));
        }
        let ports: Vec<u16> = spec.ports.iter().map(|p| p.number).collect();
        // The client zips ports with servicePorts: never fewer service ports.
        let mut service: Vec<u16> = app.map(AppDefinition::service_ports).unwrap_or_default();
        service.resize(service.len().max(ports.len()), 0);
        out.insert("ports".into(), json!(ports));
        out.insert("servicePorts".into(), json!(service));
    }
    let ips: Vec<Value> = ip_addresses(task, registry)
        .into_iter()
        .map(|ip| json!({"ipAddress": ip, "protocol": if ip.contains(':') { "IPv6" } else { "IPv4" }}))
        .collect();
    out.insert("ipAddresses".into(), json!(ips));
    if app.is_some_and(|a| !a.health_checks.is_empty()) {
        out.insert(
            "healthCheckResults".into(),
            json!(crate::model::health::health_check_results(
                task,
                &spec.task_id
            )),
        );
    }
    out.insert("localVolumes".into(), json!([]));
    out.insert("role".into(), json!("*"));
    Value::Object(out)
}

/// The task's container IPs when known, else its agent's address.
fn ip_addresses(task: &Task, registry: &Registry) -> Vec<String> {
    let from_status = task
        .statuses
        .iter()
        .rev()
        .find(|s| !s.container_ips.is_empty())
        .map(|s| s.container_ips.clone());
    if let Some(ips) = from_status {
        return ips;
    }
    registry
        .agents
        .get(&task.spec.agent_id)
        .and_then(|a| a.addr.rsplit_once(':').map(|(h, _)| h.to_string()))
        .filter(|h| h.parse::<std::net::IpAddr>().is_ok())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::app::PathId;

    #[test]
    fn app_info_is_the_app_json_with_counts_and_a_listing_says_the_same() {
        let app = AppDefinition::from_json(
            &json!({"id": "/g/web", "cmd": "sleep 1", "instances": 2}),
            &PathId::root(),
        )
        .expect("a valid app");
        let registry = Registry::default();
        let one = app_info(&app, &registry, Embed::default());
        let mut want = app.to_json();
        for (k, v) in [
            ("tasksStaged", json!(0)),
            ("tasksRunning", json!(0)),
            ("tasksHealthy", json!(0)),
            ("tasksUnhealthy", json!(0)),
            ("deployments", json!([])),
        ] {
            want[k] = v;
        }
        assert_eq!(one, want);
        let listed = serde_json::to_vec(&AppInfo::of(&app, &registry, Embed::default()))
            .expect("serializes");
        let listed: Value = serde_json::from_slice(&listed).expect("JSON");
        assert_eq!(listed, one);
        let embedded = app_info(
            &app,
            &registry,
            Embed {
                tasks: true,
                last_task_failure: true,
                readiness: true,
            },
        );
        assert_eq!(embedded["tasks"], json!([]), "{embedded}");
        assert_eq!(embedded["readinessCheckResults"], json!([]), "{embedded}");
        assert!(embedded.get("lastTaskFailure").is_none(), "{embedded}");
    }
}
