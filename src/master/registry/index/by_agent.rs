//! Which live tasks each agent holds.
//!
//! An agent's (re)subscription reconciles its tasks, and its unreachability
//! turns them UNREACHABLE; without the index each was a scan of every task
//! in the cluster, and a fleet resubscribing after a failover cost the new
//! leader agents × tasks (27–34 s at 5,000 agents and 50,000 tasks, see
//! BENCHMARKS.md, Scale).

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};

/// Keyed by `Arc<str>`, as the registry's tasks are: a change after a
/// version of the registry was published copies the tree nodes on its path
/// (structural sharing), and a node's keys with it; as `String`s, that was a
/// heap copy of each of a node's ids, 3% of a follower's CPU in a
/// 10,000-agent deployment (BENCHMARKS.md, Scale).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TasksByAgent(OrdMap<Arc<str>, OrdSet<Arc<str>>>);

impl TasksByAgent {
    pub fn insert(&mut self, agent_id: &str, task_id: &str) {
        let task_id = Arc::from(task_id);
        match self.0.get_mut(agent_id) {
            Some(ids) => {
                ids.insert(task_id);
            }
            None => {
                self.0.insert(Arc::from(agent_id), OrdSet::unit(task_id));
            }
        }
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
    pub fn ids<'a>(&'a self, agent_id: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        self.0.get(agent_id).into_iter().flatten().map(|id| &**id)
    }
}
