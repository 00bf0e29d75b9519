//! Which apps a scheduler round looks at: those the changes since the last
//! round touched, or all of them.
//!
//! ```text
//!  Change ─▶ Dirty::note: a task's change ─▶ its id (its app is read at the round)
//!                         apps put or removed, a delay reset ─▶ those apps
//!                         a deployment started or advanced ─▶ its id (its apps)
//!                         a deployment finished ─▶ its apps
//!                         an agent's change, a restore, anything else ─▶ all
//!  the 1 s tick, a bus that lagged, a new leader, a failed round ─▶ all
//!  round ─▶ Dirty::take(registry) ─▶ Scope ─▶ reconcile::plan
//! ```
//!
//! Why: a round reads every app and every running deployment, and the
//! changes of a busy cluster start one round after another. 1,000 apps
//! POSTed one by one made each POST's rounds read up to 1,000 apps and
//! deployments: the reads were a seventh of the master's CPU. A round now
//! reads what changed; the tick's round still reads everything once a
//! second, for what time alone moves on (backoff delays, unreachable tasks,
//! apps waiting for room) and as the net under anything missed here.

use std::collections::BTreeSet;

use crate::master::registry::{Change, Registry};
use crate::scheduler::running_deployments::RunningDeployments;
use crate::scheduler::state::{Deployment, MarathonChange};

/// Task and deployment ids kept before a round; past this, the round reads
/// everything (bounds a master that is not leading, whose rounds never come).
const MAX_KEPT: usize = 10_000;

/// The apps a round plans for.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    All,
    Apps(BTreeSet<String>),
}

impl Scope {
    pub fn covers(&self, app: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Apps(apps) => apps.contains(app),
        }
    }

    /// The running deployments whose steps are this round's to check: those
    /// touching an app in scope, by id.
    pub fn deployments<'a>(&self, running: &'a RunningDeployments) -> Vec<&'a Deployment> {
        match self {
            Scope::All => running.values().map(|d| &**d).collect(),
            Scope::Apps(apps) => running.touching(apps.iter().map(String::as_str)).collect(),
        }
    }
}

/// What changed since the last round.
#[derive(Debug)]
pub struct Dirty {
    all: bool,
    apps: BTreeSet<String>,
    tasks: Vec<String>,
    deployments: Vec<String>,
}

impl Default for Dirty {
    /// The first round reads everything.
    fn default() -> Self {
        Self {
            all: true,
            apps: BTreeSet::new(),
            tasks: Vec::new(),
            deployments: Vec::new(),
        }
    }
}

impl Dirty {
    pub fn everything(&mut self) {
        self.all = true;
        self.apps.clear();
        self.tasks.clear();
        self.deployments.clear();
    }

    pub fn note(&mut self, change: &Change) {
        if self.all {
            return;
        }
        match change {
            Change::TaskUpdated { task_id, .. }
            | Change::TaskHealthChanged { task_id, .. }
            | Change::TaskReadyChanged { task_id, .. }
            | Change::TaskKillRequested { task_id, .. } => {
                self.tasks.push(task_id.clone());
                self.bound();
            }
            Change::Marathon(change) => match change {
                MarathonChange::AppsChanged { put, removed } => {
                    self.apps.extend(put.iter().chain(removed).cloned());
                }
                MarathonChange::DeploymentStarted { id }
                | MarathonChange::DeploymentAdvanced { id, .. } => {
                    self.deployments.push(id.clone());
                    self.bound();
                }
                MarathonChange::DeploymentFinished { deployment, .. } => {
                    self.apps.extend(deployment.affected_apps.iter().cloned());
                }
                MarathonChange::DelayReset { app } => {
                    self.apps.insert(app.clone());
                }
                MarathonChange::SubscriptionsChanged { .. } => {}
            },
            // Agents come and go (room to place, tasks unreachable), the
            // registry was replaced, the cluster changed: every app may move.
            _ => self.everything(),
        }
    }

    fn bound(&mut self) {
        if self.tasks.len() + self.deployments.len() > MAX_KEPT {
            self.everything();
        }
    }

    /// The scope of the round about to be planned from `registry`, and a
    /// clean start for the next.
    pub fn take(&mut self, registry: &Registry) -> Scope {
        let mut dirty = std::mem::replace(
            self,
            Self {
                all: false,
                ..Self::default()
            },
        );
        if dirty.all {
            return Scope::All;
        }
        for id in &dirty.tasks {
            match registry.task(id) {
                // A task of no app (launched through the tasks API) is not
                // the scheduler's.
                Some(task) => {
                    if let Some(run_spec) = &task.spec.run_spec {
                        dirty.apps.insert(run_spec.app_id.clone());
                    }
                }
                // Ended and already past the completed tasks kept: its app
                // is not known any more.
                None => return Scope::All,
            }
        }
        for id in &dirty.deployments {
            // One gone already has finished, and its apps came with that.
            if let Some(deployment) = registry.marathon.deployments.get(id) {
                dirty.apps.extend(deployment.affected_apps.iter().cloned());
            }
        }
        Scope::Apps(dirty.apps)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::master::command::Command;
    use crate::model::{RunSpecRef, TaskSpec, TaskState};
    use crate::scheduler::state::Outcome;

    fn deployment(id: &str, apps: &[&str]) -> Deployment {
        Deployment {
            id: id.into(),
            version: "v".into(),
            affected_apps: apps.iter().map(|a| a.to_string()).collect(),
            steps: vec![],
            current_step: 0,
            original: BTreeMap::new(),
        }
    }

    /// A registry with task `t1` of app `/a`, task `t2` of no app, and a
    /// deployment `d1` of `/b` and `/c`.
    fn registry() -> Registry {
        let mut reg = Registry::default();
        let spec = |id: &str, app: Option<&str>| TaskSpec {
            task_id: id.into(),
            agent_id: "c-S0".into(),
            run_spec: app.map(|a| RunSpecRef {
                app_id: a.into(),
                version: "v".into(),
                config_version: "v".into(),
            }),
            ..TaskSpec::default()
        };
        reg.apply(
            1,
            &Command::LaunchTasks {
                tasks: vec![spec("t1", Some("/a")), spec("t2", None)],
                time: 1.0,
            },
        );
        Arc::make_mut(&mut reg.marathon)
            .deployments
            .insert("d1".into(), Arc::new(deployment("d1", &["/b", "/c"])));
        reg
    }

    fn task_updated(id: &str) -> Change {
        Change::TaskUpdated {
            task_id: id.into(),
            agent_id: "c-S0".into(),
            state: TaskState::Running,
        }
    }

    fn apps(ids: &[&str]) -> Scope {
        Scope::Apps(ids.iter().map(|a| a.to_string()).collect())
    }

    /// A `Dirty` past its first round.
    fn clean(reg: &Registry) -> Dirty {
        let mut dirty = Dirty::default();
        assert_eq!(
            dirty.take(reg),
            Scope::All,
            "the first round reads everything"
        );
        dirty
    }

    #[test]
    fn a_round_reads_the_apps_its_changes_touched() {
        let reg = registry();
        let mut dirty = clean(&reg);
        assert_eq!(dirty.take(&reg), apps(&[]), "nothing changed");

        dirty.note(&task_updated("t1"));
        dirty.note(&task_updated("t2"));
        dirty.note(&Change::Marathon(MarathonChange::AppsChanged {
            put: vec!["/p".into()],
            removed: vec!["/r".into()],
        }));
        dirty.note(&Change::Marathon(MarathonChange::DeploymentStarted {
            id: "d1".into(),
        }));
        dirty.note(&Change::Marathon(MarathonChange::DeploymentFinished {
            deployment: Arc::new(deployment("d0", &["/f"])),
            outcome: Outcome::Succeeded,
        }));
        dirty.note(&Change::Marathon(MarathonChange::DelayReset {
            app: "/d".into(),
        }));
        assert_eq!(
            dirty.take(&reg),
            apps(&["/a", "/b", "/c", "/d", "/f", "/p", "/r"])
        );
        assert_eq!(dirty.take(&reg), apps(&[]), "taken once");
    }

    #[test]
    fn what_may_move_any_app_makes_a_round_read_all() {
        let reg = registry();
        for change in [
            Change::AgentRegistered { id: "c-S1".into() },
            Change::AgentUnreachable { id: "c-S0".into() },
            Change::Restored,
            // A task no longer known: its app is not either.
            task_updated("gone"),
        ] {
            let mut dirty = clean(&reg);
            dirty.note(&task_updated("t1"));
            dirty.note(&change);
            assert_eq!(dirty.take(&reg), Scope::All, "{change:?}");
            assert_eq!(dirty.take(&reg), apps(&[]));
        }
        let mut dirty = clean(&reg);
        for _ in 0..=MAX_KEPT {
            dirty.note(&task_updated("t1"));
        }
        assert_eq!(dirty.take(&reg), Scope::All, "too many to keep");
        dirty.everything();
        assert_eq!(dirty.take(&reg), Scope::All);
    }

    #[test]
    fn a_scope_reads_the_deployments_of_its_apps() {
        let mut running = RunningDeployments::default();
        running.insert("d1".into(), Arc::new(deployment("d1", &["/b", "/c"])));
        running.insert("d2".into(), Arc::new(deployment("d2", &["/d"])));
        let ids = |scope: Scope| -> Vec<String> {
            scope
                .deployments(&running)
                .iter()
                .map(|d| d.id.clone())
                .collect()
        };
        assert_eq!(ids(Scope::All), ["d1", "d2"]);
        assert_eq!(ids(apps(&["/c", "/b"])), ["d1"]);
        assert_eq!(ids(apps(&["/c", "/d"])), ["d1", "d2"]);
        assert!(ids(apps(&["/a"])).is_empty());
    }
}
