//! The state file `meso up` leaves in its data dir while it runs:
//! `<data-dir>/meso-up.json`, with its pid and the cluster's addresses.
//!
//! ```text
//!  meso up (ready) ─write─▶ meso-up.json ◀─read─ meso down | info | status | app ...
//!  meso up (stopped cleanly) ─remove─▶ gone
//! ```
//!
//! It is how `meso up -d` knows the cluster it started is ready, how `meso
//! down` finds the process to stop, and how every client command finds the
//! API without `--master`. A `meso up` killed with SIGKILL leaves it behind, so
//! a reader checks the pid is still that `meso up` (same process start time),
//! not a later process that got the number.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The file's name inside the data dir.
pub const FILE: &str = "meso-up.json";
/// Where a detached `meso up` writes its log, beside the state file.
pub const LOG: &str = "up.log";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpState {
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat`
    /// field 22): a pid reused by another process has another one.
    pub start_ticks: u64,
    /// Absolute path of the data dir.
    pub data_dir: PathBuf,
    /// Every master's HTTP address; the first is the one to talk to.
    pub masters: Vec<String>,
    pub agents: Vec<String>,
    /// The first master's DNS address (UDP and TCP), when DNS runs.
    pub dns: Option<String>,
    /// The log of a detached `meso up`.
    pub log: Option<PathBuf>,
}

impl UpState {
    pub fn api(&self) -> &str {
        self.masters
            .first()
            .map_or("127.0.0.1:5050", String::as_str)
    }

    /// The `export` lines for shells, always in this order (`meso up`
    /// prints them when ready, `meso info` prints them again).
    pub fn exports(&self) -> String {
        let api = self.api();
        let mut out = format!("export MESOS_MASTER={api}\nexport MARATHON_URL=http://{api}\n");
        if let Some(dns) = &self.dns {
            out.push_str(&format!("export MESO_DNS={dns}\n"));
        }
        out.push_str(&format!(
            "export MESO_DATA_DIR={}\n",
            shell_word(&self.data_dir.display().to_string())
        ));
        if self.masters.len() > 1 {
            out.push_str(&format!("# masters: {}\n", self.masters.join(" ")));
        }
        out
    }

    /// Written whole to a temporary name and renamed, so a reader never sees
    /// half of it.
    pub fn write(&self) -> anyhow::Result<()> {
        let path = self.data_dir.join(FILE);
        let tmp = self.data_dir.join(format!("{FILE}.tmp"));
        let text = serde_json::to_string_pretty(self)?;
        fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// The state file in `data_dir`, if there is one.
    pub fn read(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = data_dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let state = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a meso state file", path.display()))?;
        Ok(Some(state))
    }

    /// Removes the file if it still names this process (a newer `meso up` on
    /// the same data dir may have replaced it).
    pub fn remove_if_mine(data_dir: &Path) {
        if let Ok(Some(state)) = Self::read(data_dir)
            && state.pid == std::process::id()
        {
            let _ = fs::remove_file(data_dir.join(FILE));
        }
    }

    /// Whether the process the file names is still that `meso up`.
    pub fn alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// A process's start time in clock ticks since boot, None when it is gone
/// (or a zombie: it has stopped running, only its exit is not collected).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (the state); field 22 is fields[19].
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%=".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_is_not() {
        let me = std::process::id();
        let ticks = start_ticks(me).expect("our own stat");
        let mut state = UpState {
            pid: me,
            start_ticks: ticks,
            data_dir: PathBuf::from("/tmp/x y"),
            masters: vec!["127.0.0.1:5050".into(), "127.0.0.1:5051".into()],
            agents: vec![],
            dns: Some("127.0.0.1:8053".into()),
            log: None,
        };
        assert!(state.alive());
        state.start_ticks += 1;
        assert!(!state.alive());
        assert_eq!(
            state.exports(),
            "export MESOS_MASTER=127.0.0.1:5050\n\
             export MARATHON_URL=http://127.0.0.1:5050\n\
             export MESO_DNS=127.0.0.1:8053\n\
             export MESO_DATA_DIR='/tmp/x y'\n\
             # masters: 127.0.0.1:5050 127.0.0.1:5051\n"
        );
    }
}
