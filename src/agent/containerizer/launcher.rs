//! `meso task-launcher`: one small process per agent that forks the shim of
//! every process task (shim.rs), so that a launch costs a fork of a quiet,
//! single-threaded process instead of an exec of `meso`.
//!
//! ```text
//!  agent (Launcher) ──spawn once, lazily──▶ meso task-launcher --agent-key=K
//!        ──stdin: {"id":N,"shim":ShimArgs}\n ──▶ launcher ──fork──▶ shim N
//!        ◀─stdout: "N started <shim pid> <start time> <task pid>\n" ── shim N
//!                 | "N failed <why>\n" (from the shim, or the launcher)
//!  agent gone (stdin closed) ─▶ the launcher exits; the shims go on
//!  launcher gone ─▶ launches waiting for it fail; the next one starts another
//! ```
//!
//! Why: on the machines this project measures, an exec of any glibc program
//! costs ~0.5 ms of CPU before `main` (the dynamic loader, and the CPUID
//! instructions glibc's start-up runs, each a trip to the hypervisor), and
//! `meso` twice that: a shim exec'd per task was a fifth of a 1,000-task
//! deployment's CPU and ~1.5 ms of every launch. A fork of the launcher costs
//! a tenth of that.
//!
//! The launcher lets the kernel reap its children (SIGCHLD ignored): the
//! agent watches each shim through a pidfd and reads its end from the exit
//! file, so nothing needs their exit status. Each reply is one `write` of
//! less than `PIPE_BUF` bytes, so replies of shims running at once never
//! interleave.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::oneshot;

use super::shim::{self, ShimArgs};

/// The subcommand's name, as it shows in `/proc/<pid>/cmdline`.
pub const SUBCOMMAND: &str = "task-launcher";

/// How long a shim may take to report that the task started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
pub struct LauncherArgs {
    /// The agent the tasks belong to; an agent finds its shims by it.
    #[arg(long)]
    pub agent_key: String,
}

impl LauncherArgs {
    /// The launcher's command line after the executable.
    pub fn to_args(&self) -> [String; 2] {
        [SUBCOMMAND.into(), format!("--agent-key={}", self.agent_key)]
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: u64,
    shim: ShimArgs,
}

/// One write to the launcher's stdout, shared by every shim.
fn reply(id: u64, line: &str) {
    // SAFETY: fd 1 stays open for the process's life; ManuallyDrop keeps this
    // File from closing it.
    let mut out = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let _ = out.write_all(format!("{id} {line}\n").as_bytes());
}

/// The launcher's loop; returns the process exit code.
pub fn run(_args: LauncherArgs) -> i32 {
    // SAFETY: plain syscalls; no other thread exists. Its own session: a ^C
    // meant for the agent's terminal does not reach it or its shims.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    }
    // Its shims are told apart from it by their working directory.
    let _ = std::env::set_current_dir("/");
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("meso task-launcher: bad request ignored: {e}");
                continue;
            }
        };
        // SAFETY: single-threaded, so the child may run anything; it never
        // returns into this loop.
        match unsafe { libc::fork() } {
            0 => {
                // The agent's requests are the launcher's alone.
                if let Ok(null) = std::fs::File::open("/dev/null") {
                    // SAFETY: dup2 onto stdin; `null` closes after.
                    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) };
                }
                let id = request.id;
                let code = shim::run(&request.shim, &|line| reply(id, line));
                // SAFETY: ends the child without running the launcher's exit
                // handlers or flushing buffers it inherited.
                unsafe { libc::_exit(code) }
            }
            -1 => {
                let e = std::io::Error::last_os_error();
                reply(request.id, &format!("failed cannot fork a task shim: {e}"));
            }
            _ => {}
        }
    }
    0
}

/// A shim that reported its task started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Started {
    pub shim_pid: i32,
    pub shim_start_time: u64,
    pub task_pid: i32,
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<String>>>>;

/// The agent's side: starts the launcher when first needed (and again after
/// it died), sends it requests and hands each reply to its launch.
pub struct Launcher {
    meso: PathBuf,
    agent_key: String,
    next_id: AtomicU64,
    live: tokio::sync::Mutex<Option<Live>>,
}

struct Live {
    stdin: ChildStdin,
    waiting: Waiting,
    alive: Arc<AtomicBool>,
}

impl Launcher {
    pub fn new(meso: PathBuf, agent_key: String) -> Self {
        Self {
            meso,
            agent_key,
            next_id: AtomicU64::new(1),
            live: tokio::sync::Mutex::new(None),
        }
    }

    /// Starts a shim for `shim`'s task and waits for its word.
    pub async fn start(&self, shim: ShimArgs) -> Result<Started, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut tx_slot = Some(tx);
        let mut line = serde_json::to_vec(&Request { id, shim }).map_err(|e| e.to_string())?;
        line.push(b'\n');
        // A launcher that died since the last launch shows only when it is
        // written to: then a new one gets the request.
        let mut tries = 0;
        loop {
            tries += 1;
            let mut live = self.live.lock().await;
            if !live
                .as_ref()
                .is_some_and(|l| l.alive.load(Ordering::Acquire))
            {
                *live = Some(self.spawn()?);
            }
            let Some(l) = live.as_mut() else {
                return Err("the task launcher is not running".into());
            };
            lock(&l.waiting).insert(id, tx_slot.take().ok_or("lost the reply channel")?);
            match l.stdin.write_all(&line).await {
                Ok(()) => break,
                Err(e) => {
                    l.alive.store(false, Ordering::Release);
                    tx_slot = lock(&l.waiting).remove(&id);
                    if tries == 2 || tx_slot.is_none() {
                        return Err(format!("cannot reach the task launcher: {e}"));
                    }
                }
            }
        }
        let said = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Err(_) => {
                return Err(format!(
                    "the task shim did not report within {} s",
                    START_TIMEOUT.as_secs()
                ));
            }
            Ok(Err(_)) => return Err("the task launcher ended before the task started".into()),
            Ok(Ok(said)) => said,
        };
        parse_reply(&said)
    }

    fn spawn(&self) -> Result<Live, String> {
        let args = LauncherArgs {
            agent_key: self.agent_key.clone(),
        };
        let mut child = Command::new(&self.meso)
            .args(args.to_args())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run the task launcher {}: {e}", self.meso.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the task launcher's pipes are missing".into());
        };
        let waiting = Waiting::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (w, a) = (waiting.clone(), alive.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Some((id, said)) = line.split_once(' ') else {
                    continue;
                };
                let waiter = id.parse().ok().and_then(|id: u64| lock(&w).remove(&id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(said.to_string());
                }
            }
            // Every shim has let go of the pipe and the launcher is gone:
            // whoever still waits hears so (their senders drop).
            a.store(false, Ordering::Release);
            lock(&w).clear();
            let _ = child.wait().await;
        });
        Ok(Live {
            stdin,
            waiting,
            alive,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn parse_reply(said: &str) -> Result<Started, String> {
    let bad = || format!("the task shim said {said:?}");
    match said.split_once(' ') {
        Some(("started", rest)) => {
            let mut fields = rest.split(' ');
            let mut next = || fields.next().ok_or_else(bad);
            let shim_pid = next()?.parse().map_err(|_| bad())?;
            let shim_start_time = next()?.parse().map_err(|_| bad())?;
            let task_pid: i32 = next()?.parse().map_err(|_| bad())?;
            if task_pid <= 1 {
                return Err(bad());
            }
            Ok(Started {
                shim_pid,
                shim_start_time,
                task_pid,
            })
        }
        Some(("failed", why)) => Err(format!("cannot start the task: {why}")),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_back() {
        assert_eq!(
            parse_reply("started 10 4242 11"),
            Ok(Started {
                shim_pid: 10,
                shim_start_time: 4242,
                task_pid: 11
            })
        );
        assert_eq!(
            parse_reply("failed no such file: /nope"),
            Err("cannot start the task: no such file: /nope".into())
        );
        assert!(parse_reply("started 10 x 11").is_err());
        assert!(parse_reply("started 10 4242 1").is_err());
        assert!(parse_reply("hello").is_err());
    }
}
