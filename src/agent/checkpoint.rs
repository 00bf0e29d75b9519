//! What the agent remembers of each task across its own restarts: the spec,
//! the state, the container handle, a kill asked for, the status updates
//! not yet acknowledged, and the health last reported. One file per task,
//! `<work_dir>/meta/tasks/<id>/task.json`, to which every change appends the
//! whole record as one line of JSON; the last line that parses is the task.
//!
//! Why append rather than write a new file and rename it over the old: a
//! task changes four or five times on its way to RUNNING, and each rename
//! made and deleted an inode. On ext4 without a journal (this project's CI
//! machines) every new inode is checked against the recently deleted ones,
//! so a burst of launches slowed down with its own churn.
//!
//! Why it is safe: a record is a JSON object, and no strict prefix of one
//! parses, so a line torn by a `kill -9` mid-write is skipped and the one
//! before it stands (as if the agent died just before the save). Loading
//! rewrites a file that is more than its last record, so nothing is ever
//! appended after a torn line; so does a save once the file passes
//! [`COMPACT_AT`] (write a temporary file, rename).
//!
//! No fsync: the checkpoint must outlive the agent process (`kill -9`, a crash),
//! which the page cache does; a machine that goes down takes the tasks with it.

use std::io::Write;
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

/// A task's checkpoint is rewritten whole once it grows past this (a record
/// is 1 to 3 kB: some ten saves).
pub const COMPACT_AT: u64 = 32 * 1024;

/// The agent's directories under its work dir.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub sandboxes: PathBuf,
    pub meta: PathBuf,
}

/// The last line of a checkpoint that parses as a record, and that line.
/// Lines are separated by newlines; a file of the older format (one record,
/// no newline) is one line.
fn last_record(bytes: &[u8]) -> Option<(Record, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .rev()
        .filter(|line| !line.is_empty())
        .find_map(|line| Some((serde_json::from_slice(line).ok()?, line)))
}

/// Whole or not at all: write a temporary file, rename it over `path`.
fn rewrite(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(tmp, path)
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

    fn checkpoint(&self, task_id: &str) -> PathBuf {
        self.meta(task_id).join("task.json")
    }

    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        let path = self.checkpoint(&record.spec.task_id);
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let file = std::fs::OpenOptions::new().append(true).open(&path);
        match file {
            Ok(mut file) if file.metadata()?.len() + line.len() as u64 <= COMPACT_AT => {
                file.write_all(&line)
            }
            Ok(_) => rewrite(&path, &line),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(self.meta(&record.spec.task_id))?;
                // A first line torn is no record at all, as if never saved.
                std::fs::write(&path, &line)
            }
            Err(e) => Err(e),
        }
    }

    /// Every checkpointed task. A record that cannot be read is reported and
    /// skipped (its sandbox stays for a human to look at), never fatal. A
    /// file holding more than its last record is rewritten to hold just it.
    pub fn load_all(&self) -> Vec<Record> {
        let Ok(entries) = std::fs::read_dir(&self.meta) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join("task.json");
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(path = %path.display(), error = %e, "unreadable task checkpoint skipped");
                    }
                    continue;
                }
            };
            let Some((record, line)) = last_record(&bytes) else {
                tracing::warn!(path = %path.display(), "task checkpoint without a whole record skipped");
                continue;
            };
            if bytes.len() != line.len() + 1 || bytes.last() != Some(&b'\n') {
                let mut line = line.to_vec();
                line.push(b'\n');
                if let Err(e) = rewrite(&path, &line) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot compact a task checkpoint");
                }
            }
            records.push(record);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, state: TaskState) -> Record {
        let spec = TaskSpec {
            task_id: id.into(),
            ..Default::default()
        };
        Record::new(spec, state, false)
    }

    fn states(dirs: &Dirs) -> Vec<(String, TaskState)> {
        let mut all: Vec<_> = dirs
            .load_all()
            .into_iter()
            .map(|r| (r.spec.task_id, r.state))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    #[test]
    fn the_last_save_is_the_task_and_saves_make_no_new_files() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        dirs.save(&record("t1", TaskState::Staging)).unwrap();
        let path = dirs.checkpoint("t1");
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        dirs.save(&record("t1", TaskState::Starting)).unwrap();
        dirs.save(&record("t1", TaskState::Running)).unwrap();
        let after = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        assert_eq!(inode, after, "a save appends to the task's file");
        assert_eq!(states(&dirs), vec![("t1".into(), TaskState::Running)]);
        // Loading leaves the file holding the last record only.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_never_appended_to() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        dirs.save(&record("t1", TaskState::Starting)).unwrap();
        let path = dirs.checkpoint("t1");
        // A `kill -9` in the middle of the next save.
        let whole = serde_json::to_vec(&record("t1", TaskState::Running)).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&whole[..whole.len() / 2]).unwrap();
        assert_eq!(states(&dirs), vec![("t1".into(), TaskState::Starting)]);
        // The restarted agent's next save is read back, not glued to the tear.
        dirs.save(&record("t1", TaskState::Killed)).unwrap();
        assert_eq!(states(&dirs), vec![("t1".into(), TaskState::Killed)]);
    }

    #[test]
    fn a_long_history_is_compacted_and_the_old_format_still_loads() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        for _ in 0..200 {
            dirs.save(&record("t1", TaskState::Running)).unwrap();
        }
        let len = std::fs::metadata(dirs.checkpoint("t1")).unwrap().len();
        assert!(len <= COMPACT_AT, "{len} bytes");
        // Written by an earlier meso: one record, no newline.
        std::fs::create_dir_all(dirs.meta("t2")).unwrap();
        let old = serde_json::to_vec(&record("t2", TaskState::Finished)).unwrap();
        std::fs::write(dirs.checkpoint("t2"), old).unwrap();
        // Neither a whole record nor a file: skipped.
        std::fs::create_dir_all(dirs.meta("t3")).unwrap();
        std::fs::write(dirs.checkpoint("t3"), b"{\"spec\":").unwrap();
        assert_eq!(
            states(&dirs),
            vec![
                ("t1".into(), TaskState::Running),
                ("t2".into(), TaskState::Finished)
            ]
        );
    }
}
