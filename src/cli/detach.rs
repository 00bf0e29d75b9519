//! `meso up -d`: the same `meso up`, run as a child in a session of its own,
//! and waited for until it is ready or has failed.
//!
//! ```text
//!  meso up -d ──spawn (setsid, same args, MESO_UP_CHILD=1)──▶ meso up
//!      │                                   stderr ─▶ <data-dir>/up.log
//!      │ polls:  child exited? ─▶ its last `error:` line, exit 1
//!      │         meso-up.json names the child? ─▶ print its export lines, exit 0
//!      ▼
//!  returns; the child keeps running until `meso down` (SIGTERM)
//! ```
//!
//! A re-exec rather than a fork: the parent already runs a tokio runtime,
//! and a forked copy of a multi-threaded process may only call
//! async-signal-safe functions. The child is told by an environment variable,
//! not a flag, so its command line is the one the user typed.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::state_file::{self, UpState};
use crate::config::Settings;

/// Set in the detached child's environment.
pub const CHILD_ENV: &str = "MESO_UP_CHILD";

/// How long the child may take to get ready: far above the ~300 ms it takes,
/// for a loaded machine or a slow disk.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let data_dir = &settings.data_dir;
    if let Some(state) = UpState::read(data_dir)?.filter(UpState::alive) {
        bail!(
            "a cluster is already running from data dir {} (pid {}, API {}); stop it with `meso down`",
            data_dir.display(),
            state.pid,
            state.api()
        );
    }
    if data_dir.exists() && !data_dir.is_dir() {
        bail!("data dir {} is not a directory", data_dir.display());
    }
    fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let log_path = data_dir.join(state_file::LOG);
    let log = fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the meso executable")?;
    let mut command = Command::new(exe);
    command
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    // SAFETY: setsid is async-signal-safe, and nothing else runs between
    // fork and exec. A session of its own: the terminal's Ctrl-C and hangup
    // do not reach the cluster.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .context("cannot start meso up in the background")?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            let reason = text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .map(str::to_string)
                .unwrap_or_else(|| format!("it exited with {status}"));
            bail!(
                "{reason} (the cluster did not start; log: {})",
                log_path.display()
            );
        }
        if let Ok(Some(state)) = UpState::read(data_dir)
            && state.pid == pid
        {
            print!("{}", state.exports());
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the cluster was not ready within {} s and was stopped; log: {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
