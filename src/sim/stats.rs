//! The fleet's counters: atomics every simulated agent bumps, read as one
//! snapshot by `meso sim`'s progress line and its `--json` lines.
//!
//! "Acknowledged" counts come from the UPDATE calls' 202s, which the master
//! answers once the statuses are committed in its registry: `running` is the
//! number of tasks whose TASK_RUNNING the cluster has recorded, not merely
//! sent.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

use crate::model::TaskState;

#[derive(Default)]
pub struct Stats {
    subscribed: AtomicI64,
    subscriptions: AtomicU64,
    subscribe_failures: AtomicU64,
    launched: AtomicU64,
    kills: AtomicU64,
    heartbeats: AtomicU64,
    heartbeat_failures: AtomicU64,
    update_calls: AtomicU64,
    update_failures: AtomicU64,
    statuses_acked: AtomicU64,
    running: AtomicU64,
    finished: AtomicU64,
    failed: AtomicU64,
    killed: AtomicU64,
}

/// One reading of [`Stats`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Agents whose event stream is open right now.
    pub subscribed: u64,
    /// SUBSCRIBED events received in all (a resubscription counts again).
    pub subscriptions: u64,
    /// SUBSCRIBE calls or streams that failed (each is retried).
    pub subscribe_failures: u64,
    pub launched: u64,
    pub kills: u64,
    pub heartbeats: u64,
    /// Heartbeats unanswered or refused (only a refusal ends the stream).
    pub heartbeat_failures: u64,
    pub update_calls: u64,
    pub update_failures: u64,
    pub statuses_acked: u64,
    /// Acknowledged TASK_RUNNING, TASK_FINISHED, TASK_FAILED, TASK_KILLED.
    pub running: u64,
    pub finished: u64,
    pub failed: u64,
    pub killed: u64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    pub(super) fn subscribed(&self) {
        self.subscribed.fetch_add(1, Ordering::Relaxed);
        bump(&self.subscriptions);
    }
    pub(super) fn unsubscribed(&self) {
        self.subscribed.fetch_sub(1, Ordering::Relaxed);
    }
    pub(super) fn subscribe_failed(&self) {
        bump(&self.subscribe_failures);
    }
    pub(super) fn launched(&self) {
        bump(&self.launched);
    }
    pub(super) fn kill(&self) {
        bump(&self.kills);
    }
    pub(super) fn heartbeat(&self) {
        bump(&self.heartbeats);
    }
    pub(super) fn heartbeat_failed(&self) {
        bump(&self.heartbeat_failures);
    }
    pub(super) fn update_failed(&self) {
        bump(&self.update_failures);
    }

    /// One UPDATE call's 202, with the states of the statuses it carried.
    pub(super) fn acked(&self, states: impl Iterator<Item = TaskState>) {
        bump(&self.update_calls);
        for state in states {
            bump(&self.statuses_acked);
            match state {
                TaskState::Running => bump(&self.running),
                TaskState::Finished => bump(&self.finished),
                TaskState::Failed => bump(&self.failed),
                TaskState::Killed => bump(&self.killed),
                _ => {}
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            subscribed: self.subscribed.load(Ordering::Relaxed).max(0) as u64,
            subscriptions: get(&self.subscriptions),
            subscribe_failures: get(&self.subscribe_failures),
            launched: get(&self.launched),
            kills: get(&self.kills),
            heartbeats: get(&self.heartbeats),
            heartbeat_failures: get(&self.heartbeat_failures),
            update_calls: get(&self.update_calls),
            update_failures: get(&self.update_failures),
            statuses_acked: get(&self.statuses_acked),
            running: get(&self.running),
            finished: get(&self.finished),
            failed: get(&self.failed),
            killed: get(&self.killed),
        }
    }
}
