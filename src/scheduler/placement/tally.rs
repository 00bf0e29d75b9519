//! The bookkeeping behind constraints, shared by placing and killing: each
//! agent's field values interned once per call (a regex runs once per
//! distinct value, not once per agent), and per counting constraint the
//! instances on each value, kept as placements and kills happen, so no check
//! ever rescans the app's instances.

use std::collections::{BTreeMap, HashMap};

use super::constraints::{Constraint, Operator};
use super::view::AgentView;

/// Every agent's value of every constraint's field, as small ids.
pub(super) struct Fields {
    /// `[constraint][agent]`: the id of the agent's value, None without the field.
    value: Vec<Vec<Option<u32>>>,
    /// `[constraint]`: how many distinct values there are.
    distinct: Vec<usize>,
    /// `[constraint][value]`: whether the static part of the constraint admits it.
    static_ok: Vec<Vec<bool>>,
    /// `[constraint]`: whether an agent without the field passes (UNLIKE only).
    missing_ok: Vec<bool>,
}

impl Fields {
    pub(super) fn index(constraints: &[Constraint], agents: &[AgentView]) -> Self {
        let mut fields = Fields {
            value: Vec::with_capacity(constraints.len()),
            distinct: Vec::with_capacity(constraints.len()),
            static_ok: Vec::with_capacity(constraints.len()),
            missing_ok: Vec::with_capacity(constraints.len()),
        };
        for constraint in constraints {
            let mut ids: HashMap<&str, u32> = HashMap::new();
            let mut ok = Vec::new();
            let column = agents
                .iter()
                .map(|a| {
                    let text = constraint.field.value_of(&a.hostname, &a.attributes)?;
                    Some(*ids.entry(text).or_insert_with(|| {
                        ok.push(constraint.admits_value(Some(text)));
                        (ok.len() - 1) as u32
                    }))
                })
                .collect();
            fields.value.push(column);
            fields.distinct.push(ok.len());
            fields.static_ok.push(ok);
            fields.missing_ok.push(constraint.admits_value(None));
        }
        fields
    }

    pub(super) fn value(&self, constraint: usize, agent: usize) -> Option<u32> {
        self.value[constraint][agent]
    }

    pub(super) fn distinct_values(&self, constraint: usize) -> usize {
        self.distinct[constraint]
    }

    /// The static part of one constraint, for one agent.
    pub(super) fn admits(&self, constraint: usize, agent: usize) -> bool {
        match self.value[constraint][agent] {
            Some(v) => self.static_ok[constraint][v as usize],
            None => self.missing_ok[constraint],
        }
    }

    /// The static part of every constraint, for one agent.
    pub(super) fn admits_all(&self, agent: usize) -> bool {
        (0..self.value.len()).all(|c| self.admits(c, agent))
    }

    /// A tally for each constraint that counts instances, in declared order.
    pub(super) fn tallies(&self, constraints: &[Constraint]) -> Vec<Tally> {
        constraints
            .iter()
            .enumerate()
            .filter_map(|(c, constraint)| {
                let limit = match constraint.operator {
                    Operator::Unique => Limit::Unique,
                    Operator::MaxPer(n) => Limit::MaxPer(n),
                    Operator::GroupBy(n) => Limit::GroupBy(n.unwrap_or(0)),
                    Operator::Cluster(None) => Limit::Cluster,
                    _ => return None,
                };
                Some(Tally {
                    constraint: c,
                    limit,
                    counts: vec![0; self.distinct[c]],
                    hist: BTreeMap::new(),
                    cluster: None,
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    Unique,
    MaxPer(u32),
    /// The number of groups to expect (0: as many as there are).
    GroupBy(u32),
    /// CLUSTER without a value: the value is the one instances already use.
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Yes,
    /// Not now; another placement may change that (GROUP_BY's balance).
    NotNow,
    /// Not in this batch: counts only grow while placing.
    Never,
}

/// Instances per value of one counting constraint's field.
pub(super) struct Tally {
    /// Index of the constraint (and of its column in [`Fields`]).
    pub(super) constraint: usize,
    pub(super) limit: Limit,
    counts: Vec<u32>,
    /// How many values hold each non-zero count (GROUP_BY's smallest group).
    hist: BTreeMap<u32, u32>,
    cluster: Option<u32>,
}

impl Tally {
    pub(super) fn count(&self, value: u32) -> u32 {
        self.counts.get(value as usize).copied().unwrap_or(0)
    }

    pub(super) fn add(&mut self, value: u32) {
        let count = &mut self.counts[value as usize];
        bump(&mut self.hist, *count, *count + 1);
        *count += 1;
        self.cluster.get_or_insert(value);
    }

    pub(super) fn remove(&mut self, value: u32) {
        let count = &mut self.counts[value as usize];
        if *count > 0 {
            bump(&mut self.hist, *count, *count - 1);
            *count -= 1;
        }
    }

    /// After the existing instances are counted: CLUSTER without a value
    /// keeps to the value most of them are on (the lowest id on a tie, and
    /// ids follow the agents' order). Marathon takes its first instance's.
    pub(super) fn settle(&mut self) {
        if self.limit == Limit::Cluster {
            self.cluster = (0..self.counts.len() as u32)
                .filter(|v| self.counts[*v as usize] > 0)
                .max_by_key(|v| (self.counts[*v as usize], std::cmp::Reverse(*v)));
        }
    }

    /// The value CLUSTER without a value is bound to, once anything is placed.
    pub(super) fn cluster(&self) -> Option<u32> {
        self.cluster
    }

    /// May one more instance go on this value? As Marathon's `Constraints`:
    /// GROUP_BY takes a value with no instance yet, or, once at least the
    /// expected number of values hold instances, one of the least used ones.
    pub(super) fn admits(&self, value: u32) -> Verdict {
        let count = self.count(value);
        let ok = match self.limit {
            Limit::Unique => count == 0,
            Limit::MaxPer(n) => count < n,
            Limit::Cluster => self.cluster.is_none_or(|c| c == value),
            Limit::GroupBy(expected) => {
                let groups: u32 = self.hist.values().sum();
                let least = self.hist.keys().next().copied();
                return if count == 0 || (groups >= expected && Some(count) == least) {
                    Verdict::Yes
                } else {
                    Verdict::NotNow
                };
            }
        };
        if ok { Verdict::Yes } else { Verdict::Never }
    }

    /// Instances on this value beyond what UNIQUE or MAX_PER allow.
    pub(super) fn excess(&self, value: u32) -> u32 {
        let count = self.count(value);
        match self.limit {
            Limit::Unique => count.saturating_sub(1),
            Limit::MaxPer(n) => count.saturating_sub(n),
            Limit::GroupBy(_) | Limit::Cluster => 0,
        }
    }
}

/// Moves one value from count `from` to count `to` in the histogram of non-zero counts.
fn bump(hist: &mut BTreeMap<u32, u32>, from: u32, to: u32) {
    if from > 0
        && let Some(n) = hist.get_mut(&from)
    {
        *n -= 1;
        if *n == 0 {
            hist.remove(&from);
        }
    }
    if to > 0 {
        *hist.entry(to).or_insert(0) += 1;
    }
}
