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

use super::heartbeat::Contact;
use super::tasks::Tasks;
use crate::model::TaskStatus;

/// Where to send: the leader's agent API URL and this agent's id, while subscribed.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Parsed once per session: a call per update batch would parse it again.
    pub url: reqwest::Url,
    pub agent_id: String,
}

/// Updates per call: big enough for a burst, small enough for one log entry.
const BATCH: usize = 512;

/// How long a call waits for the updates of launches under way to join it.
/// Each call is a Raft round on the leader (~0.3 ms of its CPU, the same for
/// one update as for hundreds), and during a burst of launches the RUNNINGs
/// come one by one: sent as they came, a 1,000-task deployment took ~700
/// rounds. A lone process launch does not wait: its RUNNING ends the launches
/// under way. One slower than STARTING's hold (a fetch, a docker start) sends
/// STARTING while still under way, and that call waits the whole time.
pub const LINGER: Duration = Duration::from_millis(20);

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

/// Sends until `shutdown`; a call waits up to `linger` ([`LINGER`]) for the
/// updates of launches under way.
pub async fn run(
    tasks: Arc<Tasks>,
    mut link: watch::Receiver<Option<Link>>,
    contact: Arc<Contact>,
    client: reqwest::Client,
    linger: Duration,
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
        if batch.len() < BATCH && tasks.launches_under_way() > 0 {
            let deadline = tokio::time::Instant::now() + linger;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = tasks.updates_queued.notified() => {
                        if tasks.launches_under_way() == 0 {
                            break;
                        }
                    }
                }
            }
            batch = tasks.pending(BATCH);
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
            .post(url)
            .timeout(Duration::from_secs(10))
            .json(&UpdateCall::new(&agent_id, &batch))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                contact.accepted();
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::agent::fake_master::FakeMaster;
    use crate::agent::tasks::testing::{Starter, sleep_task, tasks_with};

    /// Longer than any test waits: a call that lingers for it is caught.
    const TEST_LINGER: Duration = Duration::from_secs(60);
    /// STARTING goes with RUNNING, as with a quick process task.
    const HOLD: Duration = Duration::from_secs(60);

    fn task_ids(call: &Value) -> Vec<String> {
        let statuses = call["update"]["statuses"].as_array().cloned();
        let mut ids: Vec<String> = statuses
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s["task_id"].as_str().map(String::from))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The sender, running against `master` until the test ends.
    fn sender(tasks: &Arc<Tasks>, master: &FakeMaster) -> CancellationToken {
        let link = Link {
            url: format!("http://{}/api/v1/agent", master.addr())
                .parse()
                .expect("a URL"),
            agent_id: "c-S0".into(),
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(run(
            tasks.clone(),
            watch::channel(Some(link)).1,
            Arc::new(Contact::default()),
            reqwest::Client::new(),
            TEST_LINGER,
            shutdown.clone(),
        ));
        shutdown
    }

    /// A RUNNING queued while another launch is under way waits for it, and
    /// both go in one call: one Raft round on the leader, not two.
    #[tokio::test]
    async fn a_status_waits_for_the_launches_under_way_and_goes_with_them() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (gate, starter) = Starter::gating("slow");
        let tasks = tasks_with(dir.path(), starter, HOLD);
        let mut master = FakeMaster::start(Duration::from_secs(3600)).await;
        let shutdown = sender(&tasks, &master);
        tasks.launch(sleep_task("slow-1", &[]));
        tasks.launch(sleep_task("quick-1", &[]));
        let queued = async {
            while !tasks.pending(BATCH).iter().any(|s| s.task_id == "quick-1") {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), queued)
            .await
            .expect("quick-1's RUNNING is queued");
        let _ = gate.send(true);
        let call = master
            .update_within(Duration::from_secs(10))
            .await
            .expect("an UPDATE");
        assert_eq!(task_ids(&call), ["quick-1", "slow-1"], "{call}");
        shutdown.cancel();
    }

    /// With nothing else under way, a launch's statuses go at once.
    #[tokio::test]
    async fn a_lone_launch_does_not_wait() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let tasks = tasks_with(dir.path(), Starter::open(), HOLD);
        let mut master = FakeMaster::start(Duration::from_secs(3600)).await;
        let shutdown = sender(&tasks, &master);
        tasks.launch(sleep_task("quick-1", &[]));
        let call = master
            .update_within(TEST_LINGER / 2)
            .await
            .expect("an UPDATE before the linger was over");
        assert_eq!(task_ids(&call), ["quick-1"], "{call}");
        shutdown.cancel();
    }
}
