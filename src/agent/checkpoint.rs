//! What the agent remembers of each task across its own restarts: the spec,
//! the state, the container handle, a kill asked for, the status updates
//! not yet acknowledged, and the health last reported. One JSON file per task, `<work_dir>/meta/tasks/<id>/task.json`,
//! replaced atomically (write, rename) at every change.
//!
//! No fsync: the checkpoint must outlive the agent process (`kill -9`, a crash),
//! which the page cache does; a machine that goes down takes the tasks with it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::containerizer::ContainerHandle;
use crate::model::{HealthReport, TaskSpec, TaskState, TaskStatus};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub spec: TaskSpec,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<ContainerHandle>,
    #[serde(default)]
    pub kill_requested: bool,
    /// Status updates not yet acknowledged by a master, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<TaskStatus>,
    /// When the task ended (seconds since the epoch), for sandbox GC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<f64>,
    /// The container's IPs, repeated on every later RUNNING status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_ips: Vec<String>,
    /// The health last reported, and the report with it: a restarted agent
    /// does not report an unchanged verdict again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthReport>,
    /// Why the agent killed the task for failing a health check, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_kill: Option<String>,
    /// The readiness check passed and was reported: not asked again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ready: bool,
}

impl Record {
    pub fn new(spec: TaskSpec, state: TaskState, kill_requested: bool) -> Self {
        Self {
            spec,
            state,
            handle: None,
            kill_requested,
            pending: Vec::new(),
            ended_at: None,
            container_ips: Vec::new(),
            healthy: None,
            health: None,
            health_kill: None,
            ready: false,
        }
    }
}

/// The agent's directories under its work dir.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub sandboxes: PathBuf,
    pub meta: PathBuf,
}

impl Dirs {
    pub fn new(work_dir: &Path) -> Self {
        Self {
            sandboxes: work_dir.join("sandboxes"),
            meta: work_dir.join("meta").join("tasks"),
        }
    }

    pub fn sandbox(&self, task_id: &str) -> PathBuf {
        self.sandboxes.join(task_id)
    }

    pub fn meta(&self, task_id: &str) -> PathBuf {
        self.meta.join(task_id)
    }

    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        let dir = self.meta(&record.spec.task_id);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join("task.json.tmp");
        let text = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, dir.join("task.json"))
    }

    /// Every checkpointed task. A record that cannot be read is reported and
    /// skipped (its sandbox stays for a human to look at), never fatal.
    pub fn load_all(&self) -> Vec<Record> {
        let Ok(entries) = std::fs::read_dir(&self.meta) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join("task.json");
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => records.push(r),
                Err(e) if path.exists() => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable task checkpoint skipped")
                }
                Err(_) => {}
            }
        }
        records
    }

    /// Forgets a task: its checkpoint and its sandbox.
    pub fn remove(&self, task_id: &str) {
        for dir in [self.meta(task_id), self.sandbox(task_id)] {
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove");
            }
        }
    }
}
