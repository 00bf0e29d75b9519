//! The agent's tasks: launching, watching and killing them, their status
//! updates, and finding them again after a restart.
//!
//! ```text
//!  LAUNCH ─▶ checkpoint STAGING ─▶ STARTING ─▶ sandbox + fetch ─▶ containerizer.launch
//!        ─▶ RUNNING (container IPs) ─▶ wait ─▶ FINISHED | FAILED (reason, exit code)
//!  KILL   ─▶ KILLING ─▶ containerizer.kill (SIGTERM … grace … SIGKILL) ─▶ KILLED
//!  every status ─▶ checkpoint.pending ─▶ updates.rs sends ─▶ master commits ─▶ acked
//!  restart ─▶ recover: watch each checkpointed container again (one that ended
//!             meanwhile reports how), kill containers of ours nobody knows
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::checkpoint::{Dirs, Record};
use super::containerizer::{ContainerHandle, Containerizer, Exit, LaunchRequest};
use crate::master::command::ReportedTask;
use crate::master::now_secs;
use crate::model::{ContainerKind, TaskSpec, TaskState, TaskStatus};

const SOURCE_AGENT: &str = "SOURCE_AGENT";
const SOURCE_EXECUTOR: &str = "SOURCE_EXECUTOR";

pub struct Tasks {
    pub dirs: Dirs,
    hostname: String,
    /// This agent's HTTP address, for MESOS_AGENT_ENDPOINT.
    agent_addr: String,
    process: Arc<dyn Containerizer>,
    /// The docker containerizer, or why it is disabled.
    docker: Result<Arc<dyn Containerizer>, String>,
    records: Mutex<HashMap<String, Record>>,
    /// Woken when a status update is queued.
    pub updates_queued: Notify,
    agent_id: watch::Receiver<Option<String>>,
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
            updates_queued: Notify::new(),
            agent_id,
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

    /// Starts a task the master sent. A task already known (a LAUNCH sent
    /// again after a failover) is left alone.
    pub fn launch(self: &Arc<Self>, spec: TaskSpec) {
        let id = spec.task_id.clone();
        {
            let mut records = self.records();
            if records.contains_key(&id) {
                tracing::debug!(task = %id, "LAUNCH of a task already known ignored");
                return;
            }
            let record = Record {
                spec,
                state: TaskState::Staging,
                handle: None,
                kill_requested: false,
                pending: Vec::new(),
                ended_at: None,
            };
            // Not checkpointed until STARTING (a moment later): an agent that
            // dies in between does not report the task, and the leader sends
            // the LAUNCH again.
            records.insert(id.clone(), record);
        }
        let me = self.clone();
        tokio::spawn(async move { me.run(id).await });
    }

    async fn run(self: Arc<Self>, id: String) {
        let Some(spec) = self.spec(&id) else { return };
        let uris = spec
            .command
            .as_ref()
            .map(|c| c.uris.as_slice())
            .unwrap_or(&[]);
        let preparing = match uris.len() {
            0 => "preparing the sandbox".to_string(),
            n => format!("fetching {n} URI(s) into the sandbox"),
        };
        self.set_status(&id, TaskState::Starting, |s| {
            s.source(SOURCE_EXECUTOR).message(preparing)
        });
        let sandbox = self.dirs.sandbox(&id);
        let meta = self.dirs.meta(&id);
        if let Err(e) = std::fs::create_dir_all(&sandbox) {
            let msg = format!("cannot create the sandbox {}: {e}", sandbox.display());
            return self.fail(&id, "REASON_CONTAINER_PREPARATION_FAILED", msg);
        }
        if let Err(e) = super::fetcher::fetch(uris, &sandbox).await {
            return self.fail(&id, "REASON_CONTAINER_PREPARATION_FAILED", e);
        }
        let containerizer = match self.containerizer(&spec) {
            Ok(c) => c,
            Err(why) => return self.fail(&id, "REASON_CONTAINER_LAUNCH_FAILED", why),
        };
        if self.kill_requested(&id) {
            return self.set_status(&id, TaskState::Killed, |s| {
                s.source(SOURCE_AGENT)
                    .reason("REASON_TASK_KILLED_DURING_LAUNCH")
                    .message("killed before it started")
            });
        }
        let request = LaunchRequest {
            spec: &spec,
            sandbox: &sandbox,
            env: self.task_env(&spec, &sandbox),
            meta_dir: &meta,
        };
        let launched = match containerizer.launch(request).await {
            Ok(l) => l,
            Err(e) => return self.fail(&id, e.reason, e.message),
        };
        let handle = launched.handle.clone();
        let kill_now = {
            let mut records = self.records();
            match records.get_mut(&id) {
                Some(r) => {
                    // Checkpointed with the RUNNING status just below; an
                    // agent dying in between leaves an orphan that recovery kills.
                    r.handle = Some(handle.clone());
                    r.kill_requested
                }
                None => false,
            }
        };
        let running = match &handle {
            ContainerHandle::Process { pgid, .. } => format!("running as process group {pgid}"),
            ContainerHandle::Docker { name, .. } => format!("running in container {name}"),
        };
        self.set_status(&id, TaskState::Running, |mut s| {
            s.container_ips = launched.ips.clone();
            s.source(SOURCE_EXECUTOR).message(running)
        });
        if kill_now {
            self.kill(&id, spec.kill_grace_period());
        }
        self.watch(id, handle, containerizer).await;
    }

    /// Waits for the task's end and reports it.
    async fn watch(
        self: Arc<Self>,
        id: String,
        handle: ContainerHandle,
        containerizer: Arc<dyn Containerizer>,
    ) {
        let exit = containerizer.wait(&handle).await;
        containerizer.cleanup(&handle).await;
        let killed = self.kill_requested(&id);
        self.report_exit(&id, &exit, killed);
    }

    fn report_exit(&self, id: &str, exit: &Exit, killed: bool) {
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
    pub fn kill(self: &Arc<Self>, id: &str, grace: Duration) {
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
                    let record = Record {
                        spec: TaskSpec {
                            task_id: id.to_string(),
                            agent_id,
                            ..Default::default()
                        },
                        state: TaskState::Staging,
                        handle: None,
                        kill_requested: true,
                        pending: Vec::new(),
                        ended_at: None,
                    };
                    records.insert(id.to_string(), record);
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
        self.set_status(id, TaskState::Killing, |s| {
            s.source(SOURCE_AGENT)
                .message(format!("SIGTERM, then SIGKILL after {grace:?}"))
        });
        let Some(containerizer) = self.containerizer_of(&handle) else {
            return;
        };
        tokio::spawn(async move { containerizer.kill(&handle, grace).await });
    }

    /// After a restart: watch every checkpointed container again, settle
    /// launches the restart interrupted, and kill containers of ours that no
    /// checkpoint knows.
    pub async fn recover(self: &Arc<Self>) {
        let records = self.dirs.load_all();
        let mut known: Vec<ContainerHandle> = Vec::new();
        let mut watch = Vec::new();
        let mut interrupted = Vec::new();
        {
            let mut map = self.records();
            for r in records {
                if !r.state.is_terminal() {
                    match &r.handle {
                        Some(h) => {
                            known.push(h.clone());
                            watch.push((r.spec.task_id.clone(), h.clone()));
                        }
                        None => interrupted.push(r.spec.task_id.clone()),
                    }
                }
                map.insert(r.spec.task_id.clone(), r);
            }
        }
        tracing::info!(
            watching = watch.len(),
            interrupted = interrupted.len(),
            "agent recovered its tasks"
        );
        for id in interrupted {
            self.fail(
                &id,
                "REASON_CONTAINER_LAUNCH_FAILED",
                "the agent restarted while launching the task".into(),
            );
        }
        for containerizer in self.containerizers() {
            for orphan in containerizer.ours().await {
                if !known.iter().any(|k| same_container(k, &orphan)) {
                    tracing::warn!(container = ?orphan, "killing a container no task of this agent owns");
                    containerizer.kill(&orphan, Duration::ZERO).await;
                    containerizer.cleanup(&orphan).await;
                }
            }
        }
        for (id, handle) in watch {
            let Some(containerizer) = self.containerizer_of(&handle) else {
                self.fail(
                    &id,
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    "its containerizer is disabled since the agent restarted".into(),
                );
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move { me.watch(id, handle, containerizer).await });
        }
    }

    /// Up to `limit` unacknowledged updates, each task's in order.
    pub fn pending(&self, limit: usize) -> Vec<TaskStatus> {
        self.records()
            .values()
            .flat_map(|r| r.pending.iter().cloned())
            .take(limit)
            .collect()
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
        let agent_id = self.agent_id.borrow().clone().unwrap_or_default();
        {
            let mut records = self.records();
            let Some(r) = records.get_mut(id) else { return };
            if r.state.is_terminal() {
                return;
            }
            let now = now_secs();
            let mut status = fill(TaskStatus::new(id, &agent_id, state, now));
            status.uuid = Some(uuid::Uuid::new_v4().to_string());
            r.state = state;
            if state.is_terminal() {
                r.ended_at = Some(now);
            }
            r.pending.push(status);
            self.save(r);
        }
        tracing::debug!(task = %id, %state, "task status");
        self.updates_queued.notify_one();
    }

    fn save(&self, record: &Record) {
        if let Err(e) = self.dirs.save(record) {
            tracing::error!(task = %record.spec.task_id, error = %e, "cannot checkpoint a task");
        }
    }

    fn spec(&self, id: &str) -> Option<TaskSpec> {
        self.records().get(id).map(|r| r.spec.clone())
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

    /// The task's environment, as Mesos and Marathon set it.
    fn task_env(&self, spec: &TaskSpec, sandbox: &std::path::Path) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if spec.container_kind() == ContainerKind::Mesos {
            let path = std::env::var("PATH").unwrap_or_else(|_| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            });
            env.insert("PATH".into(), path);
        }
        env.insert("MESOS_TASK_ID".into(), spec.task_id.clone());
        env.insert("MESOS_SANDBOX".into(), sandbox.display().to_string());
        env.insert("MESOS_DIRECTORY".into(), sandbox.display().to_string());
        env.insert("MESOS_AGENT_ENDPOINT".into(), self.agent_addr.clone());
        env.insert("MESOS_AGENT_ID".into(), spec.agent_id.clone());
        if let Some(fw) = &spec.framework_id {
            env.insert("MESOS_FRAMEWORK_ID".into(), fw.clone());
        }
        env.insert("HOST".into(), self.hostname.clone());
        let ports: Vec<String> = spec.ports.iter().map(|p| p.number.to_string()).collect();
        for (i, port) in spec.ports.iter().enumerate() {
            env.insert(format!("PORT{i}"), port.number.to_string());
            if let Some(name) = &port.name {
                let name: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                env.insert(format!("PORT_{name}"), port.number.to_string());
            }
        }
        if let Some(first) = ports.first() {
            env.insert("PORT".into(), first.clone());
        }
        if !ports.is_empty() {
            env.insert("PORTS".into(), ports.join(","));
        }
        if let Some(cmd) = &spec.command {
            env.extend(cmd.environment.clone());
        }
        env
    }
}

/// Two handles name the same container (a recovered handle may differ in
/// details such as cgroup paths).
fn same_container(a: &ContainerHandle, b: &ContainerHandle) -> bool {
    match (a, b) {
        (
            ContainerHandle::Process {
                shim_pid: p,
                shim_start_time: t,
                ..
            },
            ContainerHandle::Process {
                shim_pid: q,
                shim_start_time: u,
                ..
            },
        ) => p == q && t == u,
        (
            ContainerHandle::Docker {
                container_id: x,
                name: m,
            },
            ContainerHandle::Docker {
                container_id: y,
                name: n,
            },
        ) => x == y || m == n,
        _ => false,
    }
}

/// The meso binary the process containerizer runs as each task's shim.
pub fn shim_path() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("meso"))
}
