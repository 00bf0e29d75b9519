//! The master's launch and kill path, for the operator API and the scheduler.
//!
//! ```text
//!  launch_tasks(specs) ─ check ─▶ propose LaunchTasks ─ committed ─▶ STAGING
//!                                   └─▶ LAUNCH on the agent's event stream
//!  kill_task(s)(ids) ─▶ propose KillTasks (kill_requested) ─▶ KILL on the stream
//!  agent (re)subscribes ─▶ catch_up: KILL what should die, LAUNCH what is
//!                          still STAGING and the agent lacks, KILL orphans
//!  agent UPDATE{statuses} ─▶ status_batch: one UpdateTaskStatuses for the
//!                            calls gathered ─ committed ─▶ 202 (the ack)
//! ```
//!
//! Events are sent after the commit, and only by the leader. One that is lost
//! with its stream (a failover, a broken connection) is sent again by
//! `catch_up` when the agent subscribes anew: the registry, not the stream,
//! says what each agent should run. A launch that was committed but never
//! sent while the agent stayed subscribed (its proposer's answer lost to a
//! timeout within its term) is sent again by [`relaunch_loop`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Master;
use super::command::{Command, ReportedTask};
use super::raft::Answer;
use super::registry::Registry;
use crate::api::error::{ApiError, propose_error};
use crate::model::{Task, TaskSpec, TaskState, TaskStatus};

/// The grace period of a KILL for a task the registry does not know.
const ORPHAN_GRACE_SECS: f64 = 3.0;

/// A task STAGING this long has its LAUNCH sent again, this often. An agent
/// answers a LAUNCH within moments (STARTING, or RUNNING with it), even for
/// a task whose image it still has to fetch.
const RELAUNCH_AFTER: Duration = Duration::from_secs(30);

/// A launch handed to Raft ([`Master::enqueue_launch`]).
pub struct Launching {
    answer: Answer,
    order: Vec<String>,
}

impl Launching {
    /// Waits for the commit, then sends each task recorded STAGING to its
    /// agent. Returns the tasks' ids, in the order given.
    pub async fn sent(self, master: &Master) -> Result<Vec<String>, ApiError> {
        self.answer.wait().await.map_err(propose_error)?;
        let registry = master.registry();
        for task in self.order.iter().filter_map(|id| registry.task(id)) {
            if task.state == TaskState::Staging {
                master
                    .streams
                    .send(&task.spec.agent_id, &LaunchEvent::of(&task.spec));
            }
        }
        Ok(self.order)
    }
}

/// Kills handed to Raft ([`Master::enqueue_kills`]).
pub struct Killing {
    answer: Answer,
    live: Vec<Arc<TaskSpec>>,
}

impl Killing {
    /// Waits for the commit, then sends each KILL to the task's agent.
    pub async fn sent(self, master: &Master) -> Result<(), ApiError> {
        self.answer.wait().await.map_err(propose_error)?;
        for spec in &self.live {
            master.streams.send(&spec.agent_id, &kill_event(spec));
        }
        Ok(())
    }
}

impl Master {
    /// Records the tasks (reserving their agents' resources) and sends them to
    /// their agents. Returns each task as recorded: STAGING, or ended with why.
    pub async fn launch_tasks(&self, specs: Vec<TaskSpec>) -> Result<Vec<Task>, ApiError> {
        let ids = self.enqueue_launch(specs).await?.sent(self).await?;
        let registry = self.registry();
        Ok(ids
            .iter()
            .filter_map(|id| registry.task(id).cloned())
            .collect())
    }

    /// Checks the tasks and hands their launch to Raft; [`Launching::sent`]
    /// waits for the commit and sends them. Handed over before the caller's
    /// next proposals, they share a Raft round with them.
    pub async fn enqueue_launch(&self, specs: Vec<TaskSpec>) -> Result<Launching, ApiError> {
        let mut ids = BTreeSet::new();
        {
            let registry = self.registry();
            for (i, spec) in specs.iter().enumerate() {
                spec.validate()
                    .map_err(|e| ApiError::bad_request(format!("tasks[{i}].{e}")))?;
                if !ids.insert(spec.task_id.clone()) || registry.task(&spec.task_id).is_some() {
                    return Err(ApiError::conflict(format!(
                        "tasks[{i}].task_id: task '{}' already exists",
                        spec.task_id
                    )));
                }
            }
        }
        let order: Vec<String> = specs.iter().map(|s| s.task_id.clone()).collect();
        let launch = Command::LaunchTasks {
            tasks: specs,
            time: super::now_secs(),
        };
        let answer = self.raft.enqueue(launch).await.map_err(propose_error)?;
        Ok(Launching { answer, order })
    }

    /// Asks a task to end. A task already ended is left as it is.
    pub async fn kill_task(&self, task_id: &str) -> Result<(), ApiError> {
        let ended = self.registry().task(task_id).map(|t| t.state.is_terminal());
        match ended {
            None => Err(ApiError::not_found(format!(
                "task '{task_id}' is not known"
            ))),
            Some(true) => Ok(()),
            Some(false) => self.kill_tasks(&[task_id.to_string()]).await,
        }
    }

    /// Asks many tasks to end in one log entry; unknown and ended ones are
    /// skipped.
    pub async fn kill_tasks(&self, task_ids: &[String]) -> Result<(), ApiError> {
        match self.enqueue_kills(task_ids).await? {
            Some(killing) => killing.sent(self).await,
            None => Ok(()),
        }
    }

    /// Hands the kills of the live tasks among `task_ids` to Raft (none when
    /// none lives); [`Killing::sent`] waits for the commit and sends them.
    pub async fn enqueue_kills(&self, task_ids: &[String]) -> Result<Option<Killing>, ApiError> {
        let live: Vec<Arc<TaskSpec>> = {
            let registry = self.registry();
            task_ids
                .iter()
                .filter_map(|id| registry.tasks.get(id.as_str()))
                .map(|t| t.spec.clone())
                .collect()
        };
        if live.is_empty() {
            return Ok(None);
        }
        let kill = Command::KillTasks {
            task_ids: live.iter().map(|s| s.task_id.clone()).collect(),
        };
        let answer = self.raft.enqueue(kill).await.map_err(propose_error)?;
        Ok(Some(Killing { answer, live }))
    }

    /// Commits status updates from an agent; the caller acknowledges after.
    pub(super) async fn update_statuses(
        &self,
        agent_id: &str,
        statuses: Vec<TaskStatus>,
    ) -> Result<(), ApiError> {
        statuses_of_caller(&statuses, agent_id)?;
        // Statuses that would change nothing need no log entry.
        let fresh: Vec<TaskStatus> = {
            let registry = self.registry();
            statuses
                .into_iter()
                .filter(|s| {
                    registry.tasks.get(s.task_id.as_str()).is_some_and(|t| {
                        s.uuid.is_none() || !t.statuses.iter().any(|o| o.uuid == s.uuid)
                    })
                })
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        // Proposed with the calls of other agents that arrive meanwhile.
        self.statuses.submit(fresh).await.map_err(propose_error)
    }
}

/// An UPDATE's statuses each name a task and come from the agent calling.
fn statuses_of_caller(statuses: &[TaskStatus], agent_id: &str) -> Result<(), ApiError> {
    for (i, s) in statuses.iter().enumerate() {
        if s.task_id.is_empty() {
            return Err(ApiError::bad_request(format!(
                "update.statuses[{i}].task_id: missing"
            )));
        }
        if s.agent_id != agent_id {
            return Err(ApiError::bad_request(format!(
                "update.statuses[{i}].agent_id: '{}' is not the caller '{agent_id}'",
                s.agent_id
            )));
        }
    }
    Ok(())
}

/// What a freshly subscribed agent must hear: kills the registry wants, launches
/// it never got, and kills for tasks it runs that the registry does not hold.
pub(super) fn catch_up(
    registry: &Registry,
    agent_id: &str,
    reported: &[ReportedTask],
) -> Vec<Value> {
    let mut events = Vec::new();
    for task in registry.agent_tasks(agent_id) {
        let has_it = reported.iter().any(|r| r.task_id == task.spec.task_id);
        if task.kill_requested {
            events.push(kill_event(&task.spec));
        } else if task.state == TaskState::Staging && !has_it {
            events.push(launch_event(&task.spec));
        }
    }
    for r in reported.iter().filter(|r| !r.state.is_terminal()) {
        if !registry.tasks.contains_key(r.task_id.as_str()) {
            tracing::info!(task = %r.task_id, agent = %agent_id, "killing a task the registry does not hold");
            events.push(json!({"type": "KILL", "kill": {
                "task_id": r.task_id,
                "grace_period_seconds": ORPHAN_GRACE_SECS,
            }}));
        }
    }
    events
}

/// On the leader: every [`RELAUNCH_AFTER`], the LAUNCH of each task STAGING
/// longer than that goes to its agent again. The proposer of a launch sends
/// it once its entry commits; when the proposal's answer is lost (a timeout
/// under load) while the entry still commits in the same term, no agent
/// subscribes anew, and the task would wait STAGING for its agent's next
/// subscription. An agent ignores a LAUNCH of a task it holds. (Marathon's
/// remedy is `task_launch_timeout`: kill and replace after five minutes.)
pub async fn relaunch_loop(master: Arc<Master>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RELAUNCH_AFTER) => {}
        }
        if !master.status().caught_up {
            continue;
        }
        let registry = master.registry();
        let mut sent = 0;
        for spec in stale_launches(&registry, super::now_secs(), RELAUNCH_AFTER.as_secs_f64()) {
            sent += usize::from(master.streams.send(&spec.agent_id, &LaunchEvent::of(spec)));
        }
        if sent > 0 {
            tracing::info!(sent, "sent again the launches of tasks long STAGING");
        }
    }
}

/// Tasks STAGING for longer than `after` seconds at `now`, not being killed.
fn stale_launches(registry: &Registry, now: f64, after: f64) -> impl Iterator<Item = &TaskSpec> {
    registry
        .tasks
        .values()
        .filter(move |t| {
            t.state == TaskState::Staging && !t.kill_requested && now - t.staged_at > after
        })
        .map(|t| &*t.spec)
}

/// `{"type": "LAUNCH", "launch": {"task": <spec>}}`, written straight from
/// the spec: as a `json!` tree it cost an allocation per field of every
/// task launched.
#[derive(Serialize)]
struct LaunchEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    launch: Launch<'a>,
}

#[derive(Serialize)]
struct Launch<'a> {
    task: &'a TaskSpec,
}

impl<'a> LaunchEvent<'a> {
    fn of(task: &'a TaskSpec) -> Self {
        Self {
            kind: "LAUNCH",
            launch: Launch { task },
        }
    }
}

fn launch_event(spec: &TaskSpec) -> Value {
    serde_json::to_value(LaunchEvent::of(spec)).expect("a task spec serializes")
}

fn kill_event(spec: &TaskSpec) -> Value {
    json!({"type": "KILL", "kill": {
        "task_id": spec.task_id,
        "grace_period_seconds": spec.kill_grace_period().as_secs_f64(),
    }})
}

/// A task in the shape of Mesos's `/master/state` (`frameworks[].tasks[]`),
/// with meso's extras (`message`, `reason`, `exit_code` in statuses). A
/// status carries `healthy` when the agent's health checks set it, as in
/// Mesos; Marathon's view of health is `model::health::health_check_results`.
pub fn task_json(task: &Task) -> Value {
    let spec = &task.spec;
    let ports: Vec<crate::model::PortRange> = spec
        .ports
        .iter()
        .map(|p| crate::model::PortRange {
            begin: u64::from(p.number),
            end: u64::from(p.number),
        })
        .collect();
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            let ips: Vec<Value> = s
                .container_ips
                .iter()
                .map(|ip| json!({"protocol": "IPv4", "ip_address": ip}))
                .collect();
            let mut v = json!({
                "state": s.state,
                "timestamp": s.timestamp,
                "container_status": {"network_infos": [{"ip_addresses": ips}]},
            });
            for (key, value) in [
                ("message", s.message.as_ref().map(|m| json!(m))),
                ("reason", s.reason.as_ref().map(|r| json!(r))),
                ("source", s.source.as_ref().map(|r| json!(r))),
                ("exit_code", s.exit_code.map(|c| json!(c))),
                ("healthy", s.healthy.map(|h| json!(h))),
            ] {
                if let Some(value) = value {
                    v[key] = value;
                }
            }
            v
        })
        .collect();
    let mut v = json!({
        "id": spec.task_id,
        "name": if spec.name.is_empty() { &spec.task_id } else { &spec.name },
        "framework_id": spec.framework_id.clone().unwrap_or_default(),
        "executor_id": "",
        "slave_id": spec.agent_id,
        "agent_id": spec.agent_id,
        "state": task.state,
        "resources": {
            "cpus": spec.cpus,
            "mem": spec.mem,
            "disk": spec.disk,
            "gpus": 0.0,
            "ports": crate::model::format_ranges(&ports),
        },
        "role": "*",
        "statuses": statuses,
        "labels": spec.labels.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "discovery": {
            "visibility": "FRAMEWORK",
            "name": if spec.name.is_empty() { &spec.task_id } else { &spec.name },
            "ports": {"ports": spec.ports.iter().map(|p| {
                let mut port = json!({"number": p.number, "protocol": "tcp"});
                if let Some(name) = &p.name {
                    port["name"] = json!(name);
                }
                port
            }).collect::<Vec<_>>()},
        },
    });
    if let Some(c) = &spec.container {
        v["container"] = json!(c);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::{stale_launches, statuses_of_caller};
    use crate::master::command::Command;
    use crate::master::registry::registry_with_agent;
    use crate::model::{TaskSpec, TaskState, TaskStatus};

    /// Only tasks STAGING longer than the limit, and not being killed, have
    /// their launch sent again.
    #[test]
    fn launches_long_staging_are_sent_again() {
        let (mut reg, agent) = registry_with_agent();
        let spec = |id: &str| TaskSpec {
            task_id: id.into(),
            agent_id: agent.clone(),
            cpus: 0.1,
            ..Default::default()
        };
        let launch = |tasks, time| Command::LaunchTasks { tasks, time };
        reg.apply(
            3,
            &launch(vec![spec("old"), spec("running"), spec("killed")], 10.0),
        );
        reg.apply(4, &launch(vec![spec("new")], 35.0));
        let running = TaskStatus::new("running", &agent, TaskState::Running, 11.0);
        reg.apply(
            5,
            &Command::UpdateTaskStatuses {
                statuses: vec![running],
            },
        );
        reg.apply(
            6,
            &Command::KillTask {
                task_id: "killed".into(),
            },
        );
        let stale = |now| -> Vec<String> {
            stale_launches(&reg, now, 30.0)
                .map(|s| s.task_id.clone())
                .collect()
        };
        assert_eq!(stale(45.0), ["old"]);
        assert_eq!(stale(39.0), Vec::<String>::new());
        assert_eq!(stale(70.0), ["new", "old"]);
    }

    #[test]
    fn an_update_names_its_tasks_and_comes_from_its_agent() {
        let ok = TaskStatus::new("t1", "a-S1", TaskState::Running, 1.0);
        assert!(statuses_of_caller(std::slice::from_ref(&ok), "a-S1").is_ok());
        // A status without task_id reads (a snapshot's statuses omit it)
        // but is refused from an agent, naming the field.
        let nameless: TaskStatus = serde_json::from_str(
            r#"{"agent_id": "a-S1", "state": "TASK_RUNNING", "timestamp": 1.0}"#,
        )
        .expect("a status without task_id reads");
        let refused = statuses_of_caller(&[ok.clone(), nameless], "a-S1").unwrap_err();
        assert_eq!(refused.message, "update.statuses[1].task_id: missing");
        let refused = statuses_of_caller(&[ok], "a-S2").unwrap_err();
        assert!(
            refused.message.starts_with("update.statuses[0].agent_id:"),
            "{}",
            refused.message
        );
    }
}
