//! Placement: where the instances of a Marathon app go, and which go when it
//! shrinks. A pure library over plain data: it reads no registry state of its
//! own and writes none, so the reconcile loop decides, the registry's `fit`
//! re-checks on apply, and tests run in microseconds.
//!
//! ```text
//!  registry ─▶ AgentView::from_registry ─▶ views (free = total − live tasks' usage index)
//!  app JSON ─▶ Constraint::parse_all (app/ validation, 422 on error)
//!  reconcile: missing instances ─▶ place(views, demand, constraints, existing, n)
//!     per instance: walk candidates best-first
//!        active? ─▶ static constraints ─▶ counts (UNIQUE, MAX_PER, CLUSTER,
//!        GROUP_BY) ─▶ cpus ─▶ mem ─▶ disk ─▶ host ports
//!        first that passes: take it, consume its resources and ports, count it
//!     ─▶ Placement { chosen: agent + host ports, unplaced, reasons }
//!          chosen ─▶ TaskSpecs ─▶ Command::LaunchTasks ─▶ fit agrees
//!          reasons ─▶ /v2/queue rejectSummaryLastOffers (marathon_steps)
//!  reconcile: surplus instances ─▶ choose_to_kill ─▶ Master::kill_task
//! ```
//!
//! Decisions an integrator relies on:
//!
//! - **Spread, not bin-pack.** Among the agents that pass, the first GROUP_BY
//!   field's least used value comes first, then the agent with the fewest
//!   instances of this app, then the freest agent (free cpus share + free
//!   mem share, so neither unit drowns the other), then the agent's position
//!   in the views (`from_registry` gives them by agent id). Spread is
//!   Marathon's effective behaviour on a quiet cluster, keeps one agent's loss
//!   small, and is what a laptop cluster of one agent cannot get wrong.
//! - **Ports.** A 0 becomes the agent's first free port in the order of its
//!   ranges, exactly as `fit` resolves it. With `require_ports` the declared
//!   non-zero ports are the host ports and must be free. Without it Marathon
//!   treats them as *service* ports and assigns host ports; meso has no
//!   service-port router, so it does the same: every host port is assigned,
//!   and the declared numbers stay the app's service ports (for `servicePorts`
//!   in task JSON and the app's env), never bound on an agent. Launch the
//!   chosen tasks with the returned host ports filled in: `fit` then checks
//!   exactly those.
//! - **Constraints** follow Marathon's `Constraints` (see `constraints.rs`):
//!   an agent without the field passes only UNLIKE; GROUP_BY takes a value
//!   with no instance yet, or, once the expected number of values hold
//!   instances, one of the least used ones; CLUSTER without a value binds to
//!   the value most existing instances are on (Marathon: its first
//!   instance's). Existing instances on an agent without the field, or on an
//!   agent not among the views, count for no value.
//! - **Reasons** are one per agent, for the first instance that found no
//!   agent: the first failing check in Marathon's funnel order. Inactive
//!   agents are counted as `AgentInactive` but left out of Marathon's
//!   rendering, since Mesos would have made no offer from them.
//! - **Kills**: see `kill.rs`: broken instances first, then misplaced ones,
//!   then the most crowded GROUP_BY value, then `killSelection`.
//!
//! Cost: a call indexes the agents' field values once (a regex runs once per
//! distinct value) and builds the candidate heaps, one pass over the agents
//! (about 0.1-0.2 ms for 10,000 agents here); each placement then costs
//! O(log agents), an agent that fails for good leaving the candidates (see
//! `place.rs`): 10,000 instances on 10,000 agents place in a few ms. So place
//! an app's missing instances in one call, and reuse the views across the
//! apps of one reconcile round; many one-instance apps on a big cluster pay
//! the per-call pass each time (a persistent index would be the next step).
//! `choose_to_kill` groups instances alike in all but age, so a kill re-keys
//! one group: 5,000 kills out of 10,000 instances take milliseconds.

mod constraints;
mod kill;
mod place;
mod reject;
mod tally;
mod view;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;

pub use constraints::{Constraint, Field, Operator, Pattern};
pub use kill::{InstanceView, KillSelection, choose_to_kill};
pub use place::{Chosen, Demand, Placed, Placement, place};
pub use reject::{DeclinedStep, RejectReason, RejectSummary};
pub use view::AgentView;

/// An f64 ordered by `total_cmp`, to sit in ordered keys.
#[derive(Debug, Clone, Copy)]
struct TotalOrd(f64);

impl PartialEq for TotalOrd {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for TotalOrd {}

impl PartialOrd for TotalOrd {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TotalOrd {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
