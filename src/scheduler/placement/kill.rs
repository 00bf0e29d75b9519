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
//! from a heap of buckets (instances alike in all but age), whose keys only
//! ever lose urgency as counts fall: a popped key that went stale is pushed
//! back with its new value.

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
        .map(|(i, a)| (&*a.id, i))
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
    // Instances alike in condition, misplacement and counted values share
    // every count that changes: one bucket each, its members in
    // killSelection order, so a kill re-keys one bucket, not its members.
    let mut by_kind: HashMap<(u8, u32, Vec<Option<u32>>), usize> = HashMap::new();
    let mut buckets: Vec<Bucket> = Vec::new();
    for i in 0..instances.len() {
        let values: Vec<Option<u32>> = tallies.iter().map(|t| value(t, i)).collect();
        let kind = (instances[i].condition(), misplaced[i], values);
        let b = *by_kind.entry(kind.clone()).or_insert_with(|| {
            buckets.push(Bucket {
                condition: kind.0,
                misplaced: kind.1,
                values: kind.2,
                members: Vec::new(),
            });
            buckets.len() - 1
        });
        buckets[b].members.push(i);
    }
    let age = |i: usize| {
        let time = instances[i].started_at.unwrap_or(instances[i].staged_at);
        TotalOrd(match kill_selection {
            KillSelection::YoungestFirst => time,
            KillSelection::OldestFirst => -time,
        })
    };
    for bucket in &mut buckets {
        // Popped from the end: the most urgent last.
        bucket.members.sort_by(|&a, &b| {
            (age(a), Reverse(instances[a].task_id.as_str()))
                .cmp(&(age(b), Reverse(instances[b].task_id.as_str())))
        });
    }
    let urgency = |tallies: &[Tally], bucket: &Bucket| {
        let &i = bucket.members.last()?;
        let counted = || tallies.iter().zip(&bucket.values);
        Some(Urgency {
            condition: Reverse(bucket.condition),
            misplaced: bucket.misplaced
                + counted()
                    .filter_map(|(t, v)| v.map(|v| t.excess(v)))
                    .sum::<u32>(),
            crowding: counted()
                .filter(|(t, _)| matches!(t.limit, Limit::GroupBy(_)))
                .map(|(t, v)| v.map_or(0, |v| t.count(v)))
                .collect(),
            age: age(i),
            task_id: Reverse(instances[i].task_id.as_str()),
        })
    };
    let mut heap: BinaryHeap<(Urgency, usize)> = buckets
        .iter()
        .enumerate()
        .filter_map(|(b, bucket)| Some((urgency(&tallies, bucket)?, b)))
        .collect();
    let mut doomed = Vec::with_capacity(count.min(instances.len()));
    while doomed.len() < count {
        let Some((was, b)) = heap.pop() else { break };
        let bucket = &mut buckets[b];
        let now = urgency(&tallies, bucket);
        if now.as_ref() != Some(&was) {
            heap.extend(now.map(|u| (u, b)));
            continue;
        }
        let Some(i) = bucket.members.pop() else {
            continue;
        };
        doomed.push(instances[i].task_id.clone());
        for (tally, v) in tallies.iter_mut().zip(&bucket.values) {
            if let Some(v) = v {
                tally.remove(*v);
            }
        }
        heap.extend(urgency(&tallies, &buckets[b]).map(|u| (u, b)));
    }
    doomed
}

/// Instances that share condition, misplacement and counted values.
struct Bucket {
    condition: u8,
    misplaced: u32,
    /// Per tally, the value the bucket's instances are on.
    values: Vec<Option<u32>>,
    /// In killSelection order, the most urgent last.
    members: Vec<usize>,
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
