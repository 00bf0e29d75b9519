use serde::{Deserialize, Serialize};

/// A master in the Raft group, as the registry knows it: where its peers reach it
/// for Raft traffic and where clients reach its HTTP API. Every member announces
/// itself through the log, so every node can name the leader's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub raft_addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}
