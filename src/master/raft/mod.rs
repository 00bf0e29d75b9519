//! The consensus driver: one tokio task per master owns a raft-rs `RawNode` and
//! runs the Ready loop.
//!
//! ```text
//!  ticker ─┐
//!  inbox  ─┼─▶ step / tick / propose (drain everything waiting: a batch)
//!  API    ─┘        │
//!                   ▼
//!              Ready ─▶ messages to peers (leader: before the write)
//!                    ─▶ one durable write (storage): snapshot + entries + hard state
//!                    ─▶ persisted messages (follower votes and acks: after it)
//!                    ─▶ committed entries ─▶ Registry::apply, on a draft
//!                         ─▶ publish the draft (one Arc swap) ─▶ change bus
//!                                                           └▶ answer the proposer
//! ```
//!
//! Proposals carry an (origin, seq) pair; the node that proposed an entry answers
//! its caller when it applies it, so an acknowledged write is committed on a
//! quorum and applied here. A leader that loses its leadership fails what it had
//! pending (the client retries; a retry of the same write is harmless because
//! commands set values rather than add to them). Every `snapshot_every` entries
//! (and as many bytes of log as the last snapshot held) the registry is
//! snapshotted by a thread of its own and the log compacted (`compaction.rs`).

mod apply;
mod compaction;
mod handle;
mod log_file;
mod logger;
pub mod snapshot_file;
pub mod storage;
pub mod transport;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use raft::prelude::*;
use raft::{StateRole, Storage};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::command::{Command, EnvelopeRef, MembershipContext};
use super::registry::{Change, PublishedRegistry, Registry};
use crate::model::Member;
use handle::Request;
pub use handle::{Answer, ProposeError, RaftHandle, RaftOptions, RaftStatus};
#[cfg(test)]
pub use handle::{Proposals, scripted};
use storage::RaftStore;
use transport::Transport;

/// A Ready that takes longer is logged: near an election timeout, it costs
/// the leadership.
const SLOW_READY: Duration = Duration::from_millis(100);

/// How long a proposal may wait for its entry before the caller hears "timeout".
const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(10);

struct Pending {
    reply: oneshot::Sender<Result<(), ProposeError>>,
    since: Instant,
    /// The command proposed, applied from here when its entry commits
    /// (`apply.rs`); None for a membership change.
    command: Option<Command>,
}

pub struct Driver {
    raw: RawNode<RaftStore>,
    id: u64,
    origin: u64,
    seq: u64,
    pending: HashMap<u64, Pending>,
    registry: PublishedRegistry,
    changes: broadcast::Sender<Change>,
    transport: Transport,
    status: watch::Sender<RaftStatus>,
    options: RaftOptions,
    inbox: mpsc::Receiver<Message>,
    requests: mpsc::Receiver<Request>,
    snapshot_reports: mpsc::UnboundedReceiver<(u64, bool)>,
    metric_node: String,
    compaction: compaction::Compaction,
    /// This node led at the end of the last round.
    leading: bool,
}

/// Everything a driver needs, gathered by the node at start.
pub struct DriverParts {
    pub id: u64,
    pub store: RaftStore,
    pub registry: PublishedRegistry,
    pub changes: broadcast::Sender<Change>,
    pub transport: Transport,
    pub inbox: mpsc::Receiver<Message>,
    pub options: RaftOptions,
    /// Start an election at once instead of after an election timeout: safe
    /// (pre-vote keeps it from disturbing a sitting leader) and it saves a
    /// quarter second for a lone master or a `meso up` cluster starting together.
    pub campaign_now: bool,
    /// How each snapshot send went (see `transport::SnapshotReports`).
    pub snapshot_reports: mpsc::UnboundedReceiver<(u64, bool)>,
}

impl Driver {
    pub fn new(parts: DriverParts) -> anyhow::Result<(Self, RaftHandle)> {
        let DriverParts {
            id,
            store,
            registry,
            changes,
            transport,
            inbox,
            options,
            campaign_now,
            snapshot_reports,
        } = parts;
        // The registry starts from the snapshot; the log after it is replayed as
        // committed entries by the first Readys.
        let snapshot = store.read_snapshot()?;
        let restored = Registry::from_snapshot(snapshot.get_data()).map_err(|e| {
            anyhow::anyhow!(
                "store {} holds an unreadable snapshot: {e}",
                store.path().display()
            )
        })?;
        let applied = snapshot.get_metadata().index;
        let mut compaction = compaction::Compaction::default();
        compaction.last_snapshot_bytes = snapshot.get_data().len() as u64;
        for m in restored.members.values() {
            transport.set_peer(m.id, &m.raft_addr);
        }
        registry.publish(restored);

        let config = Config {
            id,
            election_tick: options.election_ticks,
            heartbeat_tick: options.heartbeat_ticks,
            applied,
            check_quorum: true,
            pre_vote: true,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("raft settings: {e}"))?;
        let mut raw = RawNode::new(&config, store, &logger::raft_logger(id))?;
        if campaign_now && raw.raft.promotable() {
            raw.campaign()?;
        }
        let (req_tx, req_rx) = mpsc::channel(4096);
        let (status_tx, status_rx) = watch::channel(RaftStatus {
            id,
            applied,
            ..Default::default()
        });
        let driver = Self {
            raw,
            id,
            origin: rand_u64(),
            seq: 0,
            pending: HashMap::new(),
            registry,
            changes,
            transport,
            status: status_tx,
            options,
            inbox,
            requests: req_rx,
            snapshot_reports,
            metric_node: id.to_string(),
            compaction,
            leading: false,
        };
        let handle = RaftHandle {
            requests: req_tx,
            status: status_rx,
        };
        Ok((driver, handle))
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.options.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sweep = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => { self.raw.tick(); }
                Some(msg) = self.inbox.recv() => self.step(msg),
                Some(req) = self.requests.recv() => self.handle(req),
                Some((peer, delivered)) = self.snapshot_reports.recv() => {
                    let status = if delivered { SnapshotStatus::Finish } else { SnapshotStatus::Failure };
                    self.raw.report_snapshot(peer, status);
                }
                Some(written) = self.compaction.finished() => {
                    // Entries applied meanwhile may make the next one due already.
                    if let Err(e) = self.snapshot_written(written).and_then(|()| self.maybe_compact()) {
                        tracing::error!(node = self.id, error = %format!("{e:#}"), "raft storage failed; stopping this master");
                        break;
                    }
                }
            }
            // Take everything else that is waiting, so one Ready (one fsync)
            // carries as many proposals and acks as possible.
            for _ in 0..4096 {
                if let Ok(msg) = self.inbox.try_recv() {
                    self.step(msg);
                } else if let Ok(req) = self.requests.try_recv() {
                    self.handle(req);
                } else {
                    break;
                }
            }
            if let Err(e) = self.on_ready() {
                // A failed disk write must not be acknowledged; stop this master
                // rather than diverge from what is on disk.
                tracing::error!(node = self.id, error = %format!("{e:#}"), "raft storage failed; stopping this master");
                break;
            }
            if !self.pending.is_empty() && last_sweep.elapsed() > Duration::from_secs(1) {
                last_sweep = Instant::now();
                self.expire_pending();
            }
        }
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(ProposeError::Stopped));
        }
        self.finish_snapshot();
        // A stopped driver leads nothing and sees no leader: health turns 503
        // and writes are refused, rather than answered from a frozen status.
        self.status.send_modify(|s| {
            s.leader = None;
            s.is_leader = false;
            s.caught_up = false;
        });
    }

    fn step(&mut self, msg: Message) {
        if let Err(e) = self.raw.step(msg) {
            tracing::debug!(node = self.id, error = %e, "raft step");
        }
    }

    fn handle(&mut self, req: Request) {
        if self.raw.raft.leader_id == raft::INVALID_ID {
            let reply = match req {
                Request::Propose(_, r) | Request::AddMember(_, r) | Request::RemoveMember(_, r) => {
                    r
                }
            };
            let _ = reply.send(Err(ProposeError::NoLeader));
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        let (result, reply, command) = match req {
            Request::Propose(command, reply) => {
                let envelope = EnvelopeRef {
                    origin: self.origin,
                    seq,
                    command: &command,
                };
                let data = serde_json::to_vec(&envelope).expect("commands serialize");
                (self.raw.propose(vec![], data), reply, Some(command))
            }
            Request::AddMember(member, reply) => {
                let cc = single_change(member.id, ConfChangeType::AddNode);
                let ctx = self.membership_context(seq, Some(member));
                (self.raw.propose_conf_change(ctx, cc), reply, None)
            }
            Request::RemoveMember(id, reply) => {
                let cc = single_change(id, ConfChangeType::RemoveNode);
                let ctx = self.membership_context(seq, None);
                (self.raw.propose_conf_change(ctx, cc), reply, None)
            }
        };
        match result {
            Ok(()) => {
                self.pending.insert(
                    seq,
                    Pending {
                        reply,
                        since: Instant::now(),
                        command,
                    },
                );
            }
            Err(e) => {
                let _ = reply.send(Err(ProposeError::Rejected(e.to_string())));
            }
        }
    }

    fn membership_context(&self, seq: u64, member: Option<Member>) -> Vec<u8> {
        serde_json::to_vec(&MembershipContext {
            origin: self.origin,
            seq,
            member,
        })
        .expect("membership context serializes")
    }

    /// Compared with the last round's end, not this round's start: a
    /// step-down mostly comes from a tick or a message (check-quorum, a
    /// higher term) between rounds. What was pending fails at once.
    fn notice_leadership(&mut self) {
        let leading = self.raw.raft.state == StateRole::Leader;
        if self.leading && !leading {
            tracing::warn!(
                node = self.id,
                term = self.raw.raft.term,
                "no longer the leader"
            );
            for (_, p) in self.pending.drain() {
                let _ = p.reply.send(Err(ProposeError::LeadershipLost));
            }
        }
        self.leading = leading;
    }

    fn on_ready(&mut self) -> anyhow::Result<()> {
        if !self.raw.has_ready() {
            self.notice_leadership();
            self.publish_status();
            return Ok(());
        }
        let started = Instant::now();
        let mut ready = self.raw.ready();
        self.transport.send(ready.take_messages());

        let snapshot = (!ready.snapshot().is_empty()).then(|| ready.snapshot().clone());
        if let Some(snap) = &snapshot {
            self.restore(snap)?;
        }
        let committed = ready.take_committed_entries();
        let hs = ready.hs().cloned();
        if ready.must_sync() {
            self.raw
                .mut_store()
                .persist(snapshot.as_ref(), ready.entries(), hs.as_ref())?;
        } else if let Some(hs) = &hs {
            // Only the commit index moved: it need not be durable (a restarted
            // node relearns it), so it rides along with the next real write
            // instead of costing an fsync on the path of every acknowledgement.
            self.raw.mut_store().set_commit(hs.commit);
        }
        // Acks go out once persisted, before this node applies: a follower's
        // apply is no part of the leader's commit.
        self.transport.send(ready.take_persisted_messages());
        let persisted = started.elapsed();
        let applied = committed.len();
        self.apply(committed)?;

        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit);
        }
        self.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();

        let took = started.elapsed();
        if took > SLOW_READY {
            tracing::warn!(
                node = self.id,
                ms = took.as_millis() as u64,
                persist_ms = persisted.as_millis() as u64,
                entries_applied = applied,
                "a Raft round took long: a slow disk, a starved thread or a large batch of entries"
            );
        }
        self.notice_leadership();
        self.maybe_compact()?;
        self.publish_status();
        Ok(())
    }

    fn expire_pending(&mut self) {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() > PROPOSAL_TIMEOUT)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            if let Some(p) = self.pending.remove(&seq) {
                let _ = p.reply.send(Err(ProposeError::Timeout(PROPOSAL_TIMEOUT)));
            }
        }
    }

    fn publish_status(&mut self) {
        let raft = &self.raw.raft;
        let leader = (raft.leader_id != raft::INVALID_ID).then_some(raft.leader_id);
        let is_leader = raft.state == StateRole::Leader;
        let commit = raft.raft_log.committed;
        let applied = raft.raft_log.applied;
        let term = raft.term;
        let caught_up = is_leader && raft.raft_log.term(applied).is_ok_and(|t| t == term);
        let voters: Vec<u64> = {
            let mut v: Vec<u64> = raft.prs().conf().voters().ids().iter().collect();
            v.sort_unstable();
            v
        };
        let removed =
            !voters.is_empty() && !voters.contains(&self.id) && self.raw.store().is_initialised();
        let node = self.metric_node.clone();
        self.status.send_if_modified(|s| {
            let mut changed = false;
            if s.leader != leader {
                s.leader = leader;
                if leader.is_some() {
                    s.leader_changes += 1;
                    metrics::counter!("meso_raft_leader_changes_total", "node" => node.clone())
                        .increment(1);
                }
                changed = true;
            }
            if s.is_leader != is_leader {
                s.is_leader = is_leader;
                s.elected_at = is_leader.then(SystemTime::now);
                changed = true;
            }
            if (s.term, s.caught_up) != (term, caught_up)
                || s.voters != voters
                || s.removed != removed
            {
                s.term = term;
                s.caught_up = caught_up;
                s.voters = voters;
                s.removed = removed;
                changed = true;
            }
            // Progress is kept current for every reader but wakes no
            // watcher: none waits for it, and each Raft round woke every
            // one of them (the scheduler, the DNS updater, the announcer)
            // to find nothing it reads had moved.
            s.commit = commit;
            s.applied = applied;
            changed
        });
        metrics::gauge!("meso_raft_term", "node" => node.clone()).set(term as f64);
        metrics::gauge!("meso_raft_commit_index", "node" => node.clone()).set(commit as f64);
        metrics::gauge!("meso_raft_applied_index", "node" => node.clone()).set(applied as f64);
        metrics::gauge!("meso_raft_is_leader", "node" => node).set(if is_leader {
            1.0
        } else {
            0.0
        });
    }
}

fn single_change(id: u64, ty: ConfChangeType) -> ConfChangeV2 {
    let mut single = ConfChangeSingle {
        node_id: id,
        ..Default::default()
    };
    single.set_change_type(ty);
    let mut cc = ConfChangeV2::default();
    cc.mut_changes().push(single);
    cc
}

fn rand_u64() -> u64 {
    let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
    hi ^ lo
}

/// The voters a store holds, for checking a `--peers` list against it.
pub fn stored_voters(store: &RaftStore) -> Vec<u64> {
    let mut v = store.conf_state().voters.clone();
    v.sort_unstable();
    v
}

/// True when the store has nothing yet (a new node).
pub fn is_new(store: &RaftStore) -> bool {
    !store.is_initialised() && store.last_index().unwrap_or(0) == 0
}
