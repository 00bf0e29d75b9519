//! Sends the agent's status updates to the leader until each is acknowledged.
//!
//! ```text
//!  tasks/ queues   (checkpointed) ─▶ this loop: UPDATE {statuses} ─▶ leader
//!                                    202 = committed in the registry ─▶ acked, dropped
//!                                    anything else ─▶ back off, send again
//! ```
//!
//! At least once: a 202 lost on the way means the same updates go again, and
//! the registry ignores a uuid it has applied. One call is in flight at a
//! time and carries every queued update, each task's in order, except those
//! a launch holds back for a moment (its STARTING, to go with its RUNNING:
//! `tasks/launch.rs`).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::tasks::Tasks;
use crate::model::TaskStatus;

/// Where to send: the leader's agent API URL and this agent's id, while subscribed.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub url: String,
    pub agent_id: String,
}

/// Updates per call: big enough for a burst, small enough for one log entry.
const BATCH: usize = 512;

/// The UPDATE call's body, written straight from the statuses: built as a
/// `serde_json::Value` first, the batch was copied into a tree of maps and
/// strings on every call (an eighth of a 10,000-agent simulation's CPU).
#[derive(Serialize)]
pub(crate) struct UpdateCall<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    agent_id: &'a str,
    update: Statuses<'a>,
}

#[derive(Serialize)]
struct Statuses<'a> {
    statuses: &'a [TaskStatus],
}

impl<'a> UpdateCall<'a> {
    pub(crate) fn new(agent_id: &'a str, statuses: &'a [TaskStatus]) -> Self {
        Self {
            kind: "UPDATE",
            agent_id,
            update: Statuses { statuses },
        }
    }
}

pub async fn run(
    tasks: Arc<Tasks>,
    mut link: watch::Receiver<Option<Link>>,
    client: reqwest::Client,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let mut batch = tasks.pending(BATCH);
        if batch.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tasks.updates_queued.notified() => {}
                // A poll too, in case a wake-up came between pending() and here.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let current = link.borrow_and_update().clone();
        let Some(Link { url, agent_id }) = current else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = link.changed() => {}
            }
            continue;
        };
        // Updates queued before the agent knew its id (a restart) carry none.
        for status in &mut batch {
            status.agent_id = agent_id.clone();
        }
        let sent = client
            .post(&url)
            .timeout(Duration::from_secs(10))
            .json(&UpdateCall::new(&agent_id, &batch))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                tasks.acked(&batch);
                backoff = Duration::from_millis(20);
                continue;
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::info!(%status, body = %body.trim(), "status updates not acknowledged; retrying");
            }
            Err(e) => tracing::info!(error = %e, "status updates not sent; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
