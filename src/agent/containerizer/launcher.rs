//! The agent's side of its task supervisor (`meso task-launcher`,
//! supervisor.rs): started when first needed, and again after it died; each
//! launch is one request line, answered by one reply line.
//!
//! ```text
//!  agent (Launcher) ──spawn once, lazily──▶ meso task-launcher --agent-key=K
//!        ──stdin: {"id":N,"task":TaskArgs}\n ──▶ supervisor ──clone──▶ task
//!        ◀─stdout: "N started <task pid> <start time>\n" | "N failed <why>\n"
//!        ◀─stdout: "ended <pid> <start time> {"code":N}\n" ─▶ the task's
//!          watch (`end_of`)
//!          ─▶ the agent records the end ─▶ stdin: "reap <pid> <start time>\n"
//!          (`recorded`)
//!  agent gone (stdin closed) ─▶ the supervisor writes down the ends it told
//!        and lets go of the agent's pipes, starts nothing more, and exits
//!        after its last task
//!  supervisor gone ─▶ launches and watches waiting for it fail; the next
//!        launch starts another
//! ```
//!
//! Why not `meso` exec'd per task: on the machines this project measures, an
//! exec of any glibc program costs ~0.5 ms of CPU before `main` (the dynamic
//! loader, and the CPUID instructions glibc's start-up runs, each a trip to
//! the hypervisor), and `meso` twice that.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::oneshot;

use super::supervisor::{self, ENDED, ExitRecord, REAP, Request, TaskArgs};

/// The subcommand's name, as it shows in `/proc/<pid>/cmdline`.
pub const SUBCOMMAND: &str = "task-launcher";

/// How long the supervisor may take to report that a task started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
pub struct LauncherArgs {
    /// The agent the tasks belong to; an agent finds its tasks by it.
    #[arg(long)]
    pub agent_key: String,
}

impl LauncherArgs {
    /// The launcher's command line after the executable.
    pub fn to_args(&self) -> [String; 2] {
        [SUBCOMMAND.into(), format!("--agent-key={}", self.agent_key)]
    }
}

/// The supervisor's loop; returns the process exit code.
pub fn run(_args: LauncherArgs) -> i32 {
    supervisor::run()
}

/// A task the supervisor reported started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Started {
    /// The task's first process, the leader of its process group.
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat).
    pub start_time: u64,
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<String>>>>;

/// The live supervisor's tasks by pid, from their start until their end is
/// handed to their watch.
type Ends = Arc<Mutex<HashMap<i32, End>>>;

struct End {
    start_time: u64,
    state: EndState,
}

enum EndState {
    Running,
    Watched(oneshot::Sender<ExitRecord>),
    Ended(ExitRecord),
}

/// The agent's side: starts the supervisor when first needed (and again
/// after it died), sends it requests and hands each reply to its launch.
pub struct Launcher {
    meso: PathBuf,
    agent_key: String,
    next_id: AtomicU64,
    live: tokio::sync::Mutex<Option<Live>>,
    /// [`START_TIMEOUT`], shorter in tests.
    start_timeout: Duration,
}

struct Live {
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    waiting: Waiting,
    ends: Ends,
    alive: Arc<AtomicBool>,
}

impl Launcher {
    pub fn new(meso: PathBuf, agent_key: String) -> Self {
        Self {
            meso,
            agent_key,
            next_id: AtomicU64::new(1),
            live: tokio::sync::Mutex::new(None),
            start_timeout: START_TIMEOUT,
        }
    }

    /// Has the supervisor start `task`, and waits for its word.
    pub async fn start(&self, task: TaskArgs) -> Result<Started, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut line = serde_json::to_vec(&Request { id, task }).map_err(|e| e.to_string())?;
        line.push(b'\n');
        // A launcher that died since the last launch shows only when it is
        // written to: then a new one gets the request.
        let mut tries = 0;
        let (rx, waiting) = loop {
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
            // A channel of its own each try: one that died meanwhile may
            // have dropped the last try's.
            let (tx, rx) = oneshot::channel();
            lock(&l.waiting).insert(id, tx);
            match l.stdin.lock().await.write_all(&line).await {
                Ok(()) => break (rx, l.waiting.clone()),
                Err(e) => {
                    l.alive.store(false, Ordering::Release);
                    lock(&l.waiting).remove(&id);
                    if tries == 2 {
                        return Err(format!("cannot reach the task launcher: {e}"));
                    }
                }
            }
        };
        let said = match tokio::time::timeout(self.start_timeout, rx).await {
            Err(_) => {
                // A reply that comes after this finds no one waiting, and
                // its task is killed (`spawn`'s reader): the launch failed.
                lock(&waiting).remove(&id);
                return Err(format!(
                    "the task launcher did not report within {} s",
                    self.start_timeout.as_secs_f64()
                ));
            }
            Ok(Err(_)) => return Err("the task launcher ended before the task started".into()),
            Ok(Ok(said)) => said,
        };
        parse_reply(&said)
    }

    /// The end of a task the live supervisor started, once it comes; None
    /// for a task it does not know (one of an earlier agent's supervisors:
    /// process.rs then waits on /proc and the exit file). The sender drops
    /// if the supervisor dies first.
    pub async fn end_of(&self, pid: i32, start_time: u64) -> Option<oneshot::Receiver<ExitRecord>> {
        let live = self.live.lock().await;
        let live = live.as_ref().filter(|l| l.alive.load(Ordering::Acquire))?;
        let mut ends = lock(&live.ends);
        let end = ends.get_mut(&pid).filter(|e| e.start_time == start_time)?;
        let (tx, rx) = oneshot::channel();
        match std::mem::replace(&mut end.state, EndState::Running) {
            EndState::Ended(record) => {
                ends.remove(&pid);
                let _ = tx.send(record);
            }
            EndState::Running | EndState::Watched(_) => end.state = EndState::Watched(tx),
        }
        Some(rx)
    }

    /// The agent has recorded the end of the task `pid` (started at
    /// `start_time`): its supervisor may reap it.
    pub async fn recorded(&self, pid: i32, start_time: u64) {
        let stdin = match self.live.lock().await.as_ref() {
            Some(l) if l.alive.load(Ordering::Acquire) => l.stdin.clone(),
            _ => return,
        };
        let _ = stdin
            .lock()
            .await
            .write_all(format!("{REAP} {pid} {start_time}\n").as_bytes())
            .await;
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
        let ends = Ends::default();
        let alive = Arc::new(AtomicBool::new(true));
        let stdin = Arc::new(tokio::sync::Mutex::new(stdin));
        // Weak: the supervisor must see its stdin close when the agent lets
        // go of the launcher, while this reader still reads.
        let input = Arc::downgrade(&stdin);
        let (w, e, a) = (waiting.clone(), ends.clone(), alive.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(end) = line.strip_prefix(ENDED).map(str::trim_start) {
                    let unwatched = hand_over_end(&e, end);
                    if let (Some((pid, start)), Some(input)) = (unwatched, input.upgrade()) {
                        // Nobody will record it (its launch was reported
                        // failed): reaped at once.
                        let reap = format!("{REAP} {pid} {start}\n");
                        let _ = input.lock().await.write_all(reap.as_bytes()).await;
                    }
                    continue;
                }
                let Some((id, said)) = line.split_once(' ') else {
                    continue;
                };
                let waiter = id.parse().ok().and_then(|id: u64| lock(&w).remove(&id));
                match waiter {
                    Some(waiter) => {
                        // Known before its launch hears of it: its end, which
                        // may come next, finds its place.
                        if let Ok(started) = parse_reply(said) {
                            lock(&e).insert(
                                started.pid,
                                End {
                                    start_time: started.start_time,
                                    state: EndState::Running,
                                },
                            );
                        }
                        let _ = waiter.send(said.to_string());
                    }
                    // Its launch gave up waiting and was reported failed:
                    // the task must not run unwatched.
                    None => {
                        if let Ok(late) = parse_reply(said) {
                            super::process::kill_late_start(late);
                        }
                    }
                }
            }
            // The supervisor is gone: whoever still waits hears so (their
            // senders drop).
            a.store(false, Ordering::Release);
            lock(&w).clear();
            lock(&e).clear();
            let _ = child.wait().await;
        });
        Ok(Live {
            stdin,
            waiting,
            ends,
            alive,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands `<pid> <start time> <record>` (an "ended" line) to the task's
/// watch, or keeps it for the watch to come; a task nobody knows, to be
/// reaped at once.
fn hand_over_end(ends: &Ends, end: &str) -> Option<(i32, u64)> {
    let parsed = (|| {
        let mut words = end.splitn(3, ' ');
        let pid = words.next()?.parse::<i32>().ok()?;
        let start_time = words.next()?.parse::<u64>().ok()?;
        let record = serde_json::from_str::<ExitRecord>(words.next()?).ok()?;
        Some((pid, start_time, record))
    })();
    let Some((pid, start_time, record)) = parsed else {
        tracing::warn!(line = %end, "the task launcher's word on an end is unreadable");
        return None;
    };
    let mut ends = lock(ends);
    let Some(known) = ends.get_mut(&pid).filter(|e| e.start_time == start_time) else {
        return Some((pid, start_time));
    };
    match std::mem::replace(&mut known.state, EndState::Ended(record)) {
        EndState::Watched(watch) => {
            ends.remove(&pid);
            let _ = watch.send(record);
        }
        EndState::Running | EndState::Ended(_) => {}
    }
    None
}

fn parse_reply(said: &str) -> Result<Started, String> {
    let bad = || format!("the task launcher said {said:?}");
    match said.split_once(' ') {
        Some(("started", rest)) => {
            let (pid, start_time) = rest.split_once(' ').ok_or_else(bad)?;
            let pid: i32 = pid.parse().map_err(|_| bad())?;
            let start_time = start_time.parse().map_err(|_| bad())?;
            if pid <= 1 {
                return Err(bad());
            }
            Ok(Started { pid, start_time })
        }
        Some(("failed", why)) => Err(format!("cannot start the task: {why}")),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A launch that gives up waiting (the supervisor stalled) fails, and
    /// the task that starts after all is killed and reaped at once: nobody
    /// watches it. The supervisor here is a script that answers late, with
    /// a real process, and then reports its end as the real one does.
    #[tokio::test]
    async fn a_task_started_after_its_launch_gave_up_is_killed_and_reaped() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let said = dir.path().join("reap");
        let script = dir.path().join("late-supervisor");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
read request
setsid sleep 600 </dev/null >/dev/null 2>&1 &
pid=$!
sleep 0.5
echo "1 started $pid $(cut -d' ' -f22 /proc/$pid/stat)"
start=$(cut -d' ' -f22 /proc/$pid/stat)
wait $pid
echo "{ENDED} $pid $start {{\"signal\":9}}"
read reap
echo "$reap" > {said}
"#,
                said = said.display()
            ),
        )
        .expect("the script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut launcher = Launcher::new(script, "test".into());
        launcher.start_timeout = Duration::from_millis(100);
        let task = TaskArgs {
            sandbox: dir.path().into(),
            exit_file: dir.path().join("exit.json"),
            cgroups: Vec::new(),
            program: None,
            argv: vec!["sleep".into(), "600".into()],
            env: Default::default(),
            user: None,
        };
        let failed = launcher.start(task).await;
        assert!(
            failed.as_ref().is_err_and(|e| e.contains("did not report")),
            "{failed:?}"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let reaped = loop {
            if let Ok(line) = std::fs::read_to_string(&said) {
                break line;
            }
            assert!(std::time::Instant::now() < deadline, "never reaped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let words: Vec<&str> = reaped.split_whitespace().collect();
        assert_eq!(words.first(), Some(&REAP), "{reaped}");
        assert_eq!(words.len(), 3, "{reaped}");
    }

    #[test]
    fn replies_are_read_back() {
        assert_eq!(
            parse_reply("started 10 4242"),
            Ok(Started {
                pid: 10,
                start_time: 4242,
            })
        );
        assert_eq!(
            parse_reply("failed no such file: /nope"),
            Err("cannot start the task: no such file: /nope".into())
        );
        assert!(parse_reply("started 10 x").is_err());
        assert!(parse_reply("started 1 4242").is_err());
        assert!(parse_reply("started 10").is_err());
        assert!(parse_reply("hello").is_err());
    }
}
