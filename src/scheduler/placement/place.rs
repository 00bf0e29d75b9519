//! Choosing agents for a batch of new instances of one app, one instance at a
//! time, each choice updating the views and the constraint counts before the
//! next, so that UNIQUE, MAX_PER and GROUP_BY hold across the batch.
//!
//! The candidates are kept ordered, not rescanned: agents sit in lanes (one
//! lane per value of the app's first GROUP_BY field; a single lane without
//! one), each lane a heap by the spread rank, the lanes ordered by
//! (instances on the lane's value, rank of the lane's best agent). A pick
//! walks lanes and agents from the best; an agent that fails for good in this
//! batch (inactive, a static constraint, UNIQUE, MAX_PER, CLUSTER, too small:
//! counts only grow and resources only shrink while placing) leaves its lane,
//! so each agent is turned down at most once per batch and a placement costs
//! O(log agents) in the common case. Only GROUP_BY's balance can turn an agent
//! down for now and not for good; it is checked per lane. Building the lanes
//! is one pass over the agents (heaps build in linear time).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::ops::Bound::{Excluded, Unbounded};

use super::TotalOrd;
use super::constraints::Constraint;
use super::reject::{RejectReason, RejectSummary};
use super::tally::{Fields, Limit, Tally, Verdict};
use super::view::AgentView;
use crate::master::registry::milli;

/// Slack for float sums of cpus and mem: the registry's `fit` allows the same.
const EPSILON: f64 = 1e-9;

/// A demand as the registry's fit counts it: rounded to thousandths, as
/// Mesos rounds scalars (`registry::milli`), so a placement made here is one
/// the registry accepts.
fn in_thousandths(x: f64) -> f64 {
    milli(x) as f64 / 1000.0
}

/// What one instance needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    /// The app's ports in order (`portDefinitions[].port`, or the host ports
    /// of BRIDGE port mappings); 0 asks for any free port.
    pub ports: Vec<u16>,
    /// Marathon's `requirePorts`: non-zero ports are the host ports. Without
    /// it they are service ports, and every host port is assigned.
    pub require_ports: bool,
}

impl Demand {
    /// The host ports to ask of an agent: the declared ones with
    /// `require_ports`, else a 0 (any) for each.
    fn host_ports(&self) -> Vec<u16> {
        if self.require_ports {
            self.ports.clone()
        } else {
            vec![0; self.ports.len()]
        }
    }
}

/// Where one of the app's live instances runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub agent_id: String,
}

/// One new instance: its agent and its host ports, in the order of [`Demand::ports`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub agent_id: String,
    pub host_ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// In the order chosen (launch them in this order, or with these host
    /// ports fixed, for the registry to resolve the same ports).
    pub chosen: Vec<Chosen>,
    /// Instances no agent could take.
    pub unplaced: usize,
    /// When some were unplaced: why each agent turned the first of them down.
    /// Empty when all were placed.
    pub reasons: RejectSummary,
}

/// Chooses agents for `count` new instances and consumes their resources and
/// ports in `agents`, so the same views can serve the next app of a round.
/// `existing` are the app's live instances (those on agents not in `agents`
/// count for nothing). `constraints` come from [`Constraint::parse_all`].
pub fn place(
    agents: &mut [AgentView],
    demand: &Demand,
    constraints: &[Constraint],
    existing: &[Placed],
    count: usize,
) -> Placement {
    if count == 0 {
        return Placement {
            chosen: Vec::new(),
            unplaced: 0,
            reasons: RejectSummary::default(),
        };
    }
    let mut batch = Batch::new(agents, demand, constraints, existing);
    let mut chosen = Vec::with_capacity(count);
    for placed in 0..count {
        let Some((idx, host_ports)) = batch.pick() else {
            return Placement {
                chosen,
                unplaced: count - placed,
                reasons: batch.why_not(),
            };
        };
        batch.commit(idx, &host_ports);
        chosen.push(Chosen {
            agent_id: batch.agents[idx].id.to_string(),
            host_ports,
        });
    }
    Placement {
        chosen,
        unplaced: 0,
        reasons: RejectSummary::default(),
    }
}

/// Spread: fewer instances of the app on the agent first, then the freer
/// agent, then the agent's position in the views (by agent id from the registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    on_agent: u32,
    /// Minus the agent's free share: smaller is freer.
    fullness: TotalOrd,
    idx: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct LaneKey {
    /// Instances on the lane's GROUP_BY value (0 without GROUP_BY).
    count: u32,
    best: Rank,
    lane: u32,
}

struct Reject {
    reason: RejectReason,
    /// True when nothing later in this batch can change the verdict.
    for_good: bool,
}

impl Reject {
    fn for_good(reason: RejectReason) -> Self {
        Self {
            reason,
            for_good: true,
        }
    }
}

struct Batch<'a, 'r> {
    agents: &'a mut [AgentView<'r>],
    demand: &'a Demand,
    host_ports: Vec<u16>,
    fields: Fields,
    /// Per agent: passes every constraint's static part.
    admitted: Vec<bool>,
    tallies: Vec<Tally>,
    /// The tally of the first GROUP_BY, whose values are the lanes.
    lane_tally: Option<usize>,
    on_agent: Vec<u32>,
    /// Per lane, its agents, best first.
    lanes: Vec<BinaryHeap<Reverse<Rank>>>,
    lane_key: Vec<Option<LaneKey>>,
    order: BTreeSet<LaneKey>,
}

impl<'a, 'r> Batch<'a, 'r> {
    fn new(
        agents: &'a mut [AgentView<'r>],
        demand: &'a Demand,
        constraints: &[Constraint],
        existing: &[Placed],
    ) -> Self {
        let fields = Fields::index(constraints, agents);
        let admitted = (0..agents.len()).map(|i| fields.admits_all(i)).collect();
        let mut tallies = fields.tallies(constraints);
        let mut on_agent = vec![0u32; agents.len()];
        let by_id: HashMap<&str, usize> = if existing.is_empty() {
            HashMap::new()
        } else {
            agents
                .iter()
                .enumerate()
                .map(|(i, a)| (&*a.id, i))
                .collect()
        };
        for placed in existing {
            let Some(&idx) = by_id.get(placed.agent_id.as_str()) else {
                continue;
            };
            on_agent[idx] += 1;
            for tally in &mut tallies {
                if let Some(v) = fields.value(tally.constraint, idx) {
                    tally.add(v);
                }
            }
        }
        drop(by_id);
        tallies.iter_mut().for_each(Tally::settle);
        let lane_tally = tallies
            .iter()
            .position(|t| matches!(t.limit, Limit::GroupBy(_)));
        let lane_count = lane_tally.map_or(1, |t| fields.distinct_values(tallies[t].constraint));
        let mut batch = Batch {
            agents,
            demand,
            host_ports: demand.host_ports(),
            fields,
            admitted,
            tallies,
            lane_tally,
            on_agent,
            lanes: vec![BinaryHeap::new(); lane_count],
            lane_key: vec![None; lane_count],
            order: BTreeSet::new(),
        };
        let mut members: Vec<Vec<Reverse<Rank>>> = vec![Vec::new(); lane_count];
        for idx in 0..batch.agents.len() {
            let hopeless = matches!(batch.check(idx), Err(Reject { for_good: true, .. }));
            if let (false, Some(lane)) = (hopeless, batch.lane_of(idx)) {
                members[lane].push(Reverse(batch.rank(idx)));
            }
        }
        for (lane, ranks) in members.into_iter().enumerate() {
            batch.lanes[lane] = BinaryHeap::from(ranks);
            batch.refresh_lane(lane, None);
        }
        batch
    }

    fn lane_of(&self, idx: usize) -> Option<usize> {
        match self.lane_tally {
            None => Some(0),
            Some(t) => self
                .fields
                .value(self.tallies[t].constraint, idx)
                .map(|v| v as usize),
        }
    }

    fn rank(&self, idx: usize) -> Rank {
        Rank {
            on_agent: self.on_agent[idx],
            fullness: TotalOrd(-self.agents[idx].free_share()),
            idx: idx as u32,
        }
    }

    /// Can agent `idx` take one more instance now? The checks run in
    /// Marathon's funnel order, so the error is the reason it reports.
    fn check(&self, idx: usize) -> Result<(), Reject> {
        let agent = &self.agents[idx];
        if !agent.active {
            return Err(Reject::for_good(RejectReason::AgentInactive));
        }
        if !self.admitted[idx] {
            return Err(Reject::for_good(RejectReason::UnfulfilledConstraint));
        }
        for tally in &self.tallies {
            let verdict = self
                .fields
                .value(tally.constraint, idx)
                .map_or(Verdict::Never, |v| tally.admits(v));
            if verdict != Verdict::Yes {
                return Err(Reject {
                    reason: RejectReason::UnfulfilledConstraint,
                    for_good: verdict == Verdict::Never,
                });
            }
        }
        let d = self.demand;
        for (want, free, reason) in [
            (d.cpus, agent.free.cpus, RejectReason::InsufficientCpus),
            (d.mem, agent.free.mem, RejectReason::InsufficientMemory),
            (d.disk, agent.free.disk, RejectReason::InsufficientDisk),
        ] {
            if in_thousandths(want) > free + EPSILON {
                return Err(Reject::for_good(reason));
            }
        }
        if agent.ports_fit(&self.host_ports) {
            Ok(())
        } else {
            Err(Reject::for_good(RejectReason::InsufficientPorts))
        }
    }

    /// The best agent that can take one more instance, and its host ports.
    fn pick(&mut self) -> Option<(usize, Vec<u16>)> {
        'walk: loop {
            let mut after: Option<LaneKey> = None;
            loop {
                let key = match after {
                    None => self.order.first(),
                    Some(k) => self.order.range((Excluded(k), Unbounded)).next(),
                };
                let key = *key?;
                after = Some(key);
                let lane = key.lane as usize;
                if let Some(t) = self.lane_tally
                    && self.tallies[t].admits(key.lane) != Verdict::Yes
                {
                    continue;
                }
                let mut dropped = false;
                let mut aside = Vec::new();
                let mut found = None;
                while let Some(Reverse(rank)) = self.lanes[lane].pop() {
                    let idx = rank.idx as usize;
                    let ports = self.check(idx).and_then(|()| {
                        self.agents[idx]
                            .resolve_ports(&self.host_ports)
                            .ok_or(Reject::for_good(RejectReason::InsufficientPorts))
                    });
                    match ports {
                        Ok(ports) => {
                            found = Some((rank, ports));
                            break;
                        }
                        Err(Reject { for_good: true, .. }) => dropped = true,
                        Err(_) => aside.push(Reverse(rank)),
                    }
                }
                self.lanes[lane].extend(aside);
                let held = found.as_ref().map(|(rank, _)| *rank);
                let moved = dropped && self.refresh_lane(lane, held);
                match found {
                    // The lane's best got worse: a lane passed over may now come first.
                    Some((rank, _)) if moved => {
                        self.lanes[lane].push(Reverse(rank));
                        continue 'walk;
                    }
                    // Out of its lane until `commit` puts it back re-ranked.
                    Some((rank, ports)) => return Some((rank.idx as usize, ports)),
                    None => {}
                }
            }
        }
    }

    /// Agent `idx`, just taken out of its lane by `pick`, takes one instance
    /// with these host ports and goes back to its lane re-ranked.
    fn commit(&mut self, idx: usize, host_ports: &[u16]) {
        let agent = &mut self.agents[idx];
        agent.free.cpus -= in_thousandths(self.demand.cpus);
        agent.free.mem -= in_thousandths(self.demand.mem);
        agent.free.disk -= in_thousandths(self.demand.disk);
        agent.take_ports(host_ports);
        self.on_agent[idx] += 1;
        for tally in &mut self.tallies {
            if let Some(v) = self.fields.value(tally.constraint, idx) {
                tally.add(v);
            }
        }
        if let Some(lane) = self.lane_of(idx) {
            let rank = self.rank(idx);
            self.lanes[lane].push(Reverse(rank));
            self.refresh_lane(lane, None);
        }
    }

    /// Re-keys a lane after its count or members changed, counting `held`
    /// (taken out by `pick`) as a member; true if its key moved.
    fn refresh_lane(&mut self, lane: usize, held: Option<Rank>) -> bool {
        let count = self
            .lane_tally
            .map_or(0, |t| self.tallies[t].count(lane as u32));
        let best = self.lanes[lane]
            .peek()
            .map(|r| r.0)
            .into_iter()
            .chain(held)
            .min();
        let new = best.map(|best| LaneKey {
            count,
            best,
            lane: lane as u32,
        });
        let old = self.lane_key[lane];
        if old == new {
            return false;
        }
        if let Some(old) = old {
            self.order.remove(&old);
        }
        if let Some(new) = new {
            self.order.insert(new);
        }
        self.lane_key[lane] = new;
        true
    }

    /// Why each agent turns the next instance down (after a pick found none).
    fn why_not(&self) -> RejectSummary {
        let mut summary = RejectSummary::default();
        for idx in 0..self.agents.len() {
            if let Err(reject) = self.check(idx) {
                summary.add(reject.reason);
            }
        }
        summary
    }
}
