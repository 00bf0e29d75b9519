//! Which Marathon events a registry change makes, in the shapes the Python
//! client `marathon` 0.13.0 parses: tasks' and their health's here, the
//! scheduler's own (apps, deployments) in `marathon.rs`. Deployment events
//! carry the plan in the "heavy" form (with `original` and `target`): the
//! client crashes on the light form Marathon ≥ 1.8 sends.
//!
//! The events a deployment or a task makes by the thousand (status updates,
//! instance changes, a deployment's steps, the apps a PUT posts) are typed
//! bodies written straight to text ([`Event::of`]), and a change's plan is
//! written once for all its events: built as `serde_json::Value` trees, a
//! 1,000-app deployment's plans held the publisher for hundreds of ms.
//!
//! Health: the agent reports a task's health when its verdict flips
//! (`Change::TaskHealthChanged`), so each flip is one
//! `health_status_changed_event` and one `instance_health_changed_event`
//! (a task is one instance here), and a flip to unhealthy adds a
//! `failed_health_check_event` naming the app's check that failed. A task
//! that ends while reported healthy makes `instance_health_changed_event`
//! with `healthy: false`, so a client following health alone never counts a
//! gone task as healthy. Only event types the Python client knows are sent.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Event, Wanted};
use crate::master::registry::{Change, Registry};
use crate::model::{Task, TaskState};

/// The events of `change` that someone listening wants (`wanted`): the
/// heavy ones are not written at all when nobody reads them.
pub fn events(registry: &Registry, change: &Change, now: f64, wanted: &Wanted) -> Vec<Event> {
    let mut out = match change {
        Change::TaskUpdated { task_id, state, .. } => registry
            .task(task_id)
            .filter(|t| t.spec.run_spec.is_some() && t.state == *state)
            .map(|t| task_events(registry, t, now, wanted))
            .unwrap_or_default(),
        Change::TaskHealthChanged {
            task_id, healthy, ..
        } => registry
            .task(task_id)
            .map(|t| health_events(registry, t, *healthy, now))
            .unwrap_or_default(),
        Change::Marathon(change) => super::marathon::events(registry, change, now, wanted),
        _ => Vec::new(),
    };
    out.retain(|e| wanted.wants(&e.event_type));
    out
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
        .map_or_else(|| record.current(), |a| &**a);
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusUpdate<'a> {
    slave_id: &'a str,
    task_id: &'a str,
    task_status: TaskState,
    message: &'a str,
    app_id: &'a str,
    host: &'a str,
    ip_addresses: Vec<IpAddress<'a>>,
    ports: Vec<u16>,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IpAddress<'a> {
    ip_address: &'a str,
    protocol: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceChanged<'a> {
    instance_id: &'a str,
    condition: &'static str,
    run_spec_id: &'a str,
    agent_id: &'a str,
    slave_id: &'a str,
    host: &'a str,
    run_spec_version: &'a str,
}

fn task_events(registry: &Registry, task: &Task, now: f64, wanted: &Wanted) -> Vec<Event> {
    let Some(run) = &task.spec.run_spec else {
        return Vec::new();
    };
    let host = registry
        .agents
        .get(&task.spec.agent_id)
        .map(|a| a.hostname.as_str())
        .unwrap_or_default();
    let status = task.latest();
    let mut out = Vec::new();
    if wanted.wants("status_update_event") {
        let ip_addresses = status
            .map(|s| s.container_ips.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|ip| IpAddress {
                ip_address: ip,
                protocol: "IPv4",
            })
            .collect();
        out.push(Event::of(
            "status_update_event",
            &StatusUpdate {
                slave_id: &task.spec.agent_id,
                task_id: &task.spec.task_id,
                task_status: task.state,
                message: status
                    .and_then(|s| s.message.as_deref())
                    .unwrap_or_default(),
                app_id: &run.app_id,
                host,
                ip_addresses,
                ports: task.spec.ports.iter().map(|p| p.number).collect(),
                version: &run.version,
            },
            now,
        ));
    }
    if wanted.wants("instance_changed_event") {
        out.push(Event::of(
            "instance_changed_event",
            &InstanceChanged {
                instance_id: &task.spec.task_id,
                condition: condition(task.state),
                run_spec_id: &run.app_id,
                agent_id: &task.spec.agent_id,
                slave_id: &task.spec.agent_id,
                host,
                run_spec_version: &run.version,
            },
            now,
        ));
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::super::marathon::events as marathon_events;
    use super::*;
    use crate::model::{RunSpecRef, TaskPort, TaskSpec, TaskStatus};
    use crate::scheduler::app::AppDefinition;
    use crate::scheduler::app::test_app;
    use crate::scheduler::state::{
        Action, ActionKind, AppRecord, Deployment, MarathonChange, Outcome,
    };

    const NOW: f64 = 1_700_000_000.5;

    fn parsed(event: &Event) -> Value {
        let v: Value = serde_json::from_str(&event.json).expect("an event is JSON");
        assert_eq!(v["eventType"], event.event_type.as_str());
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.500Z");
        v
    }

    fn action(kind: ActionKind, app: &str) -> Action {
        Action {
            action: kind,
            app: app.into(),
        }
    }

    /// A deployment that scales `/old` (whose definition before is kept in
    /// `original`) and starts `/new`, in two steps.
    fn registry() -> (Registry, AppDefinition, AppDefinition, AppDefinition) {
        let before = test_app(json!({"id": "/old", "cmd": "sleep 1", "instances": 1}));
        let after = test_app(json!({"id": "/old", "cmd": "sleep 1", "instances": 3}));
        let new = test_app(json!({"id": "/new", "cmd": "sleep 2"}));
        let mut registry = Registry::default();
        for app in [&after, &new] {
            Arc::make_mut(&mut registry.marathon).apps.insert(
                app.id.to_string(),
                AppRecord {
                    versions: imbl::Vector::unit(Arc::new(app.clone())),
                },
            );
        }
        let deployment = Deployment {
            id: "d1".into(),
            version: "2023-11-14T22:13:20.000Z".into(),
            affected_apps: vec!["/new".into(), "/old".into()],
            steps: vec![
                vec![action(ActionKind::StartApplication, "/new")],
                vec![
                    action(ActionKind::ScaleApplication, "/new"),
                    action(ActionKind::ScaleApplication, "/old"),
                ],
            ],
            current_step: 1,
            original: BTreeMap::from([
                ("/new".to_string(), None),
                ("/old".to_string(), Some(before.clone())),
            ]),
        };
        Arc::make_mut(&mut registry.marathon)
            .deployments
            .insert("d1".into(), Arc::new(deployment));
        (registry, before, after, new)
    }

    #[test]
    fn a_step_carries_the_heavy_plan_the_python_client_reads() {
        let (registry, before, after, new) = registry();
        let change = MarathonChange::DeploymentAdvanced {
            id: "d1".into(),
            finished_step: 0,
        };
        let events = marathon_events(&registry, &change, NOW, &Wanted::All);
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["deployment_step_success", "deployment_info"]);
        let (done, info) = (parsed(&events[0]), parsed(&events[1]));
        let tree = |apps: Vec<Value>| {
            json!({"id": "/", "apps": apps, "groups": [], "dependencies": [],
                   "version": "2023-11-14T22:13:20.000Z"})
        };
        let plan = json!({
            "id": "d1",
            "version": "2023-11-14T22:13:20.000Z",
            "steps": [
                {"actions": [{"action": "StartApplication", "app": "/new"}]},
                {"actions": [{"action": "ScaleApplication", "app": "/new"},
                             {"action": "ScaleApplication", "app": "/old"}]},
            ],
            "original": tree(vec![before.to_json()]),
            "target": tree(vec![new.to_json(), after.to_json()]),
        });
        assert_eq!(done["plan"], plan);
        assert_eq!(info["plan"], plan);
        assert_eq!(
            done["currentStep"],
            json!({"actions": [{"action": "StartApplication", "app": "/new"}]})
        );
        assert_eq!(info["currentStep"], plan["steps"][1]);
    }

    #[test]
    fn a_deployment_ends_with_its_id_plan_and_reason() {
        let (mut registry, ..) = registry();
        let Some(d) = Arc::make_mut(&mut registry.marathon)
            .deployments
            .remove("d1")
        else {
            panic!("the deployment is there");
        };
        let finished = |outcome| MarathonChange::DeploymentFinished {
            deployment: d.clone(),
            outcome,
        };
        let ok = marathon_events(&registry, &finished(Outcome::Succeeded), NOW, &Wanted::All);
        let success = parsed(&ok[1]);
        assert_eq!(success["id"], "d1");
        assert_eq!(success["plan"]["target"]["apps"][1]["instances"], 3);
        assert!(success.get("reason").is_none());
        let failed = marathon_events(&registry, &finished(Outcome::Canceled), NOW, &Wanted::All);
        let types: Vec<&str> = failed.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["deployment_step_failure", "deployment_failed"]);
        let failure = parsed(&failed[1]);
        assert_eq!(
            (&failure["id"], &failure["reason"]),
            (&json!("d1"), &json!("canceled"))
        );
        assert_eq!(failure["plan"]["id"], "d1");
    }

    #[test]
    fn a_posted_app_carries_its_definition() {
        let (registry, _, after, _) = registry();
        let change = MarathonChange::AppsChanged {
            put: vec!["/old".into()],
            removed: vec!["/gone".into()],
        };
        let events = marathon_events(&registry, &change, NOW, &Wanted::All);
        let post = parsed(&events[0]);
        assert_eq!(post["eventType"], "api_post_event");
        assert_eq!(post["uri"], "/v2/apps/old");
        assert_eq!(post["clientIp"], "");
        assert_eq!(post["appDefinition"], after.to_json());
        assert_eq!(parsed(&events[1])["appId"], "/gone");
    }

    /// Puts task `old.t1` of `/old`, RUNNING, in `registry`; its change.
    fn running_task(registry: &mut Registry) -> Change {
        let spec = TaskSpec {
            task_id: "old.t1".into(),
            agent_id: "c-S0".into(),
            ports: vec![TaskPort {
                number: 31005,
                name: None,
            }],
            run_spec: Some(RunSpecRef {
                app_id: "/old".into(),
                version: "v1".into(),
                config_version: "v1".into(),
            }),
            ..Default::default()
        };
        let mut status = TaskStatus::new("old.t1", "c-S0", TaskState::Running, NOW)
            .message("running as process group 7");
        status.container_ips = vec!["10.0.0.7".into()];
        registry
            .tasks
            .insert("old.t1".into(), Arc::new(Task::new(spec, status)));
        Change::TaskUpdated {
            task_id: "old.t1".into(),
            agent_id: "c-S0".into(),
            state: TaskState::Running,
        }
    }

    #[test]
    fn a_status_update_has_marathons_fields() {
        let (mut registry, ..) = registry();
        let change = running_task(&mut registry);
        let events = events(&registry, &change, NOW, &Wanted::All);
        let update = parsed(&events[0]);
        let mut expected = json!({
            "slaveId": "c-S0",
            "taskId": "old.t1",
            "taskStatus": "TASK_RUNNING",
            "message": "running as process group 7",
            "appId": "/old",
            "host": "",
            "ipAddresses": [{"ipAddress": "10.0.0.7", "protocol": "IPv4"}],
            "ports": [31005],
            "version": "v1",
        });
        expected["eventType"] = update["eventType"].clone();
        expected["timestamp"] = update["timestamp"].clone();
        assert_eq!(update, expected);
        let instance = parsed(&events[1]);
        assert_eq!(instance["eventType"], "instance_changed_event");
        assert_eq!(
            (
                &instance["instanceId"],
                &instance["condition"],
                &instance["runSpecId"]
            ),
            (&json!("old.t1"), &json!("Running"), &json!("/old"))
        );
        assert_eq!(instance["runSpecVersion"], "v1");
    }

    #[test]
    fn only_the_wanted_types_are_rendered() {
        let (mut registry, ..) = registry();
        let task = running_task(&mut registry);
        let types = |events: Vec<Event>| -> Vec<String> {
            events.into_iter().map(|e| e.event_type).collect()
        };
        let status = Wanted::Only(["status_update_event".to_string()].into());
        assert_eq!(
            types(events(&registry, &task, NOW, &status)),
            ["status_update_event"]
        );
        let instances = Wanted::Only(["instance_changed_event".to_string()].into());
        assert_eq!(
            types(events(&registry, &task, NOW, &instances)),
            ["instance_changed_event"]
        );
        let step = Change::Marathon(MarathonChange::DeploymentAdvanced {
            id: "d1".into(),
            finished_step: 0,
        });
        assert!(events(&registry, &step, NOW, &status).is_empty());
        let info = Wanted::Only(["deployment_info".to_string()].into());
        assert_eq!(
            types(events(&registry, &step, NOW, &info)),
            ["deployment_info"]
        );
        assert_eq!(
            types(events(&registry, &step, NOW, &Wanted::All)),
            ["deployment_step_success", "deployment_info"]
        );
    }
}
