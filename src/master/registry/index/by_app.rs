//! Each Marathon app's live tasks (those whose `run_spec` names it), and
//! their counts as a scheduler round sorts them. A round reads an app's
//! counts and looks at its tasks only when the counts leave a choice to
//! make: instances to add or remove, a restart, unreachable tasks whose
//! fate depends on the time.

use imbl::{OrdMap, OrdSet};

use super::Standing;
use crate::model::{Task, TaskState};

/// One app's live tasks counted as a round sorts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppCounts {
    /// Every live task of the app.
    pub live: usize,
    /// Of those, the ones asked to end (they hold capacity, not instances).
    pub kill_requested: usize,
    /// Of the rest, the TASK_UNREACHABLE ones: whether they count as
    /// instances depends on how long ago they went.
    pub unreachable: usize,
    /// Of the rest, the ones in service for a deployment (`is_up`).
    pub up: usize,
}

impl AppCounts {
    fn add(&mut self, s: Standing) {
        self.live += 1;
        if s.kill_requested {
            self.kill_requested += 1;
        } else if s.state == TaskState::Unreachable {
            self.unreachable += 1;
        } else if s.up {
            self.up += 1;
        }
    }

    fn sub(&mut self, s: Standing) {
        self.live -= 1;
        if s.kill_requested {
            self.kill_requested -= 1;
        } else if s.state == TaskState::Unreachable {
            self.unreachable -= 1;
        } else if s.up {
            self.up -= 1;
        }
    }

    /// The instances when no task is unreachable: every live task not asked
    /// to end.
    pub fn reachable_instances(&self) -> Option<usize> {
        (self.unreachable == 0).then_some(self.live - self.kill_requested)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppTasks {
    /// Task ids, in id order (the order of `Registry::tasks`).
    pub ids: OrdSet<String>,
    pub counts: AppCounts,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TasksByApp(pub OrdMap<String, AppTasks>);

impl TasksByApp {
    pub fn insert(&mut self, task: &Task, standing: Standing) {
        let Some(run) = &task.spec.run_spec else {
            return;
        };
        let app = self.0.entry(run.app_id.clone()).or_default();
        app.ids.insert(task.spec.task_id.clone());
        app.counts.add(standing);
    }

    pub fn update(&mut self, task: &Task, before: Standing, after: Standing) {
        let Some(run) = &task.spec.run_spec else {
            return;
        };
        if let Some(app) = self.0.get_mut(&run.app_id) {
            app.counts.sub(before);
            app.counts.add(after);
        }
    }

    pub fn remove(&mut self, task: &Task, standing: Standing) {
        let Some(run) = &task.spec.run_spec else {
            return;
        };
        if let Some(app) = self.0.get_mut(&run.app_id) {
            app.ids.remove(&task.spec.task_id);
            app.counts.sub(standing);
            if app.ids.is_empty() {
                self.0.remove(&run.app_id);
            }
        }
    }
}
