//! The registry: the replicated state machine every master holds in memory.
//!
//! It is the single source of truth. [`Registry::apply`] is deterministic (no
//! clocks, no randomness: both travel inside commands), so every master that
//! applies the same log holds the same registry. Each apply returns the
//! [`Change`]s it made; the Raft driver publishes them on the event bus.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use imbl::{OrdMap, Vector};
use serde::{Deserialize, Serialize};

mod fit;
mod index;
mod published;
mod stored;
mod tasks;

/// A registry of one agent, `c-S0` (2 cpus, 100 MB, no ports), for tests
/// elsewhere in the crate.
#[cfg(test)]
pub(crate) use tasks::tests::registry_with_agent;

pub use index::{AppCounts, Counts, Used, milli};
pub use published::PublishedRegistry;

use super::command::Command;
use crate::model::{AgentInfo, AgentState, Member, Task, TaskState, WeightInfo};
use crate::scheduler::state::{MarathonChange, MarathonState};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Registry {
    /// Set once by the first leader; agent ids and framework ids derive from it.
    pub cluster_id: Option<String>,
    /// Members of the Raft group, by node id (the voters are in the Raft conf state;
    /// this holds their addresses).
    pub members: BTreeMap<u64, Member>,
    /// Ids of removed masters. Never given out again (a removed master still
    /// running would pass for the newcomer), and their late announcements are
    /// ignored.
    pub removed_members: BTreeSet<u64>,
    /// A persistent map like the big ones: a registry bench writes thousands
    /// of roles, and a draft that copied them cost every Raft round.
    pub weights: OrdMap<String, f64>,
    /// Admitted agents by id (`<cluster-id>-S<n>`).
    pub agents: OrdMap<String, AgentInfo>,
    /// The `n` of the next new agent id.
    pub next_agent: u64,
    /// Tasks not yet terminal, by task id: they hold their agent's resources.
    /// A persistent map of shared tasks, so that each published version of
    /// the registry (see [`published`]) shares all but the paths a round
    /// changed, and a change copies only the task it changes
    /// (`Arc::make_mut`) while an older version still holds it. Keyed by
    /// `Arc<str>`, so that copying a tree node on a change's path shares
    /// its ids rather than copying each (`index::by_agent` says what that
    /// cost). Written each id once (`stored`).
    #[serde(with = "stored::tasks")]
    pub tasks: OrdMap<Arc<str>, Arc<Task>>,
    /// What is derived from `tasks` and `agents` (see [`index`]): not in
    /// the snapshot, rebuilt from it.
    #[serde(skip)]
    index: index::Index,
    /// The latest terminal tasks, oldest first, at most [`COMPLETED_TASKS`].
    #[serde(with = "stored::completed")]
    pub completed_tasks: Vector<Arc<Task>>,
    /// Index of the last entry applied, so a snapshot knows where it stands.
    pub applied_index: u64,
    /// The scheduler's apps, deployments and backoff. Shared whole: a round
    /// that changes it copies it (`Arc::make_mut`); most rounds (task
    /// statuses) leave it alone.
    pub marathon: Arc<MarathonState>,
}

/// What an apply changed, published to every subscriber (scheduler, DNS, events).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    ClusterInitialized {
        cluster_id: String,
    },
    MemberChanged {
        id: u64,
    },
    MemberRemoved {
        id: u64,
    },
    WeightsUpdated {
        roles: Vec<String>,
    },
    AgentRegistered {
        id: String,
    },
    AgentReregistered {
        id: String,
    },
    AgentUnreachable {
        id: String,
    },
    AgentGone {
        id: String,
    },
    /// A task was recorded or changed state (STAGING on launch).
    TaskUpdated {
        task_id: String,
        agent_id: String,
        state: TaskState,
    },
    /// A task's health (by its checks) changed. A status that changes only
    /// the health (RUNNING again, `healthy` flipped) publishes just this; one
    /// that also changes the state publishes both.
    TaskHealthChanged {
        task_id: String,
        agent_id: String,
        healthy: Option<bool>,
    },
    /// A task's readiness check passed (a RUNNING status with `ready`,
    /// which publishes only this).
    TaskReadyChanged {
        task_id: String,
        agent_id: String,
        ready: Option<bool>,
    },
    /// A kill was asked for a task still running.
    TaskKillRequested {
        task_id: String,
        agent_id: String,
    },
    /// The scheduler's state changed.
    Marathon(MarathonChange),
    /// The whole registry was replaced from a snapshot: rebuild every view.
    Restored,
}

/// How many terminal tasks the registry remembers (Mesos keeps 1000 too).
pub const COMPLETED_TASKS: usize = 1000;

impl Registry {
    /// A task by id, active or among the recently completed.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.get(id).map(|t| &**t).or_else(|| {
            self.index.completed.get(id)?;
            self.completed_tasks
                .iter()
                .rev()
                .find(|t| t.spec.task_id == id)
                .map(|t| &**t)
        })
    }

    /// An agent's live tasks, in task id order.
    pub fn agent_tasks<'a>(&'a self, agent_id: &str) -> impl Iterator<Item = &'a Task> + use<'a> {
        self.index
            .by_agent
            .ids(agent_id)
            .filter_map(|id| self.tasks.get(id).map(|t| &**t))
    }

    /// The agent whose own key this is.
    pub fn agent_by_key(&self, key: &str) -> Option<&AgentInfo> {
        self.index
            .agent_keys
            .get(key)
            .and_then(|id| self.agents.get(id))
    }

    /// What each agent's live tasks hold, by agent id; agents without live
    /// tasks are left out.
    pub fn agent_usage(&self) -> &imbl::OrdMap<Arc<str>, Used> {
        &self.index.usage.0
    }

    /// An app's live tasks (by `run_spec`), in task id order.
    pub fn app_tasks<'a>(&'a self, app_id: &str) -> impl Iterator<Item = &'a Task> + use<'a> {
        self.index
            .by_app
            .0
            .get(app_id)
            .into_iter()
            .flat_map(|app| app.ids.iter())
            .filter_map(|id| self.tasks.get(id.as_str()).map(|t| &**t))
    }

    /// An app's live tasks counted (all zero without any).
    pub fn app_counts(&self, app_id: &str) -> AppCounts {
        self.index
            .by_app
            .0
            .get(app_id)
            .map(|app| app.counts)
            .unwrap_or_default()
    }

    /// The ids of the apps that have live tasks, existing or not, in order.
    pub fn apps_with_tasks(&self) -> impl Iterator<Item = &String> {
        self.index.by_app.0.keys()
    }

    /// Live tasks and agents counted by state.
    pub fn counts(&self) -> &Counts {
        &self.index.counts
    }

    /// Changes a live task in place (copying it first if an older version
    /// of the registry still holds it), keeping the indices in step. None
    /// when no live task has that id.
    fn change_task<R>(&mut self, id: &str, change: impl FnOnce(&mut Task) -> R) -> Option<R> {
        let shared = self.tasks.get_mut(id)?;
        let before = index::Standing::of(shared);
        let task = Arc::make_mut(shared);
        let out = change(task);
        self.index.update(before, task);
        Some(out)
    }

    /// Changes an agent, keeping the indices in step.
    fn change_agent<R>(&mut self, id: &str, change: impl FnOnce(&mut AgentInfo) -> R) -> Option<R> {
        let agent = self.agents.get_mut(id)?;
        let before = agent.state;
        let out = change(agent);
        self.index.agent(Some(before), agent);
        Some(out)
    }

    /// [`Registry::apply`] of a command read from the log, which nothing
    /// else needs: a launch moves its specs into the registry. A copy of each
    /// spec (Marathon's environment and all) and the drop of the command's
    /// were 4% of every master's CPU in a 100,000-task deployment.
    pub fn apply_owned(&mut self, index: u64, command: Command) -> Vec<Change> {
        match command {
            Command::LaunchTasks { tasks, time } => {
                self.applied_index = index;
                self.launch_all(tasks, time)
            }
            command => self.apply(index, &command),
        }
    }

    pub fn apply(&mut self, index: u64, command: &Command) -> Vec<Change> {
        self.applied_index = index;
        match command {
            Command::InitCluster { cluster_id } => {
                // The first one wins; a second leader racing to initialise is a no-op.
                if self.cluster_id.is_some() {
                    return vec![];
                }
                self.cluster_id = Some(cluster_id.clone());
                vec![Change::ClusterInitialized {
                    cluster_id: cluster_id.clone(),
                }]
            }
            Command::AnnounceMember { member } => {
                // An announcement can commit after its master's removal (it was
                // proposed just before, or by the removed master, which may never
                // learn of its removal): it must not bring the master back.
                if self.removed_members.contains(&member.id)
                    || self.members.get(&member.id) == Some(member)
                {
                    return vec![];
                }
                self.members.insert(member.id, member.clone());
                vec![Change::MemberChanged { id: member.id }]
            }
            Command::UpdateWeights { weights } => {
                for WeightInfo { role, weight } in weights {
                    self.weights.insert(role.clone(), *weight);
                }
                vec![Change::WeightsUpdated {
                    roles: weights.iter().map(|w| w.role.clone()).collect(),
                }]
            }
            Command::RegisterAgent {
                key,
                hostname,
                addr,
                resources,
                attributes,
                time,
                tasks,
            } => {
                let known = self.agent_by_key(key);
                if known.is_some_and(|a| a.state == AgentState::Gone) {
                    // Gone is for good: the leader refuses it before proposing.
                    return vec![];
                }
                let known = known.map(|a| a.id.clone());
                let (id, mut changes) = match known {
                    Some(id) => {
                        self.change_agent(&id, |agent| {
                            agent.hostname = hostname.clone();
                            agent.addr = addr.clone();
                            agent.resources = resources.clone();
                            agent.attributes = attributes.clone();
                            agent.state = AgentState::Active;
                            agent.reregistered_time = Some(*time);
                            agent.unreachable_time = None;
                        });
                        (id.clone(), vec![Change::AgentReregistered { id }])
                    }
                    None => {
                        let cluster = self.cluster_id.as_deref().unwrap_or("meso");
                        let id = format!("{cluster}-S{}", self.next_agent);
                        self.next_agent += 1;
                        let agent = AgentInfo {
                            id: id.clone(),
                            key: key.clone(),
                            hostname: hostname.clone(),
                            addr: addr.clone(),
                            resources: resources.clone(),
                            attributes: attributes.clone(),
                            state: AgentState::Active,
                            registered_time: *time,
                            reregistered_time: None,
                            unreachable_time: None,
                        };
                        self.index.agent(None, &agent);
                        self.agents.insert(id.clone(), agent);
                        (id.clone(), vec![Change::AgentRegistered { id }])
                    }
                };
                changes.extend(self.reconcile_agent_tasks(&id, tasks, *time));
                changes
            }
            Command::MarkAgentUnreachable { id, time } => match self.agents.get(id) {
                Some(agent) if agent.state == AgentState::Active => {
                    self.change_agent(id, |agent| {
                        agent.state = AgentState::Unreachable;
                        agent.unreachable_time = Some(*time);
                    });
                    let mut changes = vec![Change::AgentUnreachable { id: id.clone() }];
                    changes.extend(self.agent_tasks_become(
                        id,
                        TaskState::Unreachable,
                        "REASON_SLAVE_REMOVED",
                        "the agent is unreachable",
                        *time,
                    ));
                    changes
                }
                _ => vec![],
            },
            Command::MarkAgentGone { id, time } => match self.agents.get(id) {
                Some(agent) if agent.state != AgentState::Gone => {
                    self.change_agent(id, |agent| {
                        agent.state = AgentState::Gone;
                        agent.unreachable_time.get_or_insert(*time);
                    });
                    let mut changes = vec![Change::AgentGone { id: id.clone() }];
                    changes.extend(self.agent_tasks_become(
                        id,
                        TaskState::Gone,
                        "REASON_SLAVE_REMOVED_BY_OPERATOR",
                        "an operator marked the agent gone",
                        *time,
                    ));
                    changes
                }
                _ => vec![],
            },
            Command::LaunchTasks { tasks, time } => self.launch_all(tasks.clone(), *time),
            Command::KillTask { task_id } => self.request_kill(task_id).into_iter().collect(),
            Command::KillTasks { task_ids } => task_ids
                .iter()
                .filter_map(|id| self.request_kill(id))
                .collect(),
            Command::UpdateTaskStatuses { statuses } => statuses
                .iter()
                .flat_map(|status| self.agent_status(status))
                .collect(),
            Command::Marathon { command } => Arc::make_mut(&mut self.marathon)
                .apply(command)
                .into_iter()
                .map(Change::Marathon)
                .collect(),
        }
    }

    /// Marks a live task asked to end; None when it is not live or already was.
    fn request_kill(&mut self, task_id: &str) -> Option<Change> {
        if self.tasks.get(task_id)?.kill_requested {
            return None;
        }
        self.change_task(task_id, |task| {
            task.kill_requested = true;
            Change::TaskKillRequested {
                task_id: task_id.to_string(),
                agent_id: task.spec.agent_id.clone(),
            }
        })
    }

    /// A membership change committed through Raft (not a [`Command`]: Raft's own
    /// conf-change entries carry it).
    pub fn apply_member_added(&mut self, index: u64, member: Member) -> Vec<Change> {
        self.applied_index = index;
        let id = member.id;
        self.members.insert(id, member);
        vec![Change::MemberChanged { id }]
    }

    pub fn apply_member_removed(&mut self, index: u64, id: u64) -> Vec<Change> {
        self.applied_index = index;
        self.members.remove(&id);
        self.removed_members.insert(id);
        vec![Change::MemberRemoved { id }]
    }

    /// The id for a new master: above every id ever used, removed ones included.
    pub fn next_member_id(&self, voters: &[u64]) -> u64 {
        let highest = self
            .members
            .keys()
            .chain(self.removed_members.iter())
            .chain(voters.iter())
            .max()
            .copied()
            .unwrap_or(0);
        highest + 1
    }

    pub fn weights(&self) -> Vec<WeightInfo> {
        self.weights
            .iter()
            .map(|(role, weight)| WeightInfo {
                role: role.clone(),
                weight: *weight,
            })
            .collect()
    }

    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_snapshot(&mut out)
            .expect("the registry serializes: it holds only plain data");
        out
    }

    /// The snapshot, written into `out` as it is serialized (a snapshot file,
    /// see `raft::snapshot_file`).
    pub fn write_snapshot(&self, out: impl std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }

    pub fn from_snapshot(data: &[u8]) -> Result<Self, serde_json::Error> {
        if data.is_empty() {
            // The bootstrap snapshot of a new cluster carries no data.
            return Ok(Self::default());
        }
        let mut registry: Self = serde_json::from_slice(data)?;
        registry.index = index::Index::of(
            &registry.tasks,
            registry.agents.values(),
            registry.completed_tasks.iter(),
        );
        Arc::make_mut(&mut registry.marathon).reindex();
        Ok(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(pairs: &[(&str, f64)]) -> Command {
        Command::UpdateWeights {
            weights: pairs
                .iter()
                .map(|(r, w)| WeightInfo {
                    role: r.to_string(),
                    weight: *w,
                })
                .collect(),
        }
    }

    #[test]
    fn same_log_same_registry() {
        let log = [
            Command::InitCluster {
                cluster_id: "c1".into(),
            },
            weights(&[("a", 1.0), ("b", 2.0)]),
            Command::InitCluster {
                cluster_id: "c2".into(),
            },
            weights(&[("a", 3.0)]),
        ];
        let mut one = Registry::default();
        let mut two = Registry::default();
        for (i, c) in log.iter().enumerate() {
            one.apply(i as u64 + 1, c);
            two.apply(i as u64 + 1, c);
        }
        assert_eq!(one, two);
        assert_eq!(one.cluster_id.as_deref(), Some("c1"), "first init wins");
        assert_eq!(one.weights.get("a"), Some(&3.0));
        assert_eq!(one.applied_index, 4);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut reg = Registry::default();
        reg.apply(7, &weights(&[("x", 0.5)]));
        let back = Registry::from_snapshot(&reg.to_snapshot()).unwrap();
        assert_eq!(back, reg);
        assert_eq!(Registry::from_snapshot(&[]).unwrap(), Registry::default());
    }

    #[test]
    fn announce_reports_only_real_changes() {
        let mut reg = Registry::default();
        let m = Member {
            id: 1,
            raft_addr: "127.0.0.1:1".into(),
            http_addr: None,
            hostname: None,
        };
        let cmd = Command::AnnounceMember { member: m };
        assert_eq!(reg.apply(1, &cmd).len(), 1);
        assert!(reg.apply(2, &cmd).is_empty());
    }

    #[test]
    fn agents_get_mesos_ids_and_keep_them() {
        let mut reg = Registry::default();
        reg.apply(
            1,
            &Command::InitCluster {
                cluster_id: "c".into(),
            },
        );
        let register = |key: &str, time: f64| Command::RegisterAgent {
            key: key.into(),
            hostname: "h".into(),
            addr: "127.0.0.1:1".into(),
            resources: Default::default(),
            attributes: Default::default(),
            time,
            tasks: vec![],
        };
        assert_eq!(
            reg.apply(2, &register("a", 1.0)),
            vec![Change::AgentRegistered { id: "c-S0".into() }]
        );
        assert_eq!(
            reg.apply(3, &register("b", 2.0)),
            vec![Change::AgentRegistered { id: "c-S1".into() }]
        );
        let gone = Command::MarkAgentUnreachable {
            id: "c-S0".into(),
            time: 3.0,
        };
        assert_eq!(reg.apply(4, &gone).len(), 1);
        assert!(reg.apply(5, &gone).is_empty(), "already unreachable");
        assert_eq!(reg.agents["c-S0"].state, AgentState::Unreachable);
        assert_eq!(
            reg.apply(6, &register("a", 4.0)),
            vec![Change::AgentReregistered { id: "c-S0".into() }]
        );
        assert_eq!(reg.agents["c-S0"].state, AgentState::Active);
        assert_eq!(reg.agents["c-S0"].registered_time, 1.0);
    }

    #[test]
    fn a_removed_master_stays_removed_and_its_id_unused() {
        let mut reg = Registry::default();
        let m = Member {
            id: 4,
            raft_addr: "127.0.0.1:4".into(),
            http_addr: None,
            hostname: None,
        };
        reg.apply_member_added(1, m.clone());
        reg.apply_member_removed(2, 4);
        assert!(
            reg.apply(3, &Command::AnnounceMember { member: m })
                .is_empty()
        );
        assert!(!reg.members.contains_key(&4));
        assert_eq!(reg.next_member_id(&[1, 2, 3]), 5);
    }
}
