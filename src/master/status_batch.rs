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
//! own.
//!
//! Order: the batches are handed to Raft by this one loop, in the order
//! their calls came ([`RaftHandle::enqueue`]); only the waits for the
//! commits run beside it. With an agent's one call in flight at a time, its
//! statuses reach the log in the order it sent them.
//!
//! A failed proposal fails every call in it, and the agents send them again
//! (the registry ignores a status whose uuid it has seen). A call whose
//! agent stopped waiting (its HTTP request timed out and it will send the
//! statuses again) is left out of the next batch: under a backlog, entries
//! go to calls someone still waits for. The queue holds at most a call or
//! so per agent for that reason, and needs no other bound.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::command::Command;
use super::raft::{ProposeError, RaftHandle};
use crate::model::TaskStatus;

/// Entries of statuses being committed at once: while they are, new calls
/// gather for the next.
const MAX_IN_FLIGHT: usize = 2;

/// Statuses in one entry: calls are added while it holds fewer (a real
/// agent sends up to 512 per call).
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
        let mut statuses = Vec::new();
        let mut replies = Vec::new();
        let mut next = Some(first);
        while let Some(call) = next.take() {
            if !call.reply.is_closed() {
                statuses.extend(call.statuses);
                replies.push(call.reply);
            }
            if statuses.len() < MAX_STATUSES {
                next = queue.try_recv().ok();
            }
        }
        if replies.is_empty() {
            continue;
        }
        let answer = raft.enqueue(Command::UpdateTaskStatuses { statuses }).await;
        tokio::spawn(async move {
            let result = match answer {
                Ok(answer) => answer.wait().await,
                Err(e) => Err(e),
            };
            for reply in replies {
                let _ = reply.send(result.clone());
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::master::raft::scripted;
    use crate::model::TaskState;

    fn status(task: &str) -> TaskStatus {
        TaskStatus::new(task, "c-S0", TaskState::Running, 1.0)
    }

    fn tasks_of(command: &Command) -> Vec<String> {
        match command {
            Command::UpdateTaskStatuses { statuses } => {
                statuses.iter().map(|s| s.task_id.clone()).collect()
            }
            other => panic!("not a status batch: {other:?}"),
        }
    }

    /// Calls that come while an entry is being committed share the next;
    /// each is answered with its entry's result, and entries reach Raft in
    /// the order their calls came.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_share_entries_in_order_and_hear_their_entrys_result() {
        let (raft, mut proposals) = scripted();
        let batcher = Arc::new(StatusBatcher::start(raft));
        let submit = |task: &'static str| {
            let b = batcher.clone();
            tokio::spawn(async move { b.submit(vec![status(task)]).await })
        };
        let a = submit("a");
        let (first, answer_a) = proposals.next().await;
        assert_eq!(tasks_of(&first), ["a"]);
        let b = submit("b");
        let (second, answer_b) = proposals.next().await;
        assert_eq!(tasks_of(&second), ["b"]);
        // Both slots taken: these two gather for the third entry.
        let c = submit("c");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let d = submit("d");
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer_b.send(Err(ProposeError::LeadershipLost)).unwrap();
        let (third, answer_cd) = proposals.next().await;
        assert_eq!(tasks_of(&third), ["c", "d"]);
        answer_cd.send(Ok(())).unwrap();
        answer_a.send(Ok(())).unwrap();
        assert_eq!(a.await.unwrap(), Ok(()));
        assert_eq!(b.await.unwrap(), Err(ProposeError::LeadershipLost));
        assert_eq!(c.await.unwrap(), Ok(()));
        assert_eq!(d.await.unwrap(), Ok(()));
    }

    /// A call its agent stopped waiting for is left out of the next entry.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_call_is_not_proposed() {
        let (raft, mut proposals) = scripted();
        let batcher = Arc::new(StatusBatcher::start(raft));
        let b = batcher.clone();
        let first = tokio::spawn(async move { b.submit(vec![status("first")]).await });
        let (_, answer_first) = proposals.next().await;
        let b = batcher.clone();
        let second = tokio::spawn(async move { b.submit(vec![status("second")]).await });
        let (_, answer_second) = proposals.next().await;
        let b = batcher.clone();
        let gone = tokio::spawn(async move { b.submit(vec![status("gone")]).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        gone.abort();
        let b = batcher.clone();
        let kept = tokio::spawn(async move { b.submit(vec![status("kept")]).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer_first.send(Ok(())).unwrap();
        let (next, answer) = proposals.next().await;
        assert_eq!(tasks_of(&next), ["kept"]);
        answer.send(Ok(())).unwrap();
        answer_second.send(Ok(())).unwrap();
        for call in [first, second, kept] {
            assert_eq!(call.await.unwrap(), Ok(()));
        }
    }
}
