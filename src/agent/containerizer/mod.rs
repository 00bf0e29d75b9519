//! Containerizers: how a task's process or container is started, watched,
//! killed and found again after an agent restart. One trait, two kinds:
//!
//! ```text
//!  tasks/   ── launch(LaunchRequest) ──▶ Containerizer ──▶ Launched{handle, ips}
//!           ── wait(handle) ───────────▶   (resolves when it ends: Exit)
//!           ── kill(handle, grace) ────▶   SIGTERM … grace … SIGKILL
//!           ── ours() ─────────────────▶   handles of everything of ours running
//!  health/  ── exec(handle, command) ──▶   `/bin/sh -c` next to the task (exec.rs:
//!                                          on the host; docker: in the container)
//!  process.rs: every task started and reaped by the agent's supervisor
//!              (supervisor.rs, spoken to by launcher.rs), in its own process
//!              group, cgroups (cgroups.rs) when the host has them
//!  docker/:    bollard; containers named `meso-<task_id>`, labelled
//! ```
//!
//! The handle is checkpointed by the agent, so everything a containerizer needs
//! to find a task again after `kill -9` of the agent is in it.

pub mod cgroups;
pub mod docker;
pub mod exec;
pub mod launcher;
pub mod process;
mod procfs;
pub mod simple_command;
mod spawn;
pub mod supervisor;
pub mod user;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::model::TaskSpec;
pub use exec::{ExecOutput, ExecRequest};

/// Everything a containerizer needs to start one task.
pub struct LaunchRequest<'a> {
    pub spec: &'a TaskSpec,
    /// The task's sandbox: exists, holds the fetched URIs; `stdout` and
    /// `stderr` go here.
    pub sandbox: &'a Path,
    /// The complete environment of the task (MESOS_*, HOST, PORT*, the task's own).
    pub env: BTreeMap<String, String>,
    /// The agent's own directory for this task's metadata (not user-visible),
    /// named after the task id: a process task's exit file is written here
    /// (made then) if it ends while no agent is there to be told.
    pub meta_dir: &'a Path,
}

/// Where a running task is, in a form that survives an agent restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContainerHandle {
    Process {
        /// The task's first process and its start time (field 22 of
        /// /proc/PID/stat), so a recycled pid is never mistaken for it. (The
        /// names of 2026-12-06 and before, when each task had a shim, are
        /// read too: a shim also wrote the exit file before it ended.)
        #[serde(alias = "shim_pid")]
        pid: i32,
        #[serde(alias = "shim_start_time")]
        start_time: u64,
        /// The task's process group: its first process's pid.
        pgid: i32,
        /// Where the supervisor writes the task's exit status; empty in a
        /// handle found in /proc (`ours`), which is only ever killed.
        exit_file: PathBuf,
        /// The task's cgroup directories, when cgroups are in use.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cgroups: Vec<PathBuf>,
    },
    Docker {
        container_id: String,
        name: String,
    },
}

/// A task that started.
#[derive(Debug, Clone)]
pub struct Launched {
    pub handle: ContainerHandle,
    /// The container's IPs when it has its own (docker BRIDGE); else empty.
    pub ips: Vec<String>,
}

/// How a task ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exit {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal, when a signal ended it.
    pub signal: Option<i32>,
    /// A Mesos reason when the containerizer knows better than the exit code,
    /// e.g. `REASON_CONTAINER_LIMITATION_MEMORY`.
    pub reason: Option<String>,
    /// What a user reads: "exited with status 1", "killed by signal 9 ...".
    pub message: String,
}

impl Exit {
    pub fn succeeded(&self) -> bool {
        self.code == Some(0) && self.reason.is_none()
    }
}

/// Why a launch failed; the task ends `TASK_FAILED` with `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchError {
    /// `REASON_CONTAINER_LAUNCH_FAILED`, `REASON_CONTAINER_PREPARATION_FAILED`, ...
    pub reason: &'static str,
    pub message: String,
}

impl LaunchError {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

pub trait Containerizer: Send + Sync {
    /// Starts the task. Returns once it runs (its program was exec'd, its
    /// container started) or failed to.
    fn launch<'a>(&'a self, req: LaunchRequest<'a>)
    -> BoxFuture<'a, Result<Launched, LaunchError>>;

    /// Resolves when the task has ended, with how. Works on a handle from an
    /// earlier agent (after a restart); a task already gone resolves at once,
    /// with whatever is still known of its end.
    fn wait<'a>(&'a self, handle: &'a ContainerHandle) -> BoxFuture<'a, Exit>;

    /// SIGTERM to the whole task, SIGKILL after `grace` if it still runs.
    /// Returns when the signals are sent (the end shows in `wait`).
    fn kill<'a>(&'a self, handle: &'a ContainerHandle, grace: Duration) -> BoxFuture<'a, ()>;

    /// Everything of this agent's that this containerizer finds running, so
    /// that the agent can kill what it does not know (orphans).
    fn ours(&self) -> BoxFuture<'_, Vec<ContainerHandle>>;

    /// The task's end is recorded (checkpointed with its last status): what
    /// kept it for the agent may let it go (a process task's supervisor
    /// reaps it). Nothing by default.
    fn end_recorded<'a>(&'a self, _handle: &'a ContainerHandle) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Frees what the task held after it ended (cgroups, the container).
    fn cleanup<'a>(&'a self, handle: &'a ContainerHandle) -> BoxFuture<'a, ()>;

    /// Runs `/bin/sh -c <command>` next to the running task (a COMMAND health
    /// check) within `req.timeout`. By default on the host, with the task's
    /// environment, in its sandbox.
    fn exec<'a>(
        &'a self,
        _handle: &'a ContainerHandle,
        req: ExecRequest<'a>,
    ) -> BoxFuture<'a, Result<ExecOutput, String>> {
        Box::pin(exec::host_exec(req))
    }
}
