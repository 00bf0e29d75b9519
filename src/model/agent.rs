use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Resources;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentState {
    Active,
    /// Silent past the master's timeout; its tasks are TASK_UNREACHABLE.
    Unreachable,
    /// Marked gone by an operator: never admitted again; its tasks are TASK_GONE.
    Gone,
}

/// An agent as the registry knows it. The id has Mesos's form
/// `<cluster-id>-S<n>`; `key` is the agent's own identity (kept in its work
/// dir), so an agent that restarts gets its id back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: String,
    pub key: String,
    pub hostname: String,
    /// Where the agent's HTTP API listens (`host:port`).
    pub addr: String,
    pub resources: Resources,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub state: AgentState,
    /// Seconds since the epoch, as Mesos's `registered_time`.
    pub registered_time: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reregistered_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_time: Option<f64>,
}
