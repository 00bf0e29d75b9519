//! One simulated agent: the real agent protocol (as `agent/session.rs` and
//! `agent/updates.rs` speak it to `master/agents.rs`), with nothing run.
//!
//! ```text
//!  session (one task):  SUBSCRIBE {key, hostname, addr, resources, attributes,
//!                        tasks it holds} ─▶ a master (a follower's 307 is followed)
//!                       ◀─ SUBSCRIBED, LAUNCH, KILL, HEARTBEAT on the stream
//!                       ── HEARTBEAT an interval after the last accepted call
//!                          ─▶ the leader, beside the stream (agent/heartbeat.rs)
//!     LAUNCH ─▶ queue STARTING, RUNNING (healthy, ready when it has checks),
//!               then the end its command's fate says (fate.rs)
//!     KILL   ─▶ queue KILLING, KILLED
//!  updates (one task):  UPDATE {every queued status, up to 512} ─▶ 202 ─▶ dropped
//! ```
//!
//! Each status is queued in the order the real agent would send it and kept
//! until a 202 says it is committed, so a failover or a refused call loses
//! none. When the stream breaks the agent subscribes again at the next
//! master, reporting the tasks it holds, as `meso agent` does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fate::Fate;
use super::stats::Stats;
use crate::agent::heartbeat;
use crate::agent::updates::{Link, UpdateCall};
use crate::api::error::error_chain;
use crate::api::recordio::EventStream;
use crate::master::command::ReportedTask;
use crate::model::{Resources, TaskState, TaskStatus};

/// Statuses per UPDATE call, as the real agent batches them.
const BATCH: usize = 512;
/// The heartbeat interval until the master names its own.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a SUBSCRIBE may wait for its answer (a registration is a Raft
/// write, queued behind every other agent's on a busy leader).
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(60);

const SOURCE_AGENT: &str = "SOURCE_AGENT";
const SOURCE_EXECUTOR: &str = "SOURCE_EXECUTOR";

/// What every agent of the fleet shares.
pub(super) struct Shared {
    /// Each master's agent API URL (`http://host:port/api/v1/agent`).
    pub masters: Vec<String>,
    pub resources: Resources,
    pub attributes: BTreeMap<String, String>,
    pub task_duration: Option<Duration>,
    pub stats: Stats,
    /// SUBSCRIBE calls waiting for their answer at once: ten thousand agents
    /// starting (or finding a new leader) together would otherwise open ten
    /// thousand connections in one instant and overflow the master's accept
    /// queue, and each SYN dropped there costs a second of retransmission.
    pub subscribe_slots: Semaphore,
    pub shutdown: CancellationToken,
}

/// What one agent says about itself.
pub(super) struct Identity {
    pub key: String,
    pub hostname: String,
    pub addr: String,
}

struct Agent {
    me: Identity,
    fleet: Arc<Shared>,
    client: reqwest::Client,
    book: Mutex<Book>,
    queued: Notify,
    link: watch::Sender<Option<Link>>,
    /// The last call the leader accepted: a heartbeat waits an interval
    /// from it (agent/heartbeat.rs).
    contact: heartbeat::Contact,
}

/// The tasks the agent holds, each in the last state it queued, and the
/// statuses not yet acknowledged, in order.
#[derive(Default)]
struct Book {
    tasks: HashMap<String, TaskState>,
    pending: VecDeque<TaskStatus>,
}

impl Book {
    fn push(&mut self, status: TaskStatus) {
        self.tasks.insert(status.task_id.clone(), status.state);
        self.pending.push_back(status);
    }
}

/// The parts of a stream event the simulation reads; the rest of a LAUNCH's
/// task is skipped without being built.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    subscribed: Option<Subscribed>,
    launch: Option<Launch>,
    kill: Option<Kill>,
}

#[derive(Deserialize)]
struct Subscribed {
    agent_id: String,
    heartbeat_interval_seconds: Option<f64>,
}

#[derive(Deserialize)]
struct Launch {
    task: LaunchTask,
}

#[derive(Deserialize)]
struct LaunchTask {
    task_id: String,
    command: Option<LaunchCommand>,
    #[serde(default)]
    health_checks: Vec<IgnoredAny>,
    readiness_check: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct LaunchCommand {
    value: Option<String>,
}

#[derive(Deserialize)]
struct Kill {
    task_id: String,
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn status(task_id: &str, state: TaskState, source: &str) -> TaskStatus {
    let mut s = TaskStatus::new(task_id, "", state, now_secs()).source(source);
    s.uuid = Some(uuid::Uuid::new_v4().to_string());
    s
}

/// `d`, give or take half of it: agents that start together spread out.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.5..1.5))
}

/// Runs one agent until the fleet shuts down. `index` spreads the fleet's
/// first subscriptions over the masters given; `client` is the agent's
/// share of the fleet's connections (sources.rs).
pub(super) async fn run(fleet: Arc<Shared>, me: Identity, index: usize, client: reqwest::Client) {
    let agent = Arc::new(Agent {
        me,
        fleet: fleet.clone(),
        client,
        book: Mutex::default(),
        queued: Notify::new(),
        link: watch::Sender::new(None),
        contact: heartbeat::Contact::default(),
    });
    let updates = tokio::spawn(agent.clone().send_updates());
    let mut backoff = Duration::from_millis(50);
    let mut next = index;
    loop {
        let url = fleet.masters[next % fleet.masters.len()].clone();
        next += 1;
        let outcome = tokio::select! {
            _ = fleet.shutdown.cancelled() => break,
            r = agent.session(&url) => r,
        };
        agent.link.send_replace(None);
        match outcome {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(e) => {
                fleet.stats.subscribe_failed();
                tracing::debug!(agent = %agent.me.key, master = %url, error = %e, "simulated agent not subscribed; retrying");
            }
        }
        tokio::select! {
            _ = fleet.shutdown.cancelled() => break,
            _ = tokio::time::sleep(jitter(backoff)) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    let _ = updates.await;
}

/// Counts the agent subscribed while it lives.
struct SubscribedGuard<'a>(&'a Stats);

impl Drop for SubscribedGuard<'_> {
    fn drop(&mut self) {
        self.0.unsubscribed();
    }
}

impl Agent {
    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic elsewhere cannot leave a Book half-changed in a way that
        // matters more than stopping the agent would.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One subscription, until it breaks. Ok means it was established first.
    async fn session(self: &Arc<Self>, url: &str) -> Result<(), String> {
        let held: Vec<ReportedTask> = self
            .book()
            .tasks
            .iter()
            .filter(|(_, state)| !state.is_terminal())
            .map(|(id, state)| ReportedTask {
                task_id: id.clone(),
                state: *state,
            })
            .collect();
        let subscribe = json!({"type": "SUBSCRIBE", "subscribe": {
            "key": self.me.key,
            "hostname": self.me.hostname,
            "addr": self.me.addr,
            "resources": self.fleet.resources,
            "attributes": self.fleet.attributes,
            "tasks": held,
        }});
        let response = {
            let _slot = self
                .fleet
                .subscribe_slots
                .acquire()
                .await
                .map_err(|e| e.to_string())?;
            let call = self
                .client
                .post(url)
                .header("Accept", "application/recordio")
                .json(&subscribe)
                .send();
            tokio::time::timeout(SUBSCRIBE_TIMEOUT, call)
                .await
                .map_err(|_| format!("no answer to SUBSCRIBE in {SUBSCRIBE_TIMEOUT:?}"))?
                .map_err(|e| error_chain(&e))?
        };
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("SUBSCRIBE answered {status}: {}", body.trim()));
        }
        // After redirects, the leader's URL: heartbeats and updates go there.
        let leader_url = response.url().clone();
        let mut events = EventStream::new(response);
        let mut interval = DEFAULT_HEARTBEAT;
        // Beats once subscribed, polled beside the stream (agent/heartbeat.rs).
        let mut beats: BoxFuture<'_, String> = Box::pin(std::future::pending());
        let mut subscribed: Option<SubscribedGuard> = None;
        loop {
            let silence = interval * 3;
            tokio::select! {
                record = events.next(silence) => {
                    let Some(record) = record? else {
                        return if subscribed.is_some() { Ok(()) } else { Err("the master closed the stream".into()) };
                    };
                    let event: Event = serde_json::from_slice(&record).map_err(|e| format!("an event this agent cannot read: {e}"))?;
                    match event.kind.as_str() {
                        "SUBSCRIBED" => {
                            let sub = event.subscribed.ok_or("SUBSCRIBED without subscribed")?;
                            if let Some(asked) = heartbeat::interval_of(sub.heartbeat_interval_seconds) {
                                interval = asked;
                            }
                            // The first beat somewhere within the interval, so
                            // that agents subscribed together beat apart.
                            let first = Instant::now() + interval.mul_f64(rand::rng().random_range(0.0..1.0));
                            let stats = &self.fleet.stats;
                            beats = Box::pin(heartbeat::beats(&self.client, &leader_url, sub.agent_id.clone(), first, interval, &self.contact, move |answered| {
                                if answered { stats.heartbeat() } else { stats.heartbeat_failed() }
                            }));
                            if subscribed.is_none() {
                                self.fleet.stats.subscribed();
                                subscribed = Some(SubscribedGuard(&self.fleet.stats));
                            }
                            self.link.send_replace(Some(Link { url: leader_url.clone(), agent_id: sub.agent_id }));
                        }
                        "LAUNCH" => {
                            if let Some(launch) = event.launch {
                                self.launch(launch.task);
                            }
                        }
                        "KILL" => {
                            if let Some(kill) = event.kill {
                                self.kill(&kill.task_id);
                            }
                        }
                        _ => {}
                    }
                }
                refusal = &mut beats => return Err(refusal),
            }
        }
    }

    /// A task it does not hold yet: STARTING and RUNNING at once, then its end
    /// when its fate has one. A LAUNCH of a task it holds (the catch-up after
    /// a resubscription) changes nothing.
    fn launch(self: &Arc<Self>, task: LaunchTask) {
        let command = task.command.as_ref().and_then(|c| c.value.as_deref());
        let fate = Fate::of(command, self.fleet.task_duration);
        let id = task.task_id;
        {
            let mut book = self.book();
            if book.tasks.contains_key(&id) {
                return;
            }
            self.fleet.stats.launched();
            book.push(status(&id, TaskState::Starting, SOURCE_EXECUTOR));
            book.push(status(&id, TaskState::Running, SOURCE_EXECUTOR));
            // As the real agent reports them: each verdict a status of its own.
            if !task.health_checks.is_empty() {
                let mut healthy = status(&id, TaskState::Running, SOURCE_EXECUTOR);
                healthy.healthy = Some(true);
                book.push(healthy);
            }
            if task.readiness_check.is_some() {
                let mut ready = status(&id, TaskState::Running, SOURCE_EXECUTOR);
                ready.ready = Some(true);
                book.push(ready);
            }
            if let Fate::End {
                after,
                state,
                exit_code,
            } = fate
                && after.is_zero()
            {
                book.push(ended(&id, state, exit_code));
            }
        }
        self.queued.notify_one();
        if let Fate::End {
            after,
            state,
            exit_code,
        } = fate
            && !after.is_zero()
        {
            let agent = self.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = agent.fleet.shutdown.cancelled() => {}
                    _ = tokio::time::sleep(after) => agent.end(&id, state, exit_code),
                }
            });
        }
    }

    /// The task's command "exited", unless it was killed meanwhile.
    fn end(&self, id: &str, state: TaskState, exit_code: i32) {
        {
            let mut book = self.book();
            if book.tasks.get(id).is_none_or(|s| s.is_terminal()) {
                return;
            }
            book.push(ended(id, state, exit_code));
        }
        self.queued.notify_one();
    }

    /// KILLING then KILLED, as the real agent reports a kill; a task it never
    /// got ends KILLED as one killed during its launch; one that has ended
    /// stays so.
    fn kill(&self, id: &str) {
        self.fleet.stats.kill();
        {
            let mut book = self.book();
            match book.tasks.get(id) {
                Some(state) if state.is_terminal() => return,
                Some(_) => {
                    book.push(
                        status(id, TaskState::Killing, SOURCE_AGENT)
                            .message("simulated: no process"),
                    );
                    book.push(status(id, TaskState::Killed, SOURCE_EXECUTOR));
                }
                None => book.push(
                    status(id, TaskState::Killed, SOURCE_AGENT)
                        .reason("REASON_TASK_KILLED_DURING_LAUNCH")
                        .message("killed before it reached the agent"),
                ),
            }
        }
        self.queued.notify_one();
    }

    /// Sends the queued statuses to the leader until each is acknowledged.
    async fn send_updates(self: Arc<Self>) {
        let mut link = self.link.subscribe();
        let shutdown = self.fleet.shutdown.clone();
        let mut backoff = Duration::from_millis(20);
        loop {
            let mut batch: Vec<TaskStatus> =
                self.book().pending.iter().take(BATCH).cloned().collect();
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.queued.notified() => {}
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
            for s in &mut batch {
                s.agent_id.clone_from(&agent_id);
            }
            let sent = self
                .client
                .post(url)
                .timeout(Duration::from_secs(30))
                .json(&UpdateCall::new(&agent_id, &batch))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    self.contact.accepted();
                    self.acked(&batch);
                    backoff = Duration::from_millis(20);
                    continue;
                }
                Ok(r) => {
                    tracing::debug!(agent = %self.me.key, status = %r.status(), "UPDATE refused; retrying")
                }
                Err(e) => {
                    tracing::debug!(agent = %self.me.key, error = %error_chain(&e), "UPDATE not sent; retrying")
                }
            }
            self.fleet.stats.update_failed();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Drops what a 202 acknowledged; an ended task is forgotten once its
    /// end is committed, so a long churn does not grow the agent.
    fn acked(&self, batch: &[TaskStatus]) {
        self.fleet.stats.acked(batch.iter().map(|s| s.state));
        let mut book = self.book();
        let n = batch.len().min(book.pending.len());
        book.pending.drain(..n);
        for s in batch.iter().filter(|s| s.state.is_terminal()) {
            if book.tasks.get(&s.task_id).is_some_and(|t| t.is_terminal())
                && !book.pending.iter().any(|p| p.task_id == s.task_id)
            {
                book.tasks.remove(&s.task_id);
            }
        }
    }
}

fn ended(id: &str, state: TaskState, exit_code: i32) -> TaskStatus {
    let mut s = status(id, state, SOURCE_EXECUTOR);
    s.exit_code = Some(exit_code);
    if state == TaskState::Failed {
        s = s
            .reason("REASON_COMMAND_EXECUTOR_FAILED")
            .message(format!("simulated: exited with status {exit_code}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use crate::agent::fake_master::FakeMaster;
    use crate::sim::{Fleet, Options};

    /// A LAUNCH that arrives while a heartbeat is held unanswered is
    /// reported RUNNING at once, not after the heartbeat's timeout (the
    /// interval, 4 s here).
    #[tokio::test]
    async fn launches_are_read_while_a_heartbeat_waits_for_its_answer() {
        let mut master = FakeMaster::start(Duration::from_secs(4)).await;
        let fleet = Fleet::start(Options {
            masters: vec![master.addr()],
            agents: 1,
            prefix: "beat".into(),
            first_ip: "10.0.0.1".parse().expect("an address"),
            resources: Default::default(),
            attributes: Default::default(),
            task_duration: None,
            subscribe_concurrency: 1,
        })
        .expect("a fleet of one");

        master.heartbeat_held().await;
        master.send(json!({"type": "LAUNCH", "launch": {"task": {
            "task_id": "t1", "command": {"value": "sleep 600"},
        }}}));
        let mut states = Vec::new();
        while !states.contains(&"TASK_RUNNING".to_string()) {
            let Some(update) = master.update_within(Duration::from_secs(2)).await else {
                panic!("no RUNNING within 2 s of the LAUNCH; got {states:?}");
            };
            for status in update["update"]["statuses"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert_eq!(status["task_id"], "t1");
                states.extend(status["state"].as_str().map(String::from));
            }
        }
        assert_eq!(states, ["TASK_STARTING", "TASK_RUNNING"]);
        fleet.stop().await;
    }
}
