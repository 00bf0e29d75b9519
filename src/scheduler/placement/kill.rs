//! Which instances go when an app scales down.
//!
//! Marathon (`ScalingProposition.propose`, `Constraints.selectInstancesToKill`)
//! kills, in order: instances picked to even out GROUP_BY distributions, then
//! the rest by condition (unreachable, staging, starting, running; its
//! comment adds "unhealthy" after unreachable, which the code never got to),
//! then by `killSelection`. We order by, most urgent first:
//!
//! 1. condition: not running (unreachable, lost, …), then unhealthy, then
//!    staging, starting, running; killing last (it is going already). A
//!    broken instance goes before a healthy one even where that leaves a
//!    GROUP_BY less even: capacity that serves beats balance;
//! 2. misplacement: instances on an agent that no longer passes a constraint
//!    (a static one, a missing field, off the CLUSTER value), plus those
//!    beyond what UNIQUE or MAX_PER allow on their value;
//! 3. crowding: the instance's GROUP_BY value holding the most instances, per
//!    GROUP_BY in declared order, so the distribution evens out;
//! 4. `killSelection`: YOUNGEST_FIRST kills the latest started (staged, if
//!    not started yet) first; OLDEST_FIRST the earliest;
//! 5. task id, so the choice is the same on every run.
//!
//! Counts change with each kill, so the choice is made one kill at a time
//! from a heap whose keys only ever lose urgency (counts only fall): a popped
//! key that went stale is pushed back with its new value.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use super::TotalOrd;
use super::constraints::Constraint;
use super::tally::{Fields, Limit, Tally};
use super::view::AgentView;
use crate::model::TaskState;

/// Marathon's `killSelection`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    #[default]
    YoungestFirst,
    OldestFirst,
}

/// One live instance of the app, as the kill choice needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub task_id: String,
    pub agent_id: String,
    /// Seconds since the epoch.
    pub staged_at: f64,
    pub started_at: Option<f64>,
    /// None without health checks (or before the first result).
    pub healthy: Option<bool>,
    pub state: TaskState,
}

impl InstanceView {
    /// Lower goes first.
    fn condition(&self) -> u8 {
        match (self.state, self.healthy) {
            (TaskState::Killing, _) => 5,
            (TaskState::Staging | TaskState::Starting | TaskState::Running, Some(false)) => 1,
            (TaskState::Staging, _) => 2,
            (TaskState::Starting, _) => 3,
            (TaskState::Running, _) => 4,
            _ => 0,
        }
    }
}

/// The task ids of `count` instances to kill (fewer if there are fewer),
/// in the order they should go.
pub fn choose_to_kill(
    instances: &[InstanceView],
    count: usize,
    kill_selection: KillSelection,
    constraints: &[Constraint],
    agents: &[AgentView],
) -> Vec<String> {
    let fields = Fields::index(constraints, agents);
    let by_id: HashMap<&str, usize> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i))
        .collect();
    let agent_of: Vec<Option<usize>> = instances
        .iter()
        .map(|i| by_id.get(i.agent_id.as_str()).copied())
        .collect();
    let value =
        |tally: &Tally, i: usize| agent_of[i].and_then(|a| fields.value(tally.constraint, a));
    let mut tallies = fields.tallies(constraints);
    for tally in &mut tallies {
        for i in 0..instances.len() {
            if let Some(v) = value(tally, i) {
                tally.add(v);
            }
        }
        tally.settle();
    }
    // What does not change as instances go: constraints the agent fails, and
    // being off the value a CLUSTER without value settled on.
    let misplaced: Vec<u32> = (0..instances.len())
        .map(|i| {
            let Some(agent) = agent_of[i] else { return 0 };
            let failed = (0..constraints.len())
                .filter(|&c| !fields.admits(c, agent))
                .count();
            let off_cluster = tallies
                .iter()
                .filter(|t| t.limit == Limit::Cluster && value(t, i) != t.cluster())
                .count();
            (failed + off_cluster) as u32
        })
        .collect();
    let urgency = |tallies: &[Tally], i: usize| {
        let instance = &instances[i];
        let excess: u32 = tallies
            .iter()
            .filter_map(|t| value(t, i).map(|v| t.excess(v)))
            .sum();
        let crowding = tallies
            .iter()
            .filter(|t| matches!(t.limit, Limit::GroupBy(_)))
            .map(|t| value(t, i).map_or(0, |v| t.count(v)))
            .collect::<Vec<u32>>();
        let time = instance.started_at.unwrap_or(instance.staged_at);
        Urgency {
            condition: Reverse(instance.condition()),
            misplaced: misplaced[i] + excess,
            crowding,
            age: TotalOrd(match kill_selection {
                KillSelection::YoungestFirst => time,
                KillSelection::OldestFirst => -time,
            }),
            task_id: Reverse(instance.task_id.as_str()),
        }
    };
    let mut heap: BinaryHeap<(Urgency, usize)> = (0..instances.len())
        .map(|i| (urgency(&tallies, i), i))
        .collect();
    let mut doomed = Vec::with_capacity(count.min(instances.len()));
    while doomed.len() < count {
        let Some((was, i)) = heap.pop() else { break };
        let now = urgency(&tallies, i);
        if now != was {
            heap.push((now, i));
            continue;
        }
        doomed.push(instances[i].task_id.clone());
        for tally in &mut tallies {
            if let Some(v) = value(tally, i) {
                tally.remove(v);
            }
        }
    }
    doomed
}

/// Greater goes first.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Urgency<'a> {
    condition: Reverse<u8>,
    misplaced: u32,
    crowding: Vec<u32>,
    age: TotalOrd,
    task_id: Reverse<&'a str>,
}
