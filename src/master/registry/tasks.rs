//! The registry's task book: launches reserve resources, statuses move tasks
//! through Mesos's states, agents that vanish or come back carry their tasks
//! along. Deterministic like the rest of apply: times come in the commands.
//!
//! ```text
//!  LaunchTasks ─fits─▶ tasks[id] STAGING ──UpdateTaskStatuses──▶ STARTING, RUNNING, …
//!              └─no──▶ completed (TASK_ERROR: never fits; TASK_DROPPED: not now)
//!  terminal status ─▶ moved to completed_tasks (bounded), resources freed
//!  MarkAgentUnreachable ─▶ its tasks UNREACHABLE;  MarkAgentGone ─▶ GONE
//!  RegisterAgent{tasks} ─▶ reported: UNREACHABLE → the agent's state;
//!                          missing (not STAGING): LOST
//! ```

use std::sync::Arc;

use super::fit::{Misfit, fit_used};
use super::{COMPLETED_TASKS, Change, Registry};
use crate::master::command::ReportedTask;
use crate::model::{AgentState, Task, TaskSpec, TaskState, TaskStatus};

const SOURCE_MASTER: &str = "SOURCE_MASTER";

impl Registry {
    /// A `LaunchTasks` entry, in order. Each task is fitted against what its
    /// agent's live tasks hold as the index keeps it (`index::usage`), which
    /// takes in each task placed: fitting each against a scan of every live
    /// task was quadratic (at 100,000 tasks most of the leader's CPU in a
    /// deployment), and summing each named agent's tasks once per batch was
    /// still 15% of a follower's (see BENCHMARKS.md, Scale).
    pub(super) fn launch_all(&mut self, specs: Vec<TaskSpec>, time: f64) -> Vec<Change> {
        let mut changes = Vec::with_capacity(specs.len());
        for spec in specs {
            changes.extend(self.launch(spec, time));
        }
        changes
    }

    /// One task of a batch, checked against what its agent's live tasks
    /// hold (the index's usage, which takes the task in when it is placed).
    fn launch(&mut self, spec: TaskSpec, time: f64) -> Vec<Change> {
        if self.task(&spec.task_id).is_some() {
            // A retried launch: the first one stands.
            return vec![];
        }
        let staging = |spec: &TaskSpec, state, reason: &str, message: String| {
            TaskStatus::new(&spec.task_id, &spec.agent_id, state, time)
                .source(SOURCE_MASTER)
                .reason(reason)
                .message(message)
        };
        let outcome = match self.agents.get(&spec.agent_id) {
            None => Err(staging(
                &spec,
                TaskState::Dropped,
                "REASON_SLAVE_UNKNOWN",
                format!("agent {} is not registered", spec.agent_id),
            )),
            Some(agent) if agent.state != AgentState::Active => Err(staging(
                &spec,
                TaskState::Dropped,
                "REASON_SLAVE_UNREACHABLE",
                format!("agent {} is {:?}", spec.agent_id, agent.state).to_lowercase(),
            )),
            Some(agent) => match fit_used(&spec, agent, self.index.usage.of(&spec.agent_id)) {
                Ok(ports) => Ok(ports),
                Err(Misfit::Never(why)) => Err(staging(
                    &spec,
                    TaskState::Error,
                    "REASON_TASK_INVALID",
                    format!("task {} {why}", spec.task_id),
                )),
                Err(Misfit::NotNow(why)) => Err(staging(
                    &spec,
                    TaskState::Dropped,
                    "REASON_INVALID_OFFERS",
                    format!("task {} {why}", spec.task_id),
                )),
            },
        };
        let change = |state| Change::TaskUpdated {
            task_id: spec.task_id.clone(),
            agent_id: spec.agent_id.clone(),
            state,
        };
        let (task, change) = match outcome {
            Ok(ports) => {
                let change = change(TaskState::Staging);
                let resolved = ports.resolve(spec);
                let status = TaskStatus::new(
                    &resolved.task_id,
                    &resolved.agent_id,
                    TaskState::Staging,
                    time,
                )
                .source(SOURCE_MASTER)
                .message("launch accepted: resources reserved on the agent");
                let task = Task::new(resolved, status);
                self.index.insert(&task);
                self.tasks
                    .insert(Arc::from(task.spec.task_id.as_str()), Arc::new(task));
                (None, change)
            }
            Err(status) => {
                let change = change(status.state);
                (Some(Task::new(spec, status)), change)
            }
        };
        if let Some(task) = task {
            self.complete(Arc::new(task), time);
        }
        vec![change]
    }

    /// A status an agent sent. One that waited while its agent was marked
    /// unreachable (or gone) would put an UNREACHABLE task back to RUNNING
    /// on an agent that may never return; as Mesos does, only a registered
    /// agent's statuses count (the agent is told to subscribe again, and
    /// sends them after its tasks are reconciled).
    pub(super) fn agent_status(&mut self, status: &TaskStatus) -> Vec<Change> {
        let registered = self
            .agents
            .get(&status.agent_id)
            .is_some_and(|a| a.state == AgentState::Active);
        if !registered {
            return vec![];
        }
        self.update_status(status)
    }

    pub(super) fn update_status(&mut self, status: &TaskStatus) -> Vec<Change> {
        let Some(task) = self.tasks.get(status.task_id.as_str()) else {
            // Unknown or already ended: nothing changes (the agent is acked anyway).
            return vec![];
        };
        let retried = status.uuid.is_some() && task.statuses.iter().any(|s| s.uuid == status.uuid);
        if retried || task.spec.agent_id != status.agent_id {
            return vec![];
        }
        let (state_before, healthy_before, ready_before) = (task.state, task.healthy, task.ready);
        let (healthy, ready) = self
            .change_task(&status.task_id, |task| {
                task.push_status(status.clone());
                (task.healthy, task.ready)
            })
            .expect("the task was found above");
        let mut changes = Vec::new();
        // A health or readiness update (the same state, with a verdict) is
        // news only for that; every other status is a task update, as it
        // always was.
        let check_only =
            status.state == state_before && (status.healthy.is_some() || status.ready.is_some());
        if !check_only {
            changes.push(Change::TaskUpdated {
                task_id: status.task_id.clone(),
                agent_id: status.agent_id.clone(),
                state: status.state,
            });
        }
        if healthy != healthy_before {
            changes.push(Change::TaskHealthChanged {
                task_id: status.task_id.clone(),
                agent_id: status.agent_id.clone(),
                healthy,
            });
        }
        if ready != ready_before {
            changes.push(Change::TaskReadyChanged {
                task_id: status.task_id.clone(),
                agent_id: status.agent_id.clone(),
                ready,
            });
        }
        if status.state.is_terminal()
            && let Some(task) = self.tasks.remove(status.task_id.as_str())
        {
            self.index.remove(&task);
            self.complete(task, status.timestamp);
        }
        changes
    }

    /// Every live task of an agent takes `state` (UNREACHABLE, GONE) from the master.
    pub(super) fn agent_tasks_become(
        &mut self,
        agent_id: &str,
        state: TaskState,
        reason: &str,
        message: &str,
        time: f64,
    ) -> Vec<Change> {
        let ids: Vec<String> = self
            .agent_tasks(agent_id)
            .filter(|t| t.state != state)
            .map(|t| t.spec.task_id.clone())
            .collect();
        ids.iter()
            .flat_map(|id| {
                let status = TaskStatus::new(id, agent_id, state, time)
                    .source(SOURCE_MASTER)
                    .reason(reason)
                    .message(message);
                self.update_status(&status)
            })
            .collect()
    }

    /// An agent (re)subscribed with the tasks it knows: tasks it reports as
    /// live take its word (an UNREACHABLE task is back); a live task it does
    /// not report is LOST, unless it is still STAGING (the leader sends the
    /// launch again). Tasks it reports that the registry does not hold are for
    /// the leader to kill; they change nothing here.
    pub(super) fn reconcile_agent_tasks(
        &mut self,
        agent_id: &str,
        reported: &[ReportedTask],
        time: f64,
    ) -> Vec<Change> {
        let mut updates = Vec::new();
        for task in self.agent_tasks(agent_id) {
            let id = &task.spec.task_id;
            match reported.iter().find(|r| &r.task_id == id) {
                Some(r) if !r.state.is_terminal() && r.state != task.state => {
                    updates.push(
                        TaskStatus::new(id, agent_id, r.state, time)
                            .source(SOURCE_MASTER)
                            .reason("REASON_SLAVE_REREGISTERED")
                            .message("the agent re-registered with this task"),
                    );
                }
                // Ended on the agent: its own status update (with the exit
                // code) is on its way.
                Some(_) => {}
                None if task.state == TaskState::Staging => {}
                None => updates.push(
                    TaskStatus::new(id, agent_id, TaskState::Lost, time)
                        .source(SOURCE_MASTER)
                        .reason("REASON_SLAVE_RESTARTED")
                        .message("the agent re-registered without this task"),
                ),
            }
        }
        updates.iter().flat_map(|s| self.update_status(s)).collect()
    }

    /// A task ended: the scheduler counts it (backoff, last failure), and it
    /// joins the completed tasks.
    fn complete(&mut self, task: Arc<Task>, time: f64) {
        let host = self
            .agents
            .get(&task.spec.agent_id)
            .map(|a| a.hostname.clone())
            .unwrap_or_default();
        if task.spec.run_spec.is_some() {
            Arc::make_mut(&mut self.marathon).task_ended(&task, &host, time);
        }
        self.index.completed_added(&task.spec.task_id);
        self.completed_tasks.push_back(task);
        while self.completed_tasks.len() > COMPLETED_TASKS {
            if let Some(old) = self.completed_tasks.pop_front() {
                self.index.completed_dropped(&old.spec.task_id);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::master::command::Command;
    use crate::model::{CommandSpec, Resources};

    pub(crate) fn registry_with_agent() -> (Registry, String) {
        let mut reg = Registry::default();
        reg.apply(
            1,
            &Command::InitCluster {
                cluster_id: "c".into(),
            },
        );
        reg.apply(2, &register(vec![]));
        (reg, "c-S0".into())
    }

    fn register(tasks: Vec<ReportedTask>) -> Command {
        Command::RegisterAgent {
            key: "k".into(),
            hostname: "h".into(),
            addr: "h:1".into(),
            resources: Resources {
                cpus: 2.0,
                mem: 100.0,
                disk: 0.0,
                ports: vec![],
            },
            attributes: Default::default(),
            time: 1.0,
            tasks,
        }
    }

    pub(in crate::master::registry) fn spec(id: &str, cpus: f64) -> TaskSpec {
        TaskSpec {
            task_id: id.into(),
            agent_id: "c-S0".into(),
            cpus,
            command: Some(CommandSpec {
                value: Some("true".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(in crate::master::registry) fn status(
        id: &str,
        state: TaskState,
        uuid: &str,
    ) -> TaskStatus {
        let mut s = TaskStatus::new(id, "c-S0", state, 2.0);
        s.uuid = Some(uuid.into());
        s
    }

    #[test]
    fn a_launch_read_from_the_log_does_what_a_borrowed_one_does() {
        let (mut reg, _) = registry_with_agent();
        let elsewhere = TaskSpec {
            agent_id: "c-S9".into(),
            ..spec("lost", 0.1)
        };
        let wants_a_port = TaskSpec {
            ports: vec![crate::model::TaskPort {
                number: 0,
                name: None,
            }],
            ..spec("port", 0.1)
        };
        let launch = Command::LaunchTasks {
            tasks: vec![
                spec("a", 0.5),
                spec("big", 5.0),
                elsewhere,
                spec("a", 0.5),
                wants_a_port,
                spec("b", 1.0),
            ],
            time: 3.0,
        };
        let mut borrowed = reg.clone();
        let by_ref = borrowed.apply(3, &launch);
        let owned = reg.apply_owned(3, launch);
        assert_eq!(owned, by_ref);
        assert_eq!(reg, borrowed);
        let state = |id| reg.task(id).map(|t| t.state);
        assert_eq!(state("a"), Some(TaskState::Staging));
        assert_eq!(state("b"), Some(TaskState::Staging));
        assert_eq!(state("big"), Some(TaskState::Error));
        assert_eq!(state("lost"), Some(TaskState::Dropped));
        assert_eq!(state("port"), Some(TaskState::Dropped));
        assert_eq!(reg.applied_index, 3);
        assert_eq!(owned.len(), 5, "the retried launch of a changes nothing");
    }

    #[test]
    fn a_batch_fits_against_live_tasks_and_its_own_placed_ones() {
        let (mut reg, _) = registry_with_agent();
        let launch = |specs| Command::LaunchTasks {
            tasks: specs,
            time: 1.0,
        };
        reg.apply(3, &launch(vec![spec("a", 1.0)]));
        // 2 cpus: a holds 1; b takes 0.5; c (0.6) no longer fits; d (0.4) does,
        // since the dropped c holds nothing.
        reg.apply(
            4,
            &launch(vec![spec("b", 0.5), spec("c", 0.6), spec("d", 0.4)]),
        );
        assert_eq!(reg.tasks["b"].state, TaskState::Staging);
        assert_eq!(reg.task("c").unwrap().state, TaskState::Dropped);
        assert_eq!(reg.tasks["d"].state, TaskState::Staging);
        // Full now, whatever the batch.
        reg.apply(5, &launch(vec![spec("e", 0.2)]));
        assert_eq!(reg.task("e").unwrap().state, TaskState::Dropped);
    }

    #[test]
    fn launch_reserves_and_terminal_status_frees() {
        let (mut reg, _) = registry_with_agent();
        let launch = |specs| Command::LaunchTasks {
            tasks: specs,
            time: 1.0,
        };
        reg.apply(
            3,
            &launch(vec![spec("a", 1.5), spec("b", 1.0), spec("c", 9.0)]),
        );
        assert_eq!(reg.tasks["a"].state, TaskState::Staging);
        assert_eq!(reg.task("b").unwrap().state, TaskState::Dropped);
        assert_eq!(reg.task("c").unwrap().state, TaskState::Error);
        let msg = reg.task("c").unwrap().latest().unwrap().message.clone();
        assert!(msg.unwrap().contains("cpus 9"), "the error says why");

        let update = |statuses| Command::UpdateTaskStatuses { statuses };
        reg.apply(4, &update(vec![status("a", TaskState::Running, "u1")]));
        assert_eq!(reg.tasks["a"].state, TaskState::Running);
        reg.apply(5, &update(vec![status("a", TaskState::Finished, "u2")]));
        assert!(!reg.tasks.contains_key("a"));
        assert_eq!(reg.task("a").unwrap().state, TaskState::Finished);
        // Resources are free again; a retried update changes nothing.
        reg.apply(6, &launch(vec![spec("d", 2.0)]));
        assert_eq!(reg.tasks["d"].state, TaskState::Staging);
        let before = reg.clone();
        reg.apply(7, &update(vec![status("a", TaskState::Finished, "u2")]));
        reg.applied_index = before.applied_index;
        assert_eq!(reg, before);
    }

    #[test]
    fn each_agent_lists_its_live_tasks_through_launches_ends_and_snapshots() {
        let (mut reg, _) = registry_with_agent();
        let mut second = register(vec![]);
        if let Command::RegisterAgent { key, .. } = &mut second {
            *key = "k2".into();
        }
        reg.apply(3, &second);
        let on = |id: &str, agent: &str| TaskSpec {
            agent_id: agent.into(),
            ..spec(id, 0.5)
        };
        reg.apply(
            4,
            &Command::LaunchTasks {
                tasks: vec![on("b", "c-S0"), on("a", "c-S0"), on("x", "c-S1")],
                time: 1.0,
            },
        );
        let ids = |reg: &Registry, agent: &str| -> Vec<String> {
            reg.agent_tasks(agent)
                .map(|t| t.spec.task_id.clone())
                .collect()
        };
        assert_eq!(ids(&reg, "c-S0"), ["a", "b"]);
        assert_eq!(ids(&reg, "c-S1"), ["x"]);
        reg.apply(
            5,
            &Command::UpdateTaskStatuses {
                statuses: vec![status("a", TaskState::Failed, "u1")],
            },
        );
        assert_eq!(ids(&reg, "c-S0"), ["b"]);
        // The index is not in the snapshot: reading one rebuilds it.
        let back = Registry::from_snapshot(&reg.to_snapshot()).unwrap();
        assert_eq!(ids(&back, "c-S0"), ["b"]);
        assert_eq!(ids(&back, "c-S1"), ["x"]);
        assert_eq!(back, reg);
    }

    #[test]
    fn retried_batches_apply_once() {
        let (mut reg, _) = registry_with_agent();
        reg.apply(
            3,
            &Command::LaunchTasks {
                tasks: vec![spec("a", 1.0)],
                time: 1.0,
            },
        );
        let batch = Command::UpdateTaskStatuses {
            statuses: vec![
                status("a", TaskState::Starting, "u1"),
                status("a", TaskState::Running, "u2"),
            ],
        };
        assert_eq!(reg.apply(4, &batch).len(), 2);
        assert!(reg.apply(5, &batch).is_empty());
        assert_eq!(reg.tasks["a"].statuses.len(), 3);
    }

    /// A registry whose agent runs task "a" (applied up to index 4).
    fn registry_running_a() -> Registry {
        let (mut reg, _) = registry_with_agent();
        reg.apply(
            3,
            &Command::LaunchTasks {
                tasks: vec![spec("a", 1.0)],
                time: 1.0,
            },
        );
        let running = vec![status("a", TaskState::Running, "u1")];
        reg.apply(4, &Command::UpdateTaskStatuses { statuses: running });
        reg
    }

    #[test]
    fn health_updates_apply_and_publish_only_their_change() {
        let mut reg = registry_running_a();
        let update = |statuses| Command::UpdateTaskStatuses { statuses };
        let healthy = |uuid, verdict| {
            let mut s = status("a", TaskState::Running, uuid);
            s.healthy = Some(verdict);
            s.health = Some(crate::model::HealthReport::default());
            s
        };
        let changes = reg.apply(5, &update(vec![healthy("u2", true)]));
        assert_eq!(
            changes,
            vec![Change::TaskHealthChanged {
                task_id: "a".into(),
                agent_id: "c-S0".into(),
                healthy: Some(true),
            }]
        );
        assert_eq!(reg.tasks["a"].healthy, Some(true));
        assert_eq!(reg.tasks["a"].statuses.len(), 3, "kept in the history");
        // The master's own statuses carry no verdict: the health stays.
        let mut lost = status("a", TaskState::Unreachable, "u3");
        lost.agent_id = "c-S0".into();
        let changes = reg.apply(6, &update(vec![lost]));
        assert!(
            matches!(changes[..], [Change::TaskUpdated { .. }]),
            "{changes:?}"
        );
        assert_eq!(reg.tasks["a"].healthy, Some(true));
        reg.apply(7, &update(vec![status("a", TaskState::Running, "u4")]));
        // Ended by a kill for failing its checks: both changes.
        let mut killed = status("a", TaskState::Killed, "u5");
        killed.healthy = Some(false);
        let changes = reg.apply(8, &update(vec![killed]));
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(reg.task("a").unwrap().healthy, Some(false));
    }

    #[test]
    fn a_readiness_update_publishes_only_its_change() {
        let mut reg = registry_running_a();
        let update = |statuses| Command::UpdateTaskStatuses { statuses };
        let mut ready = status("a", TaskState::Running, "u2");
        ready.ready = Some(true);
        let changes = reg.apply(5, &update(vec![ready]));
        assert_eq!(
            changes,
            vec![Change::TaskReadyChanged {
                task_id: "a".into(),
                agent_id: "c-S0".into(),
                ready: Some(true),
            }]
        );
        assert_eq!(reg.tasks["a"].ready, Some(true));
        // Later statuses without it leave it as it was.
        reg.apply(6, &update(vec![status("a", TaskState::Killing, "u3")]));
        assert_eq!(reg.tasks["a"].ready, Some(true));
    }

    /// A status that comes after its agent was marked unreachable (it
    /// waited in the leader's queue meanwhile) changes nothing.
    #[test]
    fn an_unreachable_agents_late_status_is_ignored() {
        let (mut reg, agent) = registry_with_agent();
        reg.apply(
            3,
            &Command::LaunchTasks {
                tasks: vec![spec("t", 0.5)],
                time: 1.0,
            },
        );
        reg.apply(
            4,
            &Command::MarkAgentUnreachable {
                id: agent,
                time: 3.0,
            },
        );
        let late = Command::UpdateTaskStatuses {
            statuses: vec![status("t", TaskState::Running, "late")],
        };
        assert_eq!(reg.apply(5, &late), vec![]);
        assert_eq!(reg.tasks["t"].state, TaskState::Unreachable);
    }

    #[test]
    fn unreachable_agents_and_their_return() {
        let (mut reg, agent) = registry_with_agent();
        reg.apply(
            3,
            &Command::LaunchTasks {
                tasks: vec![spec("run", 0.5), spec("lost", 0.5), spec("new", 0.5)],
                time: 1.0,
            },
        );
        let update = Command::UpdateTaskStatuses {
            statuses: vec![
                status("run", TaskState::Running, "u1"),
                status("lost", TaskState::Running, "u2"),
            ],
        };
        reg.apply(4, &update);
        reg.apply(
            5,
            &Command::MarkAgentUnreachable {
                id: agent.clone(),
                time: 3.0,
            },
        );
        assert!(
            reg.tasks
                .values()
                .all(|t| t.state == TaskState::Unreachable)
        );
        // It comes back running one of them; "new" never got there.
        reg.apply(
            6,
            &register(vec![ReportedTask {
                task_id: "run".into(),
                state: TaskState::Running,
            }]),
        );
        assert_eq!(reg.tasks["run"].state, TaskState::Running);
        assert_eq!(reg.task("lost").unwrap().state, TaskState::Lost);
        // "new" was STAGING before the agent vanished, then UNREACHABLE: lost too.
        assert_eq!(reg.task("new").unwrap().state, TaskState::Lost);
        reg.apply(
            7,
            &Command::MarkAgentGone {
                id: agent,
                time: 4.0,
            },
        );
        assert_eq!(reg.task("run").unwrap().state, TaskState::Gone);
        assert!(reg.tasks.is_empty());
    }
}
