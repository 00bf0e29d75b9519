//! The agent's tasks: launching, watching and killing them, their status
//! updates, and finding them again after a restart.
//!
//! ```text
//!  LAUNCH ─▶ checkpoint STAGING ─▶ STARTING ─▶ sandbox + fetch ─▶ containerizer.launch
//!        ─▶ RUNNING (container IPs) ─▶ wait ─▶ FINISHED | FAILED (reason, exit code)
//!           └─ health checks (health/) ─▶ RUNNING again, `healthy` flipped
//!                                      └─ too many failures ─▶ KILL, as below
//!  KILL   ─▶ KILLING (checks stop) ─▶ containerizer.kill (SIGTERM … grace … SIGKILL) ─▶ KILLED
//!  every status ─▶ checkpoint.pending ─▶ updates.rs sends ─▶ master commits ─▶ acked
//!  restart ─▶ recover: watch each checkpointed container again (one that ended
//!             meanwhile reports how), kill containers of ours nobody knows
//! ```
//!
//! The launch path is `launch.rs`, the restart's `recovery.rs`; this file
//! keeps the records, the statuses and the kill.

mod launch;
mod recovery;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::checkpoint::{Dirs, Record};
use super::containerizer::{ContainerHandle, Containerizer, Exit};
use super::env::task_env;
use super::health::{Checked, Checkers, Reporter, Target};
use crate::master::command::ReportedTask;
use crate::master::now_secs;
use crate::model::{ContainerKind, HealthReport, TaskSpec, TaskState, TaskStatus};

/// Between its LAUNCH and its RUNNING (or failure).
fn is_under_way(state: TaskState) -> bool {
    matches!(state, TaskState::Staging | TaskState::Starting)
}

const SOURCE_AGENT: &str = "SOURCE_AGENT";
const SOURCE_EXECUTOR: &str = "SOURCE_EXECUTOR";
const HEALTH_REASON: &str = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED";
/// Mesos's reason for a (non-health) check's update: our readiness.
const CHECK_REASON: &str = "REASON_TASK_CHECK_STATUS_UPDATED";
/// Launches preparing at once (STARTING, sandbox, fetch): see `Tasks::preparing`.
const PREPARING_AT_ONCE: usize = 4;
/// How long a launch holds its STARTING back, hoping to send it with the
/// RUNNING (or the failure) that follows: see `launch.rs`.
const STARTING_HOLD: Duration = Duration::from_millis(20);

pub struct Tasks {
    pub dirs: Dirs,
    hostname: String,
    /// This agent's HTTP address, for MESOS_AGENT_ENDPOINT.
    agent_addr: String,
    process: Arc<dyn Containerizer>,
    /// The docker containerizer, or why it is disabled.
    docker: Result<Arc<dyn Containerizer>, String>,
    records: Mutex<HashMap<String, Record>>,
    /// How many records are STAGING or STARTING, changed under the records'
    /// lock wherever a record comes or its state changes: the update sender
    /// asks on every status it is woken for (updates.rs), and counting the
    /// records each time was 2% of the agents' CPU in a 1,000-task burst.
    under_way: AtomicUsize,
    /// Woken when a status update is queued.
    pub updates_queued: Notify,
    agent_id: watch::Receiver<Option<String>>,
    checkers: Checkers,
    /// A launch prepares (and hands its task to the containerizer) only
    /// with a permit; a fetch gives it back while it downloads. The
    /// preparation is synchronous file work (STARTING's checkpoint, the
    /// sandbox), and a burst of LAUNCHes spawned
    /// at once used to run every preparation before anything else on the
    /// runtime: with 333 tasks per agent the first RUNNING reached the
    /// master ~300 ms after it had started, and the updates of a
    /// whole burst came back in a lump at its end. With a few permits the
    /// supervisor's replies and the status updates take turns with the
    /// preparations, about in the order they came (the semaphore is fair;
    /// spawned launches reach it in the order the runtime runs them).
    preparing: tokio::sync::Semaphore,
    /// [`STARTING_HOLD`], shorter or longer in tests.
    starting_hold: Duration,
}

impl Tasks {
    pub fn new(
        dirs: Dirs,
        hostname: String,
        agent_addr: String,
        process: Arc<dyn Containerizer>,
        docker: Result<Arc<dyn Containerizer>, String>,
        agent_id: watch::Receiver<Option<String>>,
    ) -> Self {
        Self {
            dirs,
            hostname,
            agent_addr,
            process,
            docker,
            records: Mutex::new(HashMap::new()),
            under_way: AtomicUsize::new(0),
            updates_queued: Notify::new(),
            agent_id,
            checkers: Checkers::default(),
            preparing: tokio::sync::Semaphore::new(PREPARING_AT_ONCE),
            starting_hold: STARTING_HOLD,
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().expect("task records lock")
    }

    /// What the agent tells a master when it subscribes: every task it runs
    /// and every ended one whose last status is not acknowledged yet.
    pub fn report(&self) -> Vec<ReportedTask> {
        self.records()
            .values()
            .filter(|r| !r.state.is_terminal() || !r.pending.is_empty())
            .map(|r| ReportedTask {
                task_id: r.spec.task_id.clone(),
                state: r.state,
            })
            .collect()
    }

    /// Waits for the task's end and reports it.
    async fn watch(
        self: Arc<Self>,
        id: String,
        handle: ContainerHandle,
        containerizer: Arc<dyn Containerizer>,
    ) {
        let exit = containerizer.wait(&handle).await;
        self.checkers.stop(&id);
        containerizer.cleanup(&handle).await;
        let killed = self.kill_requested(&id);
        self.report_exit(&id, &exit, killed);
        containerizer.end_recorded(&handle).await;
    }

    fn report_exit(&self, id: &str, exit: &Exit, killed: bool) {
        let (health_kill, report) = match self.records().get(id) {
            Some(r) => (r.health_kill.clone(), r.health.clone()),
            None => (None, None),
        };
        if let Some(why) = health_kill.filter(|_| killed && exit.reason.is_none()) {
            return self.set_status(id, TaskState::Killed, |mut s| {
                s.exit_code = exit.code;
                s.healthy = Some(false);
                s.health = report;
                s.source(SOURCE_EXECUTOR)
                    .reason(HEALTH_REASON)
                    .message(format!("{why} ({})", exit.message))
            });
        }
        let (state, reason) = if killed && exit.reason.is_none() {
            (TaskState::Killed, None)
        } else if exit.succeeded() {
            (TaskState::Finished, None)
        } else {
            let reason = exit
                .reason
                .clone()
                .unwrap_or_else(|| "REASON_COMMAND_EXECUTOR_FAILED".into());
            (TaskState::Failed, Some(reason))
        };
        self.set_status(id, state, |mut s| {
            s.exit_code = exit.code;
            s.message = Some(exit.message.clone());
            s.reason = reason.clone();
            s.source(SOURCE_EXECUTOR)
        });
    }

    /// Ends a task: SIGTERM, then SIGKILL after `grace`. A task never seen is
    /// recorded as killed, so that a late LAUNCH of it is refused.
    pub fn kill(&self, id: &str, grace: Duration) {
        let handle = {
            let mut records = self.records();
            match records.get_mut(id) {
                Some(r) if r.state.is_terminal() => return,
                Some(r) => {
                    r.kill_requested = true;
                    self.save(r);
                    r.handle.clone()
                }
                None => {
                    let agent_id = self.agent_id.borrow().clone().unwrap_or_default();
                    let spec = TaskSpec {
                        task_id: id.to_string(),
                        agent_id,
                        ..Default::default()
                    };
                    let record = Record::new(spec, TaskState::Staging, true);
                    self.insert_record(&mut records, record);
                    drop(records);
                    return self.set_status(id, TaskState::Killed, |s| {
                        s.source(SOURCE_AGENT)
                            .reason("REASON_TASK_KILLED_DURING_LAUNCH")
                            .message("killed before it reached the agent")
                    });
                }
            }
        };
        // Without a handle the launch is under way; it checks the flag.
        let Some(handle) = handle else { return };
        self.checkers.stop(id);
        self.set_status(id, TaskState::Killing, |s| {
            s.source(SOURCE_AGENT)
                .message(format!("SIGTERM, then SIGKILL after {grace:?}"))
        });
        let Some(containerizer) = self.containerizer_of(&handle) else {
            return;
        };
        tokio::spawn(async move { containerizer.kill(&handle, grace).await });
    }

    /// Starts the task's health checks (if it has any), from what its record
    /// says: ports, environment, the health last reported.
    fn start_checks(
        self: &Arc<Self>,
        id: &str,
        handle: &ContainerHandle,
        containerizer: &Arc<dyn Containerizer>,
    ) {
        let Some((spec, reported, prior, ready)) = self
            .records()
            .get(id)
            .map(|r| (r.spec.clone(), r.healthy, r.health.clone(), r.ready))
        else {
            return;
        };
        if spec.health_checks.is_empty() && spec.readiness_check.is_none() {
            return;
        }
        let sandbox = self.dirs.sandbox(id);
        let target = Target {
            ports: spec.ports.iter().map(|p| p.number).collect(),
            env: task_env(&spec, &sandbox, &self.hostname, &self.agent_addr),
            sandbox,
            handle: handle.clone(),
            containerizer: containerizer.clone(),
        };
        let checked = Checked {
            task_id: id.to_string(),
            checks: spec.health_checks.clone(),
            target,
            reported,
            prior,
            readiness: spec.readiness_check.clone(),
            ready,
        };
        self.checkers.start(checked, self.clone());
    }

    /// Up to `limit` unacknowledged updates to send, each task's in order
    /// (none of a task whose updates are held).
    pub fn pending(&self, limit: usize) -> Vec<TaskStatus> {
        self.records()
            .values()
            .filter(|r| !r.held)
            .flat_map(|r| r.pending.iter().cloned())
            .take(limit)
            .collect()
    }

    /// Tasks between their LAUNCH and their RUNNING (or failure): while there
    /// are any, more updates are about to be queued.
    pub fn launches_under_way(&self) -> usize {
        self.under_way.load(Ordering::Relaxed)
    }

    /// Adds a record, counted if under way; the caller holds the records' lock.
    fn insert_record(&self, records: &mut HashMap<String, Record>, record: Record) {
        if is_under_way(record.state) {
            self.under_way.fetch_add(1, Ordering::Relaxed);
        }
        let replaced = records.insert(record.spec.task_id.clone(), record);
        if replaced.is_some_and(|old| is_under_way(old.state)) {
            self.under_way.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A master committed these updates: they need not be sent again.
    pub fn acked(&self, sent: &[TaskStatus]) {
        let mut records = self.records();
        for status in sent {
            if let Some(r) = records.get_mut(&status.task_id) {
                let before = r.pending.len();
                r.pending.retain(|p| p.uuid != status.uuid);
                if r.pending.len() != before {
                    self.save(r);
                }
            }
        }
    }

    /// Ended tasks whose every update is acknowledged, with when they ended.
    pub fn finished(&self) -> Vec<(String, f64)> {
        self.records()
            .values()
            .filter(|r| r.state.is_terminal() && r.pending.is_empty())
            .map(|r| (r.spec.task_id.clone(), r.ended_at.unwrap_or(0.0)))
            .collect()
    }

    /// Forgets an ended task and deletes its sandbox (sandbox GC).
    pub fn forget(&self, id: &str) {
        let removed = {
            let mut records = self.records();
            match records.get(id) {
                Some(r) if r.state.is_terminal() && r.pending.is_empty() => records.remove(id),
                _ => None,
            }
        };
        if removed.is_some() {
            self.dirs.remove(id);
        }
    }

    fn fail(&self, id: &str, reason: &str, message: String) {
        tracing::info!(task = %id, %reason, %message, "task failed to start");
        self.set_status(id, TaskState::Failed, |s| {
            s.source(SOURCE_AGENT)
                .reason(reason)
                .message(message.clone())
        });
    }

    /// Records a new state with its status update, checkpoints it, and wakes
    /// the update sender. A task that has ended takes no further status.
    fn set_status(&self, id: &str, state: TaskState, fill: impl FnOnce(TaskStatus) -> TaskStatus) {
        self.record_status(id, state, |_| true, fill, Sending::Now)
    }

    /// Records a status if `accept` (which may change the record, under the
    /// same lock) says yes, and either wakes the update sender or, with
    /// [`Sending::Held`], leaves it (and the task's updates) for the sender to
    /// skip until the next status or [`Tasks::release`]. Any status not
    /// held sends what an earlier one held, before it, in order. A RUNNING
    /// status repeats the container's IPs.
    fn record_status(
        &self,
        id: &str,
        state: TaskState,
        accept: impl FnOnce(&mut Record) -> bool,
        fill: impl FnOnce(TaskStatus) -> TaskStatus,
        send: Sending,
    ) {
        let agent_id = self.agent_id.borrow().clone().unwrap_or_default();
        {
            let mut records = self.records();
            let Some(r) = records.get_mut(id) else { return };
            if r.state.is_terminal() || !accept(r) {
                return;
            }
            let now = now_secs();
            let mut status = fill(TaskStatus::new(id, &agent_id, state, now));
            status.uuid = Some(uuid::Uuid::new_v4().to_string());
            if state == TaskState::Running && status.container_ips.is_empty() {
                status.container_ips = r.container_ips.clone();
            }
            match (is_under_way(r.state), is_under_way(state)) {
                (false, true) => self.under_way.fetch_add(1, Ordering::Relaxed),
                (true, false) => self.under_way.fetch_sub(1, Ordering::Relaxed),
                _ => 0,
            };
            r.state = state;
            if state.is_terminal() {
                r.ended_at = Some(now);
            }
            r.pending.push(status);
            r.held = send == Sending::Held;
            self.save(r);
        }
        tracing::debug!(task = %id, %state, "task status");
        if send == Sending::Now {
            self.updates_queued.notify_one();
        }
    }

    /// Lets the update sender have what a task's record holds back.
    fn release(&self, id: &str) {
        let released = match self.records().get_mut(id) {
            Some(r) if r.held => {
                r.held = false;
                true
            }
            _ => false,
        };
        if released {
            self.updates_queued.notify_one();
        }
    }

    /// Records the task's new health as a RUNNING status, unless it is no
    /// longer RUNNING (a kill under way, an end).
    fn report_health(&self, id: &str, healthy: bool, report: HealthReport, message: String) {
        let accept = |r: &mut Record| {
            if r.state != TaskState::Running || r.kill_requested {
                return false;
            }
            r.healthy = Some(healthy);
            r.health = Some(report.clone());
            true
        };
        let fill = |mut s: TaskStatus| {
            s.healthy = Some(healthy);
            s.health = Some(report.clone());
            s.source(SOURCE_EXECUTOR)
                .reason(HEALTH_REASON)
                .message(message)
        };
        self.record_status(id, TaskState::Running, accept, fill, Sending::Now);
    }

    fn save(&self, record: &Record) {
        if let Err(e) = self.dirs.save(record) {
            tracing::error!(task = %record.spec.task_id, error = %e, "cannot checkpoint a task");
        }
    }

    fn spec(&self, id: &str) -> Option<TaskSpec> {
        self.records().get(id).map(|r| TaskSpec::clone(&r.spec))
    }

    fn kill_requested(&self, id: &str) -> bool {
        self.records().get(id).is_some_and(|r| r.kill_requested)
    }

    fn containerizer(&self, spec: &TaskSpec) -> Result<Arc<dyn Containerizer>, String> {
        match spec.container_kind() {
            ContainerKind::Mesos => Ok(self.process.clone()),
            ContainerKind::Docker => self
                .docker
                .clone()
                .map_err(|why| format!("the docker containerizer is disabled: {why}")),
        }
    }

    fn containerizer_of(&self, handle: &ContainerHandle) -> Option<Arc<dyn Containerizer>> {
        match handle {
            ContainerHandle::Process { .. } => Some(self.process.clone()),
            ContainerHandle::Docker { .. } => self.docker.clone().ok(),
        }
    }

    fn containerizers(&self) -> Vec<Arc<dyn Containerizer>> {
        let mut all = vec![self.process.clone()];
        all.extend(self.docker.clone().ok());
        all
    }
}

impl Reporter for Tasks {
    fn ready(&self, task_id: &str, message: String) {
        let accept = |r: &mut Record| {
            if r.state != TaskState::Running || r.kill_requested || r.ready {
                return false;
            }
            r.ready = true;
            true
        };
        let fill = |mut s: TaskStatus| {
            s.ready = Some(true);
            s.source(SOURCE_EXECUTOR)
                .reason(CHECK_REASON)
                .message(message)
        };
        self.record_status(task_id, TaskState::Running, accept, fill, Sending::Now);
    }

    fn health_flipped(&self, task_id: &str, healthy: bool, report: HealthReport, message: String) {
        self.report_health(task_id, healthy, report, message);
    }

    fn kill_unhealthy(&self, task_id: &str, report: HealthReport, message: String) {
        let grace = {
            let mut records = self.records();
            let Some(r) = records.get_mut(task_id) else {
                return;
            };
            if r.state.is_terminal() || r.kill_requested {
                return;
            }
            r.healthy = Some(false);
            r.health = Some(report);
            r.health_kill = Some(message);
            r.spec.kill_grace_period()
        };
        self.kill(task_id, grace);
    }
}

/// Whether a status recorded goes to the master now or waits (see
/// [`Tasks::record_status`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sending {
    Now,
    Held,
}

/// The meso binary the process containerizer runs as the task supervisor.
pub fn meso_path() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("meso"))
}
