//! Which live tasks each agent holds.
//!
//! An agent's (re)subscription reconciles its tasks, and its unreachability
//! turns them UNREACHABLE; without the index each was a scan of every task
//! in the cluster, and a fleet resubscribing after a failover cost the new
//! leader agents × tasks (27–34 s at 5,000 agents and 50,000 tasks, see
//! BENCHMARKS.md, Scale).

use imbl::{OrdMap, OrdSet};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TasksByAgent(OrdMap<String, OrdSet<String>>);

impl TasksByAgent {
    pub fn insert(&mut self, agent_id: &str, task_id: &str) {
        self.0
            .entry(agent_id.to_string())
            .or_default()
            .insert(task_id.to_string());
    }

    pub fn remove(&mut self, agent_id: &str, task_id: &str) {
        if let Some(ids) = self.0.get_mut(agent_id) {
            ids.remove(task_id);
            if ids.is_empty() {
                self.0.remove(agent_id);
            }
        }
    }

    /// The ids of the agent's live tasks, in task id order.
    pub fn ids<'a>(&'a self, agent_id: &str) -> impl Iterator<Item = &'a String> + use<'a> {
        self.0.get(agent_id).into_iter().flatten()
    }
}
