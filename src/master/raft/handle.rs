//! What the rest of the node sees of consensus: the handle to propose through,
//! the status it publishes after every Ready, and the errors a proposal can meet.

use std::time::{Duration, SystemTime};

use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

use crate::master::command::Command;
use crate::model::Member;

/// Timing and compaction knobs (see `raft:` in the config schema).
#[derive(Debug, Clone)]
pub struct RaftOptions {
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    pub snapshot_every: u64,
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ProposeError {
    #[error("no leader elected")]
    NoLeader,
    #[error("leadership changed before the write committed; retry")]
    LeadershipLost,
    #[error("the write did not commit within {0:?}")]
    Timeout(Duration),
    #[error("rejected by raft: {0}")]
    Rejected(String),
    #[error("this master is shutting down")]
    Stopped,
}

/// What the rest of the node sees of consensus, republished after every Ready.
/// Watchers wake when the leadership, the term, `caught_up` or the voters
/// change; `commit` and `applied` are current when read, and wake nobody.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaftStatus {
    pub id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub is_leader: bool,
    /// Leads, and has applied an entry of its own term: its registry holds
    /// every write committed before it was elected. A new leader learns the
    /// old term's last commits only when its first entry commits, so a
    /// decision made from its registry before then may rest on a stale view.
    pub caught_up: bool,
    pub commit: u64,
    pub applied: u64,
    pub voters: Vec<u64>,
    pub elected_at: Option<SystemTime>,
    pub leader_changes: u64,
    pub removed: bool,
}

pub(super) enum Request {
    Propose(Command, oneshot::Sender<Result<(), ProposeError>>),
    AddMember(Member, oneshot::Sender<Result<(), ProposeError>>),
    RemoveMember(u64, oneshot::Sender<Result<(), ProposeError>>),
}

/// The handle the API and the other roles hold.
#[derive(Clone)]
pub struct RaftHandle {
    pub(super) requests: mpsc::Sender<Request>,
    pub(super) status: watch::Receiver<RaftStatus>,
}

impl RaftHandle {
    /// Proposes a command and returns once it is committed and applied here.
    pub async fn propose(&self, command: Command) -> Result<(), ProposeError> {
        self.enqueue(command).await?.wait().await
    }

    pub async fn add_member(&self, member: Member) -> Result<(), ProposeError> {
        self.call(|tx| Request::AddMember(member, tx)).await
    }

    pub async fn remove_member(&self, id: u64) -> Result<(), ProposeError> {
        self.call(|tx| Request::RemoveMember(id, tx)).await
    }

    /// Hands a command to the driver and returns the wait for its answer
    /// (committed and applied here). Commands handed over one after another
    /// reach the log in that order, whenever their answers are awaited.
    pub async fn enqueue(&self, command: Command) -> Result<Answer, ProposeError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Propose(command, tx))
            .await
            .map_err(|_| ProposeError::Stopped)?;
        Ok(Answer(rx))
    }

    async fn call(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), ProposeError>>) -> Request,
    ) -> Result<(), ProposeError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| ProposeError::Stopped)?;
        Answer(rx).wait().await
    }

    pub fn status(&self) -> RaftStatus {
        self.status.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<RaftStatus> {
        self.status.clone()
    }
}

/// The answer to an [`enqueued`](RaftHandle::enqueue) proposal.
pub struct Answer(oneshot::Receiver<Result<(), ProposeError>>);

impl Answer {
    /// Returns once the command is committed and applied here.
    pub async fn wait(self) -> Result<(), ProposeError> {
        self.0.await.map_err(|_| ProposeError::Stopped)?
    }
}

/// A handle whose proposals a test answers itself, in the order it likes.
#[cfg(test)]
pub fn scripted() -> (RaftHandle, Proposals) {
    let (requests, rx) = mpsc::channel(64);
    let status = watch::channel(RaftStatus::default()).1;
    (RaftHandle { requests, status }, Proposals(rx))
}

#[cfg(test)]
pub struct Proposals(mpsc::Receiver<Request>);

#[cfg(test)]
impl Proposals {
    /// The next command proposed, with the way to answer it.
    pub async fn next(&mut self) -> (Command, oneshot::Sender<Result<(), ProposeError>>) {
        match self.0.recv().await {
            Some(Request::Propose(command, reply)) => (command, reply),
            Some(_) => panic!("a membership change, not a proposal"),
            None => panic!("the handle is gone"),
        }
    }
}
