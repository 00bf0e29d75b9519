//! Why agents turned an instance down, counted one reason per agent, and
//! rendered as Marathon's `/v2/queue` `rejectSummaryLastOffers`.
//!
//! Marathon takes one reason per declined offer, the first in its funnel, and
//! renders the funnel as `{reason, declined, processed}` steps where each
//! step processes what the steps before it let through. An agent here plays
//! the part of an offer; the checks run in the funnel's order (constraints,
//! then cpus, mem, disk, ports), so the first failing check is the reason.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Unreachable or gone. Mesos makes no offers from such an agent, so
    /// Marathon's funnel never sees it; [`RejectSummary::marathon_steps`] leaves it out.
    AgentInactive,
    UnfulfilledConstraint,
    InsufficientCpus,
    InsufficientMemory,
    InsufficientDisk,
    InsufficientPorts,
}

impl RejectReason {
    const ALL: [RejectReason; 6] = [
        Self::AgentInactive,
        Self::UnfulfilledConstraint,
        Self::InsufficientCpus,
        Self::InsufficientMemory,
        Self::InsufficientDisk,
        Self::InsufficientPorts,
    ];

    /// Marathon's spelling (`NoOfferMatchReason`), ours for `AgentInactive`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AgentInactive => "AgentInactive",
            Self::UnfulfilledConstraint => "UnfulfilledConstraint",
            Self::InsufficientCpus => "InsufficientCpus",
            Self::InsufficientMemory => "InsufficientMemory",
            Self::InsufficientDisk => "InsufficientDisk",
            Self::InsufficientPorts => "InsufficientPorts",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Marathon 1.10's reason funnel, in its order: the reasons it can report,
/// most of which (roles, reservations, maintenance, GPUs, scarce resources)
/// meso never produces and reports as 0.
const MARATHON_FUNNEL: [&str; 10] = [
    "UnfulfilledRole",
    "UnfulfilledConstraint",
    "NoCorrespondingReservationFound",
    "AgentMaintenance",
    "InsufficientCpus",
    "InsufficientMemory",
    "InsufficientDisk",
    "InsufficientGpus",
    "InsufficientPorts",
    "DeclinedScarceResources",
];

/// One step of Marathon's funnel: of `processed` offers, `declined` fell here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclinedStep {
    pub reason: &'static str,
    pub declined: usize,
    pub processed: usize,
}

/// How many agents turned an instance down, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectSummary {
    counts: [usize; RejectReason::ALL.len()],
}

impl RejectSummary {
    pub fn add(&mut self, reason: RejectReason) {
        self.counts[reason.index()] += 1;
    }

    pub fn count(&self, reason: RejectReason) -> usize {
        self.counts[reason.index()]
    }

    /// Agents counted, whatever their reason.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// The reasons with a count, in funnel order.
    pub fn reasons(&self) -> impl Iterator<Item = (RejectReason, usize)> + '_ {
        RejectReason::ALL
            .into_iter()
            .map(|r| (r, self.count(r)))
            .filter(|(_, n)| *n > 0)
    }

    /// `rejectSummaryLastOffers` as Marathon renders it: every reason of its
    /// funnel, in order, the first processing every active agent.
    pub fn marathon_steps(&self) -> Vec<DeclinedStep> {
        let mut processed = self.total() - self.count(RejectReason::AgentInactive);
        MARATHON_FUNNEL
            .iter()
            .map(|&reason| {
                let declined = RejectReason::ALL
                    .into_iter()
                    .find(|r| r.name() == reason)
                    .map_or(0, |r| self.count(r));
                let step = DeclinedStep {
                    reason,
                    declined,
                    processed,
                };
                processed -= declined;
                step
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marathon_steps_funnel_active_agents() {
        let mut s = RejectSummary::default();
        for r in [
            RejectReason::AgentInactive,
            RejectReason::UnfulfilledConstraint,
            RejectReason::UnfulfilledConstraint,
            RejectReason::InsufficientMemory,
            RejectReason::InsufficientPorts,
        ] {
            s.add(r);
        }
        let steps = s.marathon_steps();
        let names: Vec<&str> = steps.iter().map(|s| s.reason).collect();
        assert_eq!(names, MARATHON_FUNNEL);
        let by = |name: &str| {
            let step = steps.iter().find(|s| s.reason == name).unwrap();
            (step.declined, step.processed)
        };
        assert_eq!(
            by("UnfulfilledRole"),
            (0, 4),
            "the inactive agent made no offer"
        );
        assert_eq!(by("UnfulfilledConstraint"), (2, 4));
        assert_eq!(by("InsufficientCpus"), (0, 2));
        assert_eq!(by("InsufficientMemory"), (1, 2));
        assert_eq!(by("InsufficientPorts"), (1, 1));
        assert_eq!(by("DeclinedScarceResources"), (0, 0));
        assert_eq!(
            serde_json::to_value(&steps[1]).unwrap(),
            serde_json::json!({"reason": "UnfulfilledConstraint", "declined": 2, "processed": 4})
        );
        let listed: Vec<_> = s.reasons().collect();
        assert_eq!(listed[0], (RejectReason::AgentInactive, 1));
        assert_eq!(s.total(), 5);
    }
}
