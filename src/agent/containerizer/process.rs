//! The process containerizer: each task runs under its own shim (shim.rs),
//! forked by the agent's task launcher (launcher.rs), in its own process
//! group, in cgroups (cgroups.rs) when the host has them.
//!
//! ```text
//!  launch: cgroups.create ─▶ launcher: fork a shim (env = the task's)
//!          ─▶ "started <shim pid> <start time> <task pid>"
//!          ─▶ handle {shim pid + start time, pgid = task pid, exit file, cgroups}
//!  wait:   pidfd of the shim (or /proc polled) ─▶ shim gone ─▶ exit file
//!          + the cgroup's OOM count ─▶ Exit
//!  kill:   SIGTERM -pgid ─▶ shim gone, or grace over ─▶ SIGKILL -pgid
//!          ─▶ SIGKILL whatever is still in the cgroups
//!  ours:   /proc/*: session leaders with `task-launcher --agent-key=<ours>`
//!          and a task's meta dir as cwd ─▶ handles
//!  cleanup: SIGKILL what is left in the cgroups, remove them
//! ```
//!
//! Nothing here needs the shim to be our child (it is the launcher's, then
//! init's): wait, kill and ours work the same before and after a restart.
//! Every signal is sent only while the shim's pid still has the start time
//! the handle recorded: a pid the kernel gave to another process since is
//! never signalled.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::unix::AsyncFd;

use super::cgroups::{self, Cgroups, Limits};
use super::launcher::{self, Launcher};
use super::shim::{ExitRecord, ShimArgs};
use super::simple_command;
use super::{ContainerHandle, Containerizer, Exit, LaunchError, LaunchRequest, Launched};
use crate::model::TaskSpec;

const LAUNCH_FAILED: &str = "REASON_CONTAINER_LAUNCH_FAILED";
const MEMORY_LIMIT: &str = "REASON_CONTAINER_LIMITATION_MEMORY";
const SUPERVISOR_GONE: &str = "REASON_EXECUTOR_TERMINATED";

/// How often /proc is looked at when the kernel has no pidfd (before 5.3).
const POLL: Duration = Duration::from_millis(100);

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
        if req.meta_dir.file_name() != Some(req.spec.task_id.as_ref()) {
            return Err(fail(format!(
                "the meta dir {} is not named after the task",
                req.meta_dir.display()
            )));
        }
        std::fs::create_dir_all(req.meta_dir)
            .map_err(|e| fail(format!("cannot make {}: {e}", req.meta_dir.display())))?;
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
        let args = ShimArgs {
            task_id: req.spec.task_id.clone(),
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
                    shim_pid: started.shim_pid,
                    shim_start_time: started.shim_start_time,
                    pgid: started.task_pid,
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

/// The fields of /proc/PID/stat this module reads.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcStat {
    state: char,
    ppid: i32,
    pgrp: i32,
    session: i32,
    /// Clock ticks after boot (field 22): with the pid, a process's identity.
    start_time: u64,
}

/// A process's start time from the text of its /proc/PID/stat.
pub(super) fn start_time_of(stat: &str) -> Option<u64> {
    parse_stat(stat).map(|s| s.start_time)
}

fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command name (field 2) may hold spaces and parentheses: the fields
    // that follow start after its last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Whether the shim of a handle still runs: same pid, same start time, not a
/// zombie waiting for its parent.
fn shim_alive(pid: i32, start_time: u64) -> bool {
    proc_stat(pid).is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X'))
}

/// Resolves once the shim is gone.
async fn until_gone(pid: i32, start_time: u64) {
    if !shim_alive(pid, start_time) {
        return;
    }
    if let Some(pidfd) = pidfd_open(pid) {
        // The pid may have changed hands between the check and the open.
        if !shim_alive(pid, start_time) {
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
    while shim_alive(pid, start_time) {
        tokio::time::sleep(POLL).await;
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: a syscall that returns a new descriptor we then own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How a task ended, from what the shim and the cgroups recorded.
fn exit_of(exit_file: &Path, cgroup_dirs: &[PathBuf]) -> Exit {
    let record = std::fs::read(exit_file)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ExitRecord>(&bytes).ok());
    let Some(record) = record else {
        return Exit {
            reason: Some(SUPERVISOR_GONE.into()),
            message: "the task's supervisor (its shim) vanished before it recorded \
                      how the task ended"
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
/// task's, whatever happened to its shim.
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

/// The shims of `agent_key` running now, from /proc: session leaders with
/// the launcher's command line (they are its forks) whose working directory
/// is a task's meta dir. The launcher itself works in `/`.
fn find_shims(agent_key: &str, cgroups: Option<&Cgroups>) -> Vec<ContainerHandle> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let stats: Vec<(i32, ProcStat)> = pids
        .iter()
        .filter_map(|&pid| Some((pid, proc_stat(pid)?)))
        .collect();
    let launcher = launcher::LauncherArgs {
        agent_key: agent_key.to_string(),
    };
    let wanted: Vec<u8> = launcher
        .to_args()
        .iter()
        .flat_map(|arg| arg.bytes().chain([0]))
        .collect();
    let mut handles = Vec::new();
    for &(pid, stat) in &stats {
        // A shim leads its own session; one forked but not yet set up, or a
        // task forked by a shim but not yet exec'd, does not.
        if stat.session != pid || matches!(stat.state, 'Z' | 'X') {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        // argv[0] is whatever path the agent ran meso by.
        let after_exe = cmdline
            .iter()
            .position(|b| *b == 0)
            .map(|at| &cmdline[at + 1..]);
        if after_exe != Some(wanted.as_slice()) {
            continue;
        }
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else {
            continue;
        };
        // A meta dir removed under a running shim reads "<dir> (deleted)".
        let cwd = cwd.to_string_lossy();
        let meta = PathBuf::from(cwd.strip_suffix(" (deleted)").unwrap_or(&cwd));
        let Some(task_id) = meta.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        // The task is the shim's only child; none when it has just ended
        // (its group is then already gone, and the handle signals no group).
        let pgid = stats
            .iter()
            .find(|(_, s)| s.ppid == pid)
            .map_or(0, |(_, s)| s.pgrp);
        handles.push(ContainerHandle::Process {
            shim_pid: pid,
            shim_start_time: stat.start_time,
            pgid,
            exit_file: meta.join("exit.json"),
            cgroups: cgroups.map_or_else(Vec::new, |c| c.dirs(agent_key, &task_id)),
        });
    }
    handles
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
                shim_pid,
                shim_start_time,
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
            until_gone(*shim_pid, *shim_start_time).await;
            exit_of(exit_file, cgroups)
        })
    }

    fn kill<'a>(&'a self, handle: &'a ContainerHandle, grace: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let ContainerHandle::Process {
                shim_pid,
                shim_start_time,
                pgid,
                cgroups,
                ..
            } = handle
            else {
                return;
            };
            let (pid, start) = (*shim_pid, *shim_start_time);
            if !shim_alive(pid, start) {
                return;
            }
            // No grace: straight to SIGKILL, so the task cannot choose its end.
            if !grace.is_zero() {
                signal_group(*pgid, libc::SIGTERM);
            }
            let ended = tokio::time::timeout(grace, until_gone(pid, start))
                .await
                .is_ok();
            // Checked again: the group id is the task's only while its shim
            // lives (the shim kills the rest of the group when the task ends).
            if !ended && shim_alive(pid, start) {
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
            blocking(move || find_shims(&key, cgroups.as_ref()))
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

    #[test]
    fn stat_with_an_awkward_name() {
        let text = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 109 0 0 0 0 0 0 0 20 0 1 0 \
                    987654 2301952 130 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                state: 'S',
                ppid: 1,
                pgrp: 4242,
                session: 4242,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_start_time_is_read() {
        let me = std::process::id() as i32;
        let stat = proc_stat(me);
        assert!(stat.is_some_and(|s| s.start_time > 0 && s.state != 'Z'));
    }
}
