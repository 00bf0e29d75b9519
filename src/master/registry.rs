//! The registry: the replicated state machine every master holds in memory.
//!
//! It is the single source of truth. [`Registry::apply`] is deterministic (no
//! clocks, no randomness: both travel inside commands), so every master that
//! applies the same log holds the same registry. Each apply returns the
//! [`Change`]s it made; the Raft driver publishes them on the event bus.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::Command;
use crate::model::{Member, WeightInfo};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Registry {
    /// Set once by the first leader; agent ids and framework ids derive from it.
    pub cluster_id: Option<String>,
    /// Members of the Raft group, by node id (the voters are in the Raft conf state;
    /// this holds their addresses).
    pub members: BTreeMap<u64, Member>,
    pub weights: BTreeMap<String, f64>,
    /// Index of the last entry applied, so a snapshot knows where it stands.
    pub applied_index: u64,
}

/// What an apply changed, published to every subscriber (scheduler, DNS, events).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    ClusterInitialized {
        cluster_id: String,
    },
    MemberChanged {
        id: u64,
    },
    MemberRemoved {
        id: u64,
    },
    WeightsUpdated {
        roles: Vec<String>,
    },
    /// The whole registry was replaced from a snapshot: rebuild every view.
    Restored,
}

impl Registry {
    pub fn apply(&mut self, index: u64, command: &Command) -> Vec<Change> {
        self.applied_index = index;
        match command {
            Command::InitCluster { cluster_id } => {
                // The first one wins; a second leader racing to initialise is a no-op.
                if self.cluster_id.is_some() {
                    return vec![];
                }
                self.cluster_id = Some(cluster_id.clone());
                vec![Change::ClusterInitialized {
                    cluster_id: cluster_id.clone(),
                }]
            }
            Command::AnnounceMember { member } => {
                if self.members.get(&member.id) == Some(member) {
                    return vec![];
                }
                self.members.insert(member.id, member.clone());
                vec![Change::MemberChanged { id: member.id }]
            }
            Command::UpdateWeights { weights } => {
                for WeightInfo { role, weight } in weights {
                    self.weights.insert(role.clone(), *weight);
                }
                vec![Change::WeightsUpdated {
                    roles: weights.iter().map(|w| w.role.clone()).collect(),
                }]
            }
        }
    }

    /// A membership change committed through Raft (not a [`Command`]: Raft's own
    /// conf-change entries carry it).
    pub fn apply_member_added(&mut self, index: u64, member: Member) -> Vec<Change> {
        self.applied_index = index;
        let id = member.id;
        self.members.insert(id, member);
        vec![Change::MemberChanged { id }]
    }

    pub fn apply_member_removed(&mut self, index: u64, id: u64) -> Vec<Change> {
        self.applied_index = index;
        self.members.remove(&id);
        vec![Change::MemberRemoved { id }]
    }

    pub fn weights(&self) -> Vec<WeightInfo> {
        self.weights
            .iter()
            .map(|(role, weight)| WeightInfo {
                role: role.clone(),
                weight: *weight,
            })
            .collect()
    }

    pub fn to_snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the registry serializes: it holds only plain data")
    }

    pub fn from_snapshot(data: &[u8]) -> Result<Self, serde_json::Error> {
        if data.is_empty() {
            // The bootstrap snapshot of a new cluster carries no data.
            return Ok(Self::default());
        }
        serde_json::from_slice(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(pairs: &[(&str, f64)]) -> Command {
        Command::UpdateWeights {
            weights: pairs
                .iter()
                .map(|(r, w)| WeightInfo {
                    role: r.to_string(),
                    weight: *w,
                })
                .collect(),
        }
    }

    #[test]
    fn same_log_same_registry() {
        let log = [
            Command::InitCluster {
                cluster_id: "c1".into(),
            },
            weights(&[("a", 1.0), ("b", 2.0)]),
            Command::InitCluster {
                cluster_id: "c2".into(),
            },
            weights(&[("a", 3.0)]),
        ];
        let mut one = Registry::default();
        let mut two = Registry::default();
        for (i, c) in log.iter().enumerate() {
            one.apply(i as u64 + 1, c);
            two.apply(i as u64 + 1, c);
        }
        assert_eq!(one, two);
        assert_eq!(one.cluster_id.as_deref(), Some("c1"), "first init wins");
        assert_eq!(one.weights.get("a"), Some(&3.0));
        assert_eq!(one.applied_index, 4);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut reg = Registry::default();
        reg.apply(7, &weights(&[("x", 0.5)]));
        let back = Registry::from_snapshot(&reg.to_snapshot()).unwrap();
        assert_eq!(back, reg);
        assert_eq!(Registry::from_snapshot(&[]).unwrap(), Registry::default());
    }

    #[test]
    fn announce_reports_only_real_changes() {
        let mut reg = Registry::default();
        let m = Member {
            id: 1,
            raft_addr: "127.0.0.1:1".into(),
            http_addr: None,
            hostname: None,
        };
        let cmd = Command::AnnounceMember { member: m };
        assert_eq!(reg.apply(1, &cmd).len(), 1);
        assert!(reg.apply(2, &cmd).is_empty());
    }
}
