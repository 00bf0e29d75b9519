//! Status updates from many agents, proposed together: the UPDATE calls
//! that arrive while earlier ones are being committed share one
//! `UpdateTaskStatuses` entry, and each call is answered (the agent's ack)
//! when that entry has been applied here.
//!
//! ```text
//!  UPDATE (agent a) ─┐
//!  UPDATE (agent b) ─┼─▶ queue ─▶ one entry, at most MAX_IN_FLIGHT at once ─▶ commit
//!  UPDATE (agent c) ─┘                                   each caller answered ◀─┘
//! ```
//!
//! In a deployment each agent sends a call or so per task it is given (its
//! STARTING and RUNNING), and one entry per call was most of the log: at
//! 10,000 agents and 100,000 tasks, 65,000 entries of one or two statuses,
//! each framed, stored, sent, decoded and answered by every master on its
//! own. An agent has one call in flight at a time, so its statuses still
//! reach the log in the order it sent them; a failed proposal fails every
//! call in it, and the agents send them again (the registry ignores a
//! status whose uuid it has seen).

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::command::Command;
use super::raft::{ProposeError, RaftHandle};
use crate::model::TaskStatus;

/// Entries of statuses being committed at once: while they are, new calls
/// gather for the next.
const MAX_IN_FLIGHT: usize = 2;

/// The most statuses in one entry (a real agent sends up to 512 per call).
const MAX_STATUSES: usize = 4096;

struct Call {
    statuses: Vec<TaskStatus>,
    reply: oneshot::Sender<Result<(), ProposeError>>,
}

pub struct StatusBatcher {
    calls: mpsc::UnboundedSender<Call>,
}

impl StatusBatcher {
    /// Starts the task that proposes the batches; it ends with the batcher.
    pub fn start(raft: RaftHandle) -> Self {
        let (calls, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, queue));
        Self { calls }
    }

    /// Returns once the statuses are committed and applied here.
    pub async fn submit(&self, statuses: Vec<TaskStatus>) -> Result<(), ProposeError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call { statuses, reply })
            .map_err(|_| ProposeError::Stopped)?;
        answer.await.unwrap_or(Err(ProposeError::Stopped))
    }
}

async fn run(raft: RaftHandle, mut queue: mpsc::UnboundedReceiver<Call>) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        // Waiting for a slot is what lets the next batch gather.
        let Ok(slot) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let mut count = first.statuses.len();
        let mut batch = vec![first];
        while count < MAX_STATUSES
            && let Ok(call) = queue.try_recv()
        {
            count += call.statuses.len();
            batch.push(call);
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::with_capacity(count);
            let mut replies = Vec::with_capacity(batch.len());
            for call in batch {
                statuses.extend(call.statuses);
                replies.push(call.reply);
            }
            let result = raft.propose(Command::UpdateTaskStatuses { statuses }).await;
            for reply in replies {
                let _ = reply.send(result.clone());
            }
            drop(slot);
        });
    }
}
