//! The process containerizer: each task is started and reaped by the agent's
//! task supervisor (supervisor.rs, through launcher.rs), in its own process
//! group, in cgroups (cgroups.rs) when the host has them.
//!
//! ```text
//!  launch: cgroups.create ─▶ supervisor: start the task (env = the task's)
//!          ─▶ "started <task pid> <start time>"
//!          ─▶ handle {task pid + start time, pgid = task pid, exit file, cgroups}
//!  wait:   the live supervisor's "ended" line (launcher.rs) + the cgroup's
//!          OOM count ─▶ Exit ─▶ (the end recorded) end_recorded: "reap"
//!          a task of an earlier agent's supervisor: pidfd of the task (or
//!          /proc polled) ─▶ ended ─▶ the exit file, once the supervisor has
//!          written it (before it reaps the task)
//!  kill:   SIGTERM -pgid ─▶ task gone, or grace over ─▶ SIGKILL -pgid
//!          ─▶ SIGKILL whatever is still in the cgroups
//!  ours:   /proc/*: children of session leaders with
//!          `task-launcher --agent-key=<ours>` ─▶ handles
//!  cleanup: SIGKILL what is left in the cgroups, remove them
//! ```
//!
//! Nothing here needs the task to be our child (it is the supervisor's): wait,
//! kill and ours work the same before and after an agent restart. Every
//! signal is sent only while the task's pid still has the start time the
//! handle recorded: a pid the kernel gave to another process since is never
//! signalled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::unix::AsyncFd;

use super::cgroups::{self, Cgroups, Limits};
use super::launcher::{self, Launcher};
use super::procfs::{self, ProcStat, proc_stat};
use super::simple_command;
use super::supervisor::{ExitRecord, TaskArgs};
use super::{ContainerHandle, Containerizer, Exit, LaunchError, LaunchRequest, Launched};
use crate::model::TaskSpec;

const LAUNCH_FAILED: &str = "REASON_CONTAINER_LAUNCH_FAILED";
const MEMORY_LIMIT: &str = "REASON_CONTAINER_LIMITATION_MEMORY";
const SUPERVISOR_GONE: &str = "REASON_EXECUTOR_TERMINATED";

/// How often /proc is looked at when the kernel has no pidfd (before 5.3).
const POLL: Duration = Duration::from_millis(100);
/// How often a task that ended is looked at until its end is recorded: the
/// supervisor writes the exit file a moment after the end, or later when a
/// burst of tasks ends at once, so the wait doubles from the first look to
/// the last.
const RECORD_FIRST_LOOK: Duration = Duration::from_millis(1);
const RECORD_LAST_LOOK: Duration = Duration::from_millis(64);

pub struct ProcessContainerizer {
    launcher: Launcher,
    agent_key: String,
    pub cgroups: Option<Cgroups>,
}

impl ProcessContainerizer {
    /// `meso` is the executable the launcher runs as (`meso task-launcher`).
    pub fn new(meso: PathBuf, agent_key: String, cgroups: Option<Cgroups>) -> Self {
        Self {
            launcher: Launcher::new(meso, agent_key.clone()),
            agent_key,
            cgroups,
        }
    }

    async fn launch_task(&self, req: LaunchRequest<'_>) -> Result<Launched, LaunchError> {
        let fail = |message: String| LaunchError::new(LAUNCH_FAILED, message);
        let mut env = req.env;
        let shell_line = req
            .spec
            .command
            .as_ref()
            .filter(|c| c.shell)
            .and_then(|c| c.value.as_deref());
        let (program, argv) =
            match shell_line.and_then(|line| simple_command::direct(line, &env, req.sandbox)) {
                Some((program, argv)) => {
                    // What sh would have set before running it.
                    env.insert("PWD".into(), req.sandbox.display().to_string());
                    (Some(program), argv)
                }
                None => command_line(req.spec).map_err(fail)?,
            };
        // The directory is made only if an exit file is ever written (the
        // supervisor tells the agent of the end instead while it is there).
        let exit_file = req.meta_dir.join("exit.json");
        match std::fs::remove_file(&exit_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(fail(format!(
                    "cannot remove a stale {}: {e}",
                    exit_file.display()
                )));
            }
        }
        let user = match req.spec.command.as_ref().and_then(|c| c.user.as_deref()) {
            Some(name) => {
                let user = super::user::resolve(name).map_err(fail)?;
                super::user::check_reachable(req.sandbox, &user).map_err(fail)?;
                super::user::chown_sandbox(req.sandbox, &user).map_err(fail)?;
                Some(user)
            }
            None => None,
        };
        let cgroup_dirs = match &self.cgroups {
            Some(cgroups) => {
                let limits = Limits::from_task(req.spec.mem, req.spec.cpus);
                cgroups
                    .create(&self.agent_key, &req.spec.task_id, limits)
                    .map_err(|e| fail(format!("cannot make the task's cgroups: {e}")))?
            }
            None => Vec::new(),
        };
        let args = TaskArgs {
            sandbox: req.sandbox.to_path_buf(),
            exit_file: exit_file.clone(),
            cgroups: cgroup_dirs.clone(),
            program,
            argv,
            env,
            user,
        };
        match self.launcher.start(args).await {
            Ok(started) => Ok(Launched {
                handle: ContainerHandle::Process {
                    pid: started.pid,
                    start_time: started.start_time,
                    pgid: started.pid,
                    exit_file,
                    cgroups: cgroup_dirs,
                },
                ips: Vec::new(),
            }),
            Err(message) => {
                cgroup_dirs.iter().for_each(|dir| cgroups::remove(dir));
                Err(fail(message))
            }
        }
    }
}

/// The program and argv of a task: `shell` (the default) runs `value` with
/// `/bin/sh -c`, ignoring `arguments` as Mesos does; otherwise `value` is the
/// program and `arguments` its argv (argv[0] included), `[value]` when there
/// are none; without a `value`, `arguments[0]` is the program.
fn command_line(spec: &TaskSpec) -> Result<(Option<PathBuf>, Vec<String>), String> {
    let none = || "command.value: a process task needs a command".to_string();
    let command = spec.command.as_ref().ok_or_else(none)?;
    match (&command.value, command.shell) {
        (Some(value), true) => Ok((
            Some("/bin/sh".into()),
            vec!["sh".into(), "-c".into(), value.clone()],
        )),
        (Some(value), false) if command.arguments.is_empty() => {
            Ok((Some(value.into()), vec![value.clone()]))
        }
        (Some(value), false) => Ok((Some(value.into()), command.arguments.clone())),
        (None, _) if !command.arguments.is_empty() => Ok((None, command.arguments.clone())),
        (None, _) => Err(none()),
    }
}

/// Whether the task of a handle still runs: same pid, same start time, not a
/// zombie waiting for its parent.
fn task_alive(pid: i32, start_time: u64) -> bool {
    proc_stat(pid).is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X'))
}

/// Whether the task of a handle has ended and waits for its supervisor to
/// record its end and reap it. A task whose supervisor died waits for init
/// instead (which may never reap it): its end will never be recorded.
fn task_awaits_its_supervisor(pid: i32, start_time: u64) -> bool {
    proc_stat(pid).is_some_and(|s| {
        s.start_time == start_time && matches!(s.state, 'Z' | 'X') && is_supervisor(s.ppid)
    })
}

/// SIGKILLs the group of a task that started after its launch had given up,
/// if it is still the process that started.
pub(super) fn kill_late_start(late: launcher::Started) {
    if task_alive(late.pid, late.start_time) {
        tracing::warn!(
            pid = late.pid,
            "killing a task that started after its launch timed out"
        );
        signal_group(late.pid, libc::SIGKILL);
    }
}

/// Whether a process is a task supervisor (of any agent).
fn is_supervisor(pid: i32) -> bool {
    procfs::args_of(pid)
        .is_some_and(|args| args.split(|b| *b == 0).next() == Some(launcher::SUBCOMMAND.as_bytes()))
}

/// Resolves once the task has ended.
async fn until_gone(pid: i32, start_time: u64) {
    if let Ok(pidfd) = procfs::pidfd_open(pid) {
        // Checked after the open: a pidfd of a pid that has since changed
        // hands (or of no process) is caught here, and one /proc read is
        // all a watch costs.
        if !task_alive(pid, start_time) {
            return;
        }
        // SAFETY: an OwnedFd stays open, and the same descriptor, while the
        // AsyncFd owns it.
        let registered =
            unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) };
        if let Ok(fd) = registered {
            // A pidfd turns readable when its process has exited.
            if fd.readable().await.is_ok() {
                return;
            }
        }
    }
    while task_alive(pid, start_time) {
        tokio::time::sleep(POLL).await;
    }
}

/// The exit file of a task that has ended, once its supervisor has written
/// it; None when the task was reaped without one (the supervisor died).
async fn exit_record(pid: i32, start_time: u64, exit_file: &Path) -> Option<ExitRecord> {
    let read = || {
        std::fs::read(exit_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ExitRecord>(&bytes).ok())
    };
    let mut pause = RECORD_FIRST_LOOK;
    loop {
        // Mostly there already: the supervisor is quick.
        if let Some(record) = read() {
            return Some(record);
        }
        // In this order: the file is written before the task is reaped, so
        // a task seen reaped (or orphaned) with no file after it will never
        // have one.
        let awaited = task_awaits_its_supervisor(pid, start_time);
        if let Some(record) = read() {
            return Some(record);
        }
        if !awaited {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RECORD_LAST_LOOK);
    }
}

/// How a task ended, from what the supervisor and the cgroups recorded.
fn exit_of(record: Option<ExitRecord>, cgroup_dirs: &[PathBuf]) -> Exit {
    let Some(record) = record else {
        return Exit {
            reason: Some(SUPERVISOR_GONE.into()),
            message: "the task's supervisor (the agent's task launcher) vanished before \
                      it recorded how the task ended"
                .into(),
            ..Exit::default()
        };
    };
    let mut exit = match record {
        ExitRecord::Code(code) => Exit {
            code: Some(code),
            message: match code {
                126 => format!("exited with status {code} (command not executable)"),
                127 => format!("exited with status {code} (command not found)"),
                _ => format!("exited with status {code}"),
            },
            ..Exit::default()
        },
        ExitRecord::Signal(signal) => Exit {
            signal: Some(signal),
            message: match signal_name(signal) {
                Some(name) => format!("killed by signal {signal} ({name})"),
                None => format!("killed by signal {signal}"),
            },
            ..Exit::default()
        },
    };
    let oom = cgroup_dirs
        .iter()
        .find(|dir| cgroups::oom_kills(dir).is_some_and(|n| n > 0));
    if let Some(dir) = oom {
        let limit = match cgroups::memory_limit(dir) {
            Some(bytes) => format!("its memory limit of {} MB", bytes / (1024 * 1024)),
            None => "its memory limit".to_string(),
        };
        exit.reason = Some(MEMORY_LIMIT.into());
        exit.message = format!(
            "the task used more than {limit}; the kernel's OOM killer ended it ({})",
            exit.message
        );
    }
    exit
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

/// Signals a task's process group; never group 0 or 1 (ours, everything).
fn signal_group(pgid: i32, signal: i32) {
    if pgid > 1 {
        // SAFETY: kill(2); ESRCH (the group is empty) is fine.
        unsafe { libc::kill(-pgid, signal) };
    }
}

/// SIGKILLs everything in the cgroups until they are empty (a process may
/// fork while we read the list). Membership is proof the process is the
/// task's, whatever happened to its supervisor.
fn kill_cgroups(dirs: &[PathBuf]) {
    for _ in 0..20 {
        let pids: Vec<i32> = dirs.iter().flat_map(|dir| cgroups::procs(dir)).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids.into_iter().filter(|pid| *pid > 1) {
            // SAFETY: kill(2) of one pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The tasks of `agent_key` running now, from /proc: children of its
/// supervisors, the session leaders with the supervisor's command line. A
/// task's cgroups are read from /proc/PID/cgroup (their last component is the
/// task's group name); its exit file is not known here.
fn find_tasks(agent_key: &str, cgroups: Option<&Cgroups>) -> Vec<ContainerHandle> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let stats: Vec<(i32, ProcStat)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .collect();
    let launcher = launcher::LauncherArgs {
        agent_key: agent_key.to_string(),
    };
    let wanted: Vec<u8> = launcher
        .to_args()
        .iter()
        .flat_map(|arg| arg.bytes().chain([0]))
        .collect();
    let is_ours = |pid: i32| procfs::args_of(pid).is_some_and(|args| args == wanted);
    // A supervisor works in `/`. (The per-task shims of 2026-12-06 and
    // before had the same command line but worked in their task's meta dir:
    // their tasks are not taken for orphans.)
    let works_in_root = |pid: i32| {
        std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == Path::new("/"))
    };
    let supervisors: Vec<i32> = stats
        .iter()
        .filter(|(pid, stat)| stat.session == *pid && is_ours(*pid) && works_in_root(*pid))
        .map(|(pid, _)| *pid)
        .collect();
    stats
        .iter()
        // A task leads its own process group; a child not yet exec'd may
        // not yet, and an ended one awaits its supervisor.
        .filter(|(pid, stat)| {
            supervisors.contains(&stat.ppid)
                && stat.pgrp == *pid
                && !matches!(stat.state, 'Z' | 'X')
        })
        .map(|&(pid, stat)| ContainerHandle::Process {
            pid,
            start_time: stat.start_time,
            pgid: pid,
            exit_file: PathBuf::new(),
            cgroups: match (cgroups, procfs::task_group(pid)) {
                (Some(c), Some(name)) => c.dirs(agent_key, &name),
                _ => Vec::new(),
            },
        })
        .collect()
}

/// Runs blocking /proc and cgroupfs work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

impl Containerizer for ProcessContainerizer {
    fn launch<'a>(
        &'a self,
        req: LaunchRequest<'a>,
    ) -> BoxFuture<'a, Result<Launched, LaunchError>> {
        Box::pin(self.launch_task(req))
    }

    fn wait<'a>(&'a self, handle: &'a ContainerHandle) -> BoxFuture<'a, Exit> {
        Box::pin(async move {
            let ContainerHandle::Process {
                pid,
                start_time,
                exit_file,
                cgroups,
                ..
            } = handle
            else {
                return Exit {
                    reason: Some(SUPERVISOR_GONE.into()),
                    message: "not a process task's handle".into(),
                    ..Exit::default()
                };
            };
            if let Some(end) = self.launcher.end_of(*pid, *start_time).await
                && let Ok(record) = end.await
            {
                return exit_of(Some(record), cgroups);
            }
            // Not the live supervisor's task, or it died (and the task with
            // it, a moment later): the task is waited for through /proc.
            until_gone(*pid, *start_time).await;
            exit_of(exit_record(*pid, *start_time, exit_file).await, cgroups)
        })
    }

    fn end_recorded<'a>(&'a self, handle: &'a ContainerHandle) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let ContainerHandle::Process {
                pid, start_time, ..
            } = handle
            {
                self.launcher.recorded(*pid, *start_time).await;
            }
        })
    }

    fn kill<'a>(&'a self, handle: &'a ContainerHandle, grace: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let ContainerHandle::Process {
                pid,
                start_time,
                pgid,
                cgroups,
                ..
            } = handle
            else {
                return;
            };
            let (pid, start) = (*pid, *start_time);
            if !task_alive(pid, start) {
                return;
            }
            // No grace: straight to SIGKILL, so the task cannot choose its end.
            if !grace.is_zero() {
                signal_group(*pgid, libc::SIGTERM);
            }
            let ended = tokio::time::timeout(grace, until_gone(pid, start))
                .await
                .is_ok();
            // Checked again: the group id is the task's only while its first
            // process lives (the supervisor kills the rest of the group when
            // it ends).
            if !ended && task_alive(pid, start) {
                signal_group(*pgid, libc::SIGKILL);
            }
            // What left the group (setsid, a daemon) is still in the cgroups.
            let dirs = cgroups.clone();
            blocking(move || kill_cgroups(&dirs)).await;
        })
    }

    fn ours(&self) -> BoxFuture<'_, Vec<ContainerHandle>> {
        let key = self.agent_key.clone();
        let cgroups = self.cgroups.clone();
        Box::pin(async move {
            blocking(move || find_tasks(&key, cgroups.as_ref()))
                .await
                .unwrap_or_default()
        })
    }

    fn cleanup<'a>(&'a self, handle: &'a ContainerHandle) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let ContainerHandle::Process { cgroups, .. } = handle else {
                return;
            };
            let dirs = cgroups.clone();
            blocking(move || {
                kill_cgroups(&dirs);
                dirs.iter().for_each(|dir| cgroups::remove(dir));
            })
            .await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CommandSpec;

    fn spec(value: Option<&str>, shell: bool, arguments: &[&str]) -> TaskSpec {
        TaskSpec {
            command: Some(CommandSpec {
                value: value.map(String::from),
                shell,
                arguments: arguments.iter().map(|a| a.to_string()).collect(),
                ..CommandSpec::default()
            }),
            ..TaskSpec::default()
        }
    }

    #[test]
    fn command_lines() {
        let sh = command_line(&spec(Some("echo hi"), true, &["ignored"]));
        assert_eq!(
            sh,
            Ok((
                Some("/bin/sh".into()),
                vec!["sh".into(), "-c".into(), "echo hi".into()]
            ))
        );
        let bare = command_line(&spec(Some("/bin/true"), false, &[]));
        assert_eq!(
            bare,
            Ok((Some("/bin/true".into()), vec!["/bin/true".into()]))
        );
        let argv = command_line(&spec(Some("/bin/echo"), false, &["echo", "a"]));
        assert_eq!(
            argv,
            Ok((Some("/bin/echo".into()), vec!["echo".into(), "a".into()]))
        );
        let no_value = command_line(&spec(None, true, &["echo", "a"]));
        assert_eq!(no_value, Ok((None, vec!["echo".into(), "a".into()])));
        assert!(command_line(&spec(None, true, &[])).is_err());
        assert!(command_line(&TaskSpec::default()).is_err());
    }
}
