//! The typed commands of the replicated log. Nothing writes registry state except
//! [`Registry::apply`](super::registry::Registry::apply) of one of these, in log
//! order, on every master. A feature adds a variant here and a match arm in the
//! registry; the consensus code never changes.
//!
//! Entries are JSON: readable in a debugger, and tolerant of fields added later
//! (`#[serde(default)]`) so a newer binary reads an older log.

mod decode;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use decode::{envelope, proposer};

use crate::model::{Member, Resources, TaskSpec, TaskState, TaskStatus, WeightInfo};
use crate::scheduler::state::MarathonCommand;

/// A variant or field attribute added here is added to `decode.rs`'s
/// `CommandFields` too (its tests fail to build until it is listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Command {
    /// First write of a new cluster's first leader: fixes the cluster's identity.
    InitCluster { cluster_id: String },
    /// A member says where it listens (after start, after a restart on new ports).
    AnnounceMember { member: Member },
    /// Mesos `UPDATE_WEIGHTS`: set the weight of each named role.
    UpdateWeights { weights: Vec<WeightInfo> },
    /// An agent subscribed: admit it (a new id) or re-admit it (its key is known).
    RegisterAgent {
        key: String,
        hostname: String,
        addr: String,
        resources: Resources,
        #[serde(default)]
        attributes: BTreeMap<String, String>,
        /// Seconds since the epoch, chosen by the proposer (apply reads no clock).
        time: f64,
        /// The tasks the agent runs or has news of: the registry reconciles its
        /// view of this agent's tasks with them.
        #[serde(default)]
        tasks: Vec<ReportedTask>,
    },
    /// The leader heard nothing from an agent for longer than its timeout.
    MarkAgentUnreachable { id: String, time: f64 },
    /// An operator says the agent will never come back: its tasks are GONE.
    MarkAgentGone { id: String, time: f64 },
    /// Reserve resources on agents and record tasks as STAGING; the leader
    /// then sends them to their agents. A task that does not fit is recorded
    /// as ended (TASK_ERROR or TASK_DROPPED) with the reason.
    LaunchTasks { tasks: Vec<TaskSpec>, time: f64 },
    /// Ask for a task's end; the leader sends KILL until the agent reports it
    /// ended. No longer proposed (one task's kill is a `KillTasks` of one);
    /// applied still, for the log entries written before.
    KillTask { task_id: String },
    /// Ask for the end of many tasks in one entry (a kill, a scale-down, a
    /// removed app).
    KillTasks { task_ids: Vec<String> },
    /// A change to the scheduler's apps, deployments or backoff.
    Marathon { command: MarathonCommand },
    /// Status updates from agents, applied in order; retried ones (same uuid)
    /// change nothing.
    UpdateTaskStatuses { statuses: Vec<TaskStatus> },
}

/// A task as an agent reports it when it subscribes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportedTask {
    pub task_id: String,
    pub state: TaskState,
}

/// What travels in a log entry: the command and who proposed it, so the proposer
/// (and only it) can answer the client that is waiting. Read with
/// [`envelope`], which reads the usual entry in one pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// A random number per driver incarnation, so a restarted node never mistakes
    /// an old entry for a proposal of its own.
    pub origin: u64,
    pub seq: u64,
    pub command: Command,
}

/// An [`Envelope`] to write, its command borrowed: the proposer keeps the
/// command and applies it when the entry commits, without reading the entry
/// back (`raft/apply.rs`). Written exactly as [`Envelope`] is.
#[derive(Serialize)]
pub struct EnvelopeRef<'a> {
    pub origin: u64,
    pub seq: u64,
    pub command: &'a Command,
}

/// The context of a membership change entry: who is added, or removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipContext {
    pub origin: u64,
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_as_tagged_json() {
        let cmd = Command::UpdateWeights {
            weights: vec![WeightInfo {
                role: "web".into(),
                weight: 2.0,
            }],
        };
        let text = serde_json::to_string(&cmd).unwrap();
        assert!(text.starts_with(r#"{"type":"UPDATE_WEIGHTS""#), "{text}");
        assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), cmd);
    }
}
