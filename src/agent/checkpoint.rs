//! What the agent remembers of each task across its own restarts: the spec,
//! the state, the container handle, a kill asked for, the status updates
//! not yet acknowledged, and the health last reported. One log per agent,
//! `<work_dir>/meta/tasks.log`, to which every change of a task appends its
//! whole record as one line of JSON; a task's last line is the task, and a
//! `{"forgotten":"<id>"}` line ends it.
//!
//! ```text
//!  save(record)  ─▶ one write(2) of the line to the open log (O_APPEND)
//!                   log > 2 × its live lines (and > COMPACT_AT) ─▶ compact
//!  remove(id)    ─▶ {"forgotten":id} appended ─▶ its meta dir and sandbox go
//!  load_all()    ─▶ per-task task.json files of earlier versions, then the log
//!                   line by line ─▶ the live records ─▶ compact (tmp + rename),
//!                   the old files removed
//!  compact       ─▶ the live lines (kept in memory) to tasks.log.tmp ─▶ rename
//! ```
//!
//! Why one log rather than a file per task: creating a file is a new inode,
//! and on ext4 without a journal (this project's CI machines) every new inode
//! is first checked against the ones deleted in the last minutes, one inode
//! table block lookup each, from the start of its block group: after any
//! churn on the filesystem a task's `task.json` was the agent's costliest
//! step of a launch (a third of the agents' CPU in a 1,000-task deployment),
//! and each save paid an open, an fstat and a close on top. A launch now
//! costs the log a `write` per save and no inode.
//!
//! Why it is safe: a record is a JSON object, and no strict prefix of one
//! parses, so a line torn by a `kill -9` mid-write is skipped and the task's
//! line before it stands (as if the agent died just before the save). Loading
//! rewrites the log to the live records, so nothing is ever appended after a
//! torn line. Saves are serialized by the log's lock, so lines never
//! interleave.
//!
//! No fsync: the checkpoint must outlive the agent process (`kill -9`, a crash),
//! which the page cache does; a machine that goes down takes the tasks with it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::containerizer::ContainerHandle;
use super::topdir::create_top_dir;
use super::written_once::WrittenOnce;
use crate::model::{HealthReport, TaskSpec, TaskState, TaskStatus};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub spec: WrittenOnce<TaskSpec>,
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
    /// Its pending updates wait: a launch under way holds its STARTING back
    /// until the next status or a short while (tasks/launch.rs). Not
    /// checkpointed: a restarted agent sends whatever it has.
    #[serde(skip)]
    pub held: bool,
}

impl Record {
    pub fn new(spec: TaskSpec, state: TaskState, kill_requested: bool) -> Self {
        Self {
            spec: WrittenOnce::new(spec),
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
            held: false,
        }
    }
}

/// The log is compacted only past this size (and past twice its live lines):
/// small logs are not worth a rewrite.
pub const COMPACT_AT: u64 = 1024 * 1024;

/// A task's checkpoint in its meta dir, as earlier versions kept it.
const OLD_CHECKPOINT: &str = "task.json";

/// The line that ends a task in the log.
#[derive(Debug, Serialize, Deserialize)]
struct Forgotten {
    forgotten: String,
}

/// The agent's directories under its work dir, and its checkpoint log.
#[derive(Debug)]
pub struct Dirs {
    pub sandboxes: PathBuf,
    pub meta: PathBuf,
    log: Mutex<Log>,
}

/// The open log and what it holds that still counts.
#[derive(Debug)]
struct Log {
    path: PathBuf,
    /// None until loaded (or after a failed write): the next save loads it.
    file: Option<File>,
    len: u64,
    /// Each known task's last line, newline included: what a compaction keeps.
    live: HashMap<String, Vec<u8>>,
    live_len: u64,
}

/// The last line of a per-task checkpoint (earlier versions) that parses as
/// a record. Lines are separated by newlines; the oldest format (one record,
/// no newline) is one line.
fn last_record(bytes: &[u8]) -> Option<Record> {
    bytes
        .split(|&b| b == b'\n')
        .rev()
        .filter(|line| !line.is_empty())
        .find_map(|line| serde_json::from_slice(line).ok())
}

/// Whole or not at all: write a temporary file, rename it over `path`.
fn rewrite(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(tmp, path)
}

fn line_of<T: Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

impl Log {
    fn open_append(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.len = file.metadata()?.len();
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the checkpoint log is not open"))
    }

    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        let written = self.open_append()?.write_all(line);
        if let Err(e) = written {
            // Maybe half a line: load again (which rewrites the log) first.
            self.file = None;
            return Err(e);
        }
        self.len += line.len() as u64;
        if self.len > COMPACT_AT && self.len > 2 * self.live_len {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the log to the live lines and reopens it.
    fn compact(&mut self) -> std::io::Result<()> {
        self.file = None;
        let mut all = Vec::with_capacity(self.live_len as usize);
        for line in self.live.values() {
            all.extend_from_slice(line);
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        rewrite(&self.path, &all)?;
        self.open_append().map(|_| ())
    }

    fn keep(&mut self, id: &str, line: Vec<u8>) {
        self.live_len += line.len() as u64;
        if let Some(old) = self.live.insert(id.to_string(), line) {
            self.live_len -= old.len() as u64;
        }
    }

    fn drop_task(&mut self, id: &str) {
        if let Some(old) = self.live.remove(id) {
            self.live_len -= old.len() as u64;
        }
    }
}

impl Dirs {
    pub fn new(work_dir: &Path) -> Self {
        let meta = work_dir.join("meta");
        Self {
            sandboxes: work_dir.join("sandboxes"),
            log: Mutex::new(Log {
                path: meta.join("tasks.log"),
                file: None,
                len: 0,
                live: HashMap::new(),
                live_len: 0,
            }),
            meta: meta.join("tasks"),
        }
    }

    /// Makes the parents of the tasks' sandboxes and meta dirs, each marked
    /// so that the filesystem spreads the tasks' directories (topdir.rs).
    pub fn create_parents(&self) -> std::io::Result<()> {
        create_top_dir(&self.sandboxes)?;
        create_top_dir(&self.meta)
    }

    pub fn sandbox(&self, task_id: &str) -> PathBuf {
        self.sandboxes.join(task_id)
    }

    pub fn meta(&self, task_id: &str) -> PathBuf {
        self.meta.join(task_id)
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        let line = line_of(record)?;
        let mut log = self.log();
        if log.file.is_none() {
            // Never append to a log not read since the agent started: it may
            // end in a torn line, and its tasks must survive a compaction.
            self.load_into(&mut log);
        }
        log.keep(&record.spec.task_id, line.clone());
        log.append(&line)
    }

    /// Every checkpointed task. A record that cannot be read is reported and
    /// skipped (its sandbox stays for a human to look at), never fatal. The
    /// log is rewritten to hold just the live records.
    pub fn load_all(&self) -> Vec<Record> {
        let mut log = self.log();
        self.load_into(&mut log)
    }

    fn load_into(&self, log: &mut Log) -> Vec<Record> {
        log.file = None;
        log.live.clear();
        log.live_len = 0;
        let mut records: HashMap<String, Record> = HashMap::new();
        // Earlier versions: one file per task; the log, being newer, wins.
        let mut old_files = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.meta) {
            for entry in entries.flatten() {
                let path = entry.path().join(OLD_CHECKPOINT);
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!(path = %path.display(), error = %e, "unreadable task checkpoint skipped");
                        }
                        continue;
                    }
                };
                old_files.push(path.clone());
                match last_record(&bytes) {
                    Some(record) => {
                        records.insert(record.spec.task_id.clone(), record);
                    }
                    None => {
                        tracing::warn!(path = %path.display(), "task checkpoint without a whole record skipped");
                    }
                }
            }
        }
        match std::fs::read(&log.path) {
            Ok(bytes) => {
                for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    if let Ok(record) = serde_json::from_slice::<Record>(line) {
                        records.insert(record.spec.task_id.clone(), record);
                    } else if let Ok(gone) = serde_json::from_slice::<Forgotten>(line) {
                        records.remove(&gone.forgotten);
                    } else {
                        tracing::warn!(path = %log.path.display(), "torn or unreadable checkpoint line skipped");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %log.path.display(), error = %e, "unreadable checkpoint log");
            }
        }
        for record in records.values() {
            match line_of(record) {
                Ok(line) => log.keep(&record.spec.task_id, line),
                Err(e) => {
                    tracing::warn!(task = %record.spec.task_id, error = %e, "cannot checkpoint a task")
                }
            }
        }
        match log.compact() {
            Ok(()) => {
                // Their records are in the log now, which wins anyway; gone,
                // they cannot outlive a later `forgotten`.
                for path in old_files {
                    let _ = std::fs::remove_file(path);
                }
            }
            Err(e) => {
                tracing::warn!(path = %log.path.display(), error = %e, "cannot rewrite the checkpoint log");
            }
        }
        records.into_values().collect()
    }

    /// Forgets a task: its checkpoint and its sandbox.
    pub fn remove(&self, task_id: &str) {
        let forgotten = Forgotten {
            forgotten: task_id.to_string(),
        };
        let written = {
            let mut log = self.log();
            if log.file.is_none() {
                self.load_into(&mut log);
            }
            log.drop_task(task_id);
            line_of(&forgotten).and_then(|line| log.append(&line))
        };
        if let Err(e) = written {
            tracing::warn!(task = %task_id, error = %e, "cannot record that a task is forgotten");
        }
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
            .map(|r| (r.spec.task_id.clone(), r.state))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// What a restarted agent reads: a new Dirs on the same work dir.
    fn restarted(work: &Path) -> Vec<(String, TaskState)> {
        states(&Dirs::new(work))
    }

    fn log_path(work: &Path) -> PathBuf {
        work.join("meta").join("tasks.log")
    }

    #[test]
    fn the_parents_of_task_dirs_are_made_as_top_dirs() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        dirs.create_parents().unwrap();
        for parent in [dirs.sandbox("t1"), dirs.meta("t1")].map(|d| d.parent().unwrap().to_owned())
        {
            assert!(parent.is_dir(), "{} made", parent.display());
            let top = super::super::topdir::is_top_dir(&parent);
            assert_ne!(
                top,
                Some(false),
                "{} spreads its children",
                parent.display()
            );
        }
    }

    /// The spec written once is the spec: a second save (from the cache)
    /// reads back the same task, whole.
    #[test]
    fn a_spec_written_once_reads_back_whole() {
        let mut spec: TaskSpec =
            serde_json::from_value(serde_json::json!({"task_id": "t1", "agent_id": "a1"})).unwrap();
        spec.cpus = 0.5;
        spec.command = Some(crate::model::CommandSpec {
            value: Some("sleep \"600\"".into()),
            ..Default::default()
        });
        let record = Record::new(spec.clone(), TaskState::Running, false);
        let first = line_of(&record).unwrap();
        let second = line_of(&record).unwrap();
        assert_eq!(first, second);
        let back: Record = serde_json::from_slice(&second).unwrap();
        assert_eq!(*back.spec, spec);
        assert_eq!(back.state, TaskState::Running);
    }

    #[test]
    fn the_last_save_is_the_task_and_saves_make_no_file_per_task() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        for id in ["t1", "t2", "t3"] {
            dirs.save(&record(id, TaskState::Staging)).unwrap();
            dirs.save(&record(id, TaskState::Starting)).unwrap();
        }
        dirs.save(&record("t1", TaskState::Running)).unwrap();
        let inode =
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(log_path(work.path())).unwrap());
        dirs.save(&record("t2", TaskState::Running)).unwrap();
        let after =
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(log_path(work.path())).unwrap());
        assert_eq!(inode, after, "a save appends to the log");
        // No per-task file or directory: saves make no inode.
        assert!(!dirs.meta.exists(), "{:?}", std::fs::read_dir(&dirs.meta));
        let want = vec![
            ("t1".to_string(), TaskState::Running),
            ("t2".to_string(), TaskState::Running),
            ("t3".to_string(), TaskState::Starting),
        ];
        assert_eq!(states(&dirs), want);
        // Loading leaves the log holding the last record of each task only.
        let text = std::fs::read_to_string(log_path(work.path())).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        // And saves after a load go on from there.
        dirs.save(&record("t3", TaskState::Running)).unwrap();
        assert_eq!(restarted(work.path())[2].1, TaskState::Running);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_never_appended_to() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        dirs.save(&record("t1", TaskState::Starting)).unwrap();
        dirs.save(&record("t2", TaskState::Running)).unwrap();
        drop(dirs);
        // A `kill -9` in the middle of the next save.
        let whole = serde_json::to_vec(&record("t1", TaskState::Running)).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(log_path(work.path()))
            .unwrap();
        file.write_all(&whole[..whole.len() / 2]).unwrap();
        // The restarted agent sees the save before the tear, and its next
        // save is read back, not glued to the tear (even without a load_all).
        let dirs = Dirs::new(work.path());
        dirs.save(&record("t2", TaskState::Killed)).unwrap();
        assert_eq!(
            restarted(work.path()),
            vec![
                ("t1".into(), TaskState::Starting),
                ("t2".into(), TaskState::Killed)
            ]
        );
    }

    #[test]
    fn a_forgotten_task_stays_forgotten() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        dirs.save(&record("t1", TaskState::Finished)).unwrap();
        dirs.save(&record("t2", TaskState::Running)).unwrap();
        std::fs::create_dir_all(dirs.sandbox("t1")).unwrap();
        std::fs::create_dir_all(dirs.meta("t1")).unwrap();
        dirs.remove("t1");
        assert!(!dirs.sandbox("t1").exists() && !dirs.meta("t1").exists());
        assert_eq!(
            restarted(work.path()),
            vec![("t2".into(), TaskState::Running)]
        );
    }

    #[test]
    fn a_long_history_is_compacted_and_live_tasks_survive_it() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        let big = |id: &str, state| {
            let mut r = record(id, state);
            r.health_kill = Some("x".repeat(4096));
            r
        };
        dirs.save(&big("keep", TaskState::Running)).unwrap();
        for n in 0..600 {
            dirs.save(&big(&format!("t{}", n % 3), TaskState::Running))
                .unwrap();
        }
        for n in 0..3 {
            dirs.remove(&format!("t{n}"));
        }
        let len = std::fs::metadata(log_path(work.path())).unwrap().len();
        assert!(len <= COMPACT_AT + 8192, "{len} bytes");
        assert_eq!(
            restarted(work.path()),
            vec![("keep".into(), TaskState::Running)]
        );
    }

    #[test]
    fn checkpoints_of_earlier_versions_are_taken_over() {
        let work = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(work.path());
        // Written by an earlier meso: one file per task, appended lines...
        std::fs::create_dir_all(dirs.meta("t1")).unwrap();
        let mut lines = serde_json::to_vec(&record("t1", TaskState::Starting)).unwrap();
        lines.push(b'\n');
        lines.extend(serde_json::to_vec(&record("t1", TaskState::Running)).unwrap());
        lines.push(b'\n');
        std::fs::write(dirs.meta("t1").join(OLD_CHECKPOINT), lines).unwrap();
        // ...or one record without a newline (older still).
        std::fs::create_dir_all(dirs.meta("t2")).unwrap();
        let old = serde_json::to_vec(&record("t2", TaskState::Finished)).unwrap();
        std::fs::write(dirs.meta("t2").join(OLD_CHECKPOINT), old).unwrap();
        // Neither a whole record nor a file: skipped.
        std::fs::create_dir_all(dirs.meta("t3")).unwrap();
        std::fs::write(dirs.meta("t3").join(OLD_CHECKPOINT), b"{\"spec\":").unwrap();
        let want = vec![
            ("t1".to_string(), TaskState::Running),
            ("t2".to_string(), TaskState::Finished),
        ];
        assert_eq!(states(&dirs), want);
        // Moved into the log: the old files are gone, a new save wins.
        assert!(!dirs.meta("t1").join(OLD_CHECKPOINT).exists());
        dirs.save(&record("t1", TaskState::Killed)).unwrap();
        assert_eq!(restarted(work.path())[0].1, TaskState::Killed);
    }
}
