//! What the registry derives from its tasks and agents so that readers need
//! not scan them: each agent's live tasks and what they hold, each app's
//! live tasks and how a scheduler round sorts them, tasks and agents
//! counted by state, agents by key.
//!
//! ```text
//!  apply ─▶ a live task recorded ───▶ insert(task)
//!        ─▶ a live task changed ────▶ update(standing before, task)
//!        ─▶ a live task ended ──────▶ remove(task)
//!        ─▶ an agent added/changed ─▶ agent(state before, agent)
//!  snapshot read ─▶ of(tasks, agents): the same, rebuilt
//! ```
//!
//! Every reader of these used to pay a pass over every task: the
//! scheduler's round twice (tasks grouped by app, then by agent for the
//! placement views), `/metrics/snapshot` five times (polled every 50 ms by
//! the scale bench), an agent's registration once over every agent (its
//! key). At 10,000 agents and 100,000 tasks those passes were a third of the
//! leader's CPU in a deployment (BENCHMARKS.md, Scale).
//!
//! The indices are derived state: never serialized, rebuilt when a snapshot
//! is read, and compared with that rebuild in tests after random command
//! sequences (`tests.rs`). They change only inside `Registry::apply`, so
//! every master holds the same ones, and the registry's fit reads `usage`
//! (kept in exact thousandths, `usage.rs`).

mod by_agent;
mod by_app;
mod counts;
mod usage;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use imbl::OrdMap;

pub use by_app::AppCounts;
pub use counts::Counts;
pub use usage::{Used, milli};

use crate::model::{AgentInfo, AgentState, Task, TaskState};
use crate::scheduler::driver::reconcile::is_up;

/// What the indices read of a task that can change while it lives (its
/// agent, app and resources never do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub state: TaskState,
    pub kill_requested: bool,
    /// In service for a deployment (`reconcile::is_up`).
    pub up: bool,
}

impl Standing {
    pub fn of(task: &Task) -> Self {
        Self {
            state: task.state,
            kill_requested: task.kill_requested,
            up: is_up(task),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Index {
    pub by_agent: by_agent::TasksByAgent,
    pub by_app: by_app::TasksByApp,
    pub usage: usage::Usage,
    pub counts: Counts,
    /// Agent ids by the agent's own key.
    pub agent_keys: OrdMap<String, String>,
    /// The ids among `completed_tasks`, each with how often it is there:
    /// a launch asks whether its id was ever used, and a scan of the
    /// completed tasks for each of a thousand new ids was a million string
    /// compares per `LaunchTasks`, on every master.
    pub completed: OrdMap<String, usize>,
}

impl Index {
    /// The indices of a registry read from a snapshot.
    pub fn of<'a>(
        tasks: &OrdMap<Arc<str>, Arc<Task>>,
        agents: impl Iterator<Item = &'a AgentInfo>,
        completed: impl Iterator<Item = &'a Arc<Task>>,
    ) -> Self {
        let mut index = Self::default();
        for agent in agents {
            index.agent(None, agent);
        }
        for task in tasks.values() {
            index.insert(task);
        }
        for task in completed {
            index.completed_added(&task.spec.task_id);
        }
        index
    }

    /// A task joined the completed ones.
    pub fn completed_added(&mut self, task_id: &str) {
        *self.completed.entry(task_id.to_string()).or_default() += 1;
    }

    /// The oldest completed task was let go.
    pub fn completed_dropped(&mut self, task_id: &str) {
        if let Some(n) = self.completed.get_mut(task_id) {
            *n -= 1;
            if *n == 0 {
                self.completed.remove(task_id);
            }
        }
    }

    /// A live task recorded.
    pub fn insert(&mut self, task: &Task) {
        let standing = Standing::of(task);
        self.by_agent
            .insert(&task.spec.agent_id, &task.spec.task_id);
        self.by_app.insert(task, standing);
        self.usage.add(&task.spec);
        self.counts.task(None, Some(standing.state));
    }

    /// A live task changed; `before` is how it stood until then.
    pub fn update(&mut self, before: Standing, task: &Task) {
        let after = Standing::of(task);
        if after == before {
            return;
        }
        self.by_app.update(task, before, after);
        self.counts.task(Some(before.state), Some(after.state));
    }

    /// A live task ended (it is no longer in `tasks`).
    pub fn remove(&mut self, task: &Task) {
        let standing = Standing::of(task);
        self.by_agent
            .remove(&task.spec.agent_id, &task.spec.task_id);
        self.by_app.remove(task, standing);
        self.usage.remove(&task.spec);
        self.counts.task(Some(standing.state), None);
    }

    /// An agent added (`before` None) or changed state.
    pub fn agent(&mut self, before: Option<AgentState>, agent: &AgentInfo) {
        if before.is_none() {
            self.agent_keys.insert(agent.key.clone(), agent.id.clone());
        }
        self.counts.agent(before, agent.state);
    }
}
