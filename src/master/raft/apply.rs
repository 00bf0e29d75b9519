//! Applying what Raft committed: normal entries to one draft of the
//! registry per round, published once (an `Arc` swap, see
//! `registry::published`); membership changes to raft-rs and the registry;
//! a leader's snapshot in place of the registry. Then the changes go out on
//! the bus, then the proposers hear back: what they read next holds their
//! write.

use protobuf::Message as _;
use raft::prelude::*;

use super::Driver;
use super::single_change;
use crate::master::command::{Envelope, MembershipContext};
use crate::master::raft::ProposeError;
use crate::master::registry::{Change, Registry};

impl Driver {
    pub(super) fn restore(&mut self, snap: &Snapshot) -> anyhow::Result<()> {
        let registry = Registry::from_snapshot(snap.get_data())
            .map_err(|e| anyhow::anyhow!("snapshot from the leader is unreadable: {e}"))?;
        for m in registry.members.values() {
            self.transport.set_peer(m.id, &m.raft_addr);
        }
        self.registry.publish(registry);
        self.compaction.last_snapshot_bytes = snap.get_data().len() as u64;
        self.compaction.log_bytes = 0;
        let _ = self.changes.send(Change::Restored);
        Ok(())
    }

    /// Applies a round's committed entries. Normal entries go to one draft
    /// of the registry, published once (see `registry::published`); changes
    /// go out on the bus and proposers hear back after it is, so what they
    /// read next already holds their write.
    pub(super) fn apply(&mut self, entries: Vec<Entry>) -> anyhow::Result<()> {
        let mut draft = None;
        let mut applied = Applied::default();
        for entry in entries {
            let index = entry.index;
            match entry.get_entry_type() {
                EntryType::EntryNormal => {
                    self.compaction.log_bytes += entry.data.len() as u64;
                    let registry = draft.get_or_insert_with(|| self.registry.draft());
                    self.apply_command(registry, index, &entry.data, &mut applied);
                }
                EntryType::EntryConfChange => {
                    self.publish(draft.take(), std::mem::take(&mut applied));
                    let cc = ConfChange::parse_from_bytes(&entry.data)?;
                    self.apply_conf_change(
                        index,
                        single_change(cc.node_id, cc.get_change_type()),
                        &entry.context,
                    )?;
                }
                EntryType::EntryConfChangeV2 => {
                    self.publish(draft.take(), std::mem::take(&mut applied));
                    let cc = ConfChangeV2::parse_from_bytes(&entry.data)?;
                    self.apply_conf_change(index, cc, &entry.context)?;
                }
            }
        }
        self.publish(draft, applied);
        Ok(())
    }

    pub(super) fn apply_command(
        &mut self,
        registry: &mut Registry,
        index: u64,
        data: &[u8],
        applied: &mut Applied,
    ) {
        if data.is_empty() {
            // A new leader's empty entry: nothing to apply.
            registry.applied_index = index;
            return;
        }
        let envelope = match self.own_proposal(data) {
            Some(own) => own,
            None => match crate::master::command::envelope(data) {
                Ok(e) => e,
                Err(e) => {
                    // Every master skips the same unreadable entry, so they stay equal.
                    tracing::error!(node = self.id, index, error = %e, "skipping an unreadable log entry");
                    registry.applied_index = index;
                    return;
                }
            },
        };
        let changes = registry.apply_owned(index, envelope.command);
        for c in &changes {
            if let Change::MemberChanged { id } = c
                && let Some(m) = registry.members.get(id)
            {
                self.transport.set_peer(*id, &m.raft_addr);
            }
        }
        applied.changes.extend(changes);
        applied.answers.push((envelope.origin, envelope.seq));
    }

    /// An entry this driver proposed, with the command it kept: the
    /// proposer applies that rather than read back what it wrote, which was
    /// a twentieth of a leader's CPU at 10,000 agents. What the other
    /// masters read from the entry is the same command: every variant is
    /// checked to read back equal (`command/decode.rs`).
    fn own_proposal(&mut self, data: &[u8]) -> Option<Envelope> {
        let (origin, seq) = crate::master::command::proposer(data)?;
        if origin != self.origin {
            return None;
        }
        let command = self.pending.get_mut(&seq)?.command.take()?;
        Some(Envelope {
            origin,
            seq,
            command,
        })
    }

    /// Publishes a run of applies: the registry they made, then their
    /// changes on the bus, then the proposers' answers.
    pub(super) fn publish(&mut self, draft: Option<Registry>, applied: Applied) {
        if let Some(registry) = draft {
            self.registry.publish(registry);
        }
        for c in applied.changes {
            let _ = self.changes.send(c);
        }
        for (origin, seq) in applied.answers {
            self.answer(origin, seq);
        }
    }

    pub(super) fn apply_conf_change(
        &mut self,
        index: u64,
        cc: ConfChangeV2,
        context: &[u8],
    ) -> anyhow::Result<()> {
        let ctx: Option<MembershipContext> = serde_json::from_slice(context).ok();
        let cs = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => cs,
            Err(e) => {
                tracing::warn!(node = self.id, index, error = %e, "membership change refused");
                if let Some(ctx) = &ctx {
                    self.answer_with(
                        ctx.origin,
                        ctx.seq,
                        Err(ProposeError::Rejected(e.to_string())),
                    );
                }
                return Ok(());
            }
        };
        self.raw.mut_store().set_conf_state(cs)?;
        let mut changes = Vec::new();
        let mut registry = self.registry.draft();
        for single in cc.get_changes() {
            let id = single.node_id;
            match single.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    self.compaction.due = true;
                    let member = ctx
                        .as_ref()
                        .and_then(|c| c.member.clone())
                        .filter(|m| m.id == id);
                    if let Some(member) = member {
                        self.transport.set_peer(id, &member.raft_addr);
                        changes.extend(registry.apply_member_added(index, member));
                    }
                }
                ConfChangeType::RemoveNode => {
                    self.transport.remove_peer(id);
                    changes.extend(registry.apply_member_removed(index, id));
                }
            }
        }
        registry.applied_index = index;
        let answers = ctx.map(|c| (c.origin, c.seq)).into_iter().collect();
        self.publish(Some(registry), Applied { changes, answers });
        Ok(())
    }

    pub(super) fn answer(&mut self, origin: u64, seq: u64) {
        self.answer_with(origin, seq, Ok(()));
    }

    pub(super) fn answer_with(&mut self, origin: u64, seq: u64, result: Result<(), ProposeError>) {
        if origin != self.origin {
            return;
        }
        if let Some(p) = self.pending.remove(&seq) {
            metrics::histogram!("meso_raft_proposal_duration_seconds", "node" => self.metric_node.clone())
                .record(p.since.elapsed().as_secs_f64());
            let _ = p.reply.send(result);
        }
    }
}

/// What applying a run of normal entries produced, sent once the draft it
/// made is published.
#[derive(Default)]
pub(super) struct Applied {
    changes: Vec<Change>,
    /// (origin, seq) of each applied proposal.
    answers: Vec<(u64, u64)>,
}
