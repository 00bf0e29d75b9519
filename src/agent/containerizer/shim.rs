//! `meso task-shim`: the supervisor of one process task. It outlives the agent
//! (a `kill -9` of the agent leaves it running), so the task's end is
//! recorded even when no agent is there to see it.
//!
//! ```text
//!  agent ──spawn (env = the task's, stdout = a pipe)──▶ shim: setsid
//!  shim ──fork──▶ child: own process group, SIGKILL when the shim dies,
//!                 default signals, joins the task's cgroups ──exec──▶ task
//!  shim ──"started <pid>\n" or "failed <why>\n"──▶ agent; stdout closed
//!  shim: task ended (not yet reaped) ─▶ SIGKILL what it left in its group
//!        ─▶ reap ─▶ exit file {"code":N} | {"signal":N} (tmp + rename) ─▶ exit
//! ```
//!
//! Single-threaded and without tokio (the CLI calls [`run`] before any runtime
//! exists): the child between fork and exec may only make raw syscalls, which
//! is safe only when no other thread could hold a lock at the fork.
//!
//! The command line carries everything the agent needs to rebuild the task's
//! handle from `/proc/<shim>/cmdline` after a restart (see `process.rs`'s
//! `ours`): whose it is (`--agent-key`), the exit file and the cgroups. The
//! task's process group is the shim's only child's pid.

use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use clap::{Args, FromArgMatches};
use serde::{Deserialize, Serialize};

/// The subcommand's name, as it shows in `/proc/<pid>/cmdline`.
pub const SUBCOMMAND: &str = "task-shim";

#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ShimArgs {
    /// The agent the task belongs to; an agent finds its shims by it.
    #[arg(long)]
    pub agent_key: String,
    #[arg(long)]
    pub task_id: String,
    /// The task's working directory; `stdout` and `stderr` are appended here.
    #[arg(long)]
    pub sandbox: PathBuf,
    /// Where the task's exit status is written when it ends.
    #[arg(long)]
    pub exit_file: PathBuf,
    /// A cgroup directory the task joins before exec (one per hierarchy).
    #[arg(long = "cgroup", value_name = "DIR")]
    pub cgroups: Vec<PathBuf>,
    /// The program to exec; argv[0] (looked up in PATH) when not given.
    #[arg(long)]
    pub program: Option<PathBuf>,
    /// The task's argv, argv[0] included.
    #[arg(last = true, required = true, num_args = 1..)]
    pub argv: Vec<String>,
}

impl ShimArgs {
    /// The shim's command line after the executable: `task-shim --flag=value
    /// ... -- argv...`. `=` keeps a value that starts with `-` a value.
    pub fn to_args(&self) -> Vec<OsString> {
        let flag = |name: &str, value: &dyn AsRef<std::ffi::OsStr>| {
            let mut arg = OsString::from(format!("--{name}="));
            arg.push(value);
            arg
        };
        let mut args = vec![
            OsString::from(SUBCOMMAND),
            flag("agent-key", &self.agent_key),
            flag("task-id", &self.task_id),
            flag("sandbox", &self.sandbox),
            flag("exit-file", &self.exit_file),
        ];
        args.extend(self.cgroups.iter().map(|dir| flag("cgroup", dir)));
        if let Some(program) = &self.program {
            args.push(flag("program", program));
        }
        args.push("--".into());
        args.extend(self.argv.iter().map(OsString::from));
        args
    }

    /// Reads back what [`to_args`](Self::to_args) wrote; `args[0]` is the
    /// subcommand. None for anything else.
    pub fn parse(args: &[OsString]) -> Option<Self> {
        if args.first().map(OsString::as_os_str) != Some(SUBCOMMAND.as_ref()) {
            return None;
        }
        let command = Self::augment_args(clap::Command::new(SUBCOMMAND));
        let matches = command.try_get_matches_from(args).ok()?;
        Self::from_arg_matches(&matches).ok()
    }
}

/// How the task ended, as the exit file holds it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitRecord {
    Code(i32),
    Signal(i32),
}

/// Runs in place of the async runtime; returns the process exit code.
pub fn run(args: ShimArgs) -> i32 {
    // SAFETY: plain syscalls; no other thread exists. setsid fails only when
    // already a group leader, which is as detached as we need.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let child = match spawn(&args) {
        Ok(child) => child,
        Err(why) => {
            report(&format!("failed {why}"));
            return 1;
        }
    };
    let pid = child.id() as i32;
    report(&format!("started {pid}"));
    detach_stdio(&args.sandbox);

    let ended = match wait_for(pid) {
        Ok(ended) => ended,
        Err(e) => {
            eprintln!("meso task-shim: cannot wait for the task (pid {pid}): {e}");
            return 1;
        }
    };
    match write_exit_file(&args.exit_file, ended) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "meso task-shim: cannot write {}: {e}",
                args.exit_file.display()
            );
            1
        }
    }
}

/// The one line the agent reads. Errors are ignored: an agent that is gone
/// cannot be told anything, and the task's end still goes to the exit file.
fn report(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn spawn(args: &ShimArgs) -> Result<Child, String> {
    let (argv0, rest) = args.argv.split_first().ok_or("no command to run")?;
    match std::fs::metadata(&args.sandbox) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "sandbox {} is not a directory",
                args.sandbox.display()
            ));
        }
        Err(e) => return Err(format!("sandbox {}: {e}", args.sandbox.display())),
    }
    let stdout = append(&args.sandbox.join("stdout"))?;
    let stderr = append(&args.sandbox.join("stderr"))?;
    // Made before the fork: the child may not allocate.
    let procs_files = args
        .cgroups
        .iter()
        .map(|dir| CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a cgroup path holds a NUL byte".to_string())?;
    let shim_pid = std::process::id() as libc::pid_t;

    let program = args.program.clone().unwrap_or_else(|| PathBuf::from(argv0));
    let mut command = Command::new(&program);
    command
        .arg0(argv0)
        .args(rest)
        .current_dir(&args.sandbox)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: `in_child` makes only async-signal-safe syscalls and does not
    // allocate; the shim is single-threaded.
    unsafe {
        command.pre_exec(move || in_child(shim_pid, &procs_files));
    }
    command
        .spawn()
        .map_err(|e| describe_spawn_error(&program, &e))
}

/// Between fork and exec, in the child. Errors fail the spawn with their errno.
fn in_child(shim_pid: libc::pid_t, procs_files: &[CString]) -> io::Result<()> {
    let check = |ret: libc::c_int| {
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: raw syscalls on values prepared before the fork.
    unsafe {
        // Its own group: a kill reaches the task's whole tree, not the shim.
        check(libc::setpgid(0, 0))?;
        // A task without its supervisor would end unrecorded: it dies with it.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        if libc::getppid() != shim_pid {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // Ignored signals stay ignored across exec; the task gets a clean slate.
        for signal in 1..32 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check(libc::sigprocmask(
            libc::SIG_SETMASK,
            &empty,
            std::ptr::null_mut(),
        ))?;
        // Before exec, so the task cannot allocate outside its limit.
        // "0" is the writing process itself.
        for path in procs_files {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            check(fd)?;
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

fn describe_spawn_error(program: &Path, e: &io::Error) -> String {
    let program = program.display();
    match e.raw_os_error() {
        Some(libc::ENOENT) => format!("no such file: {program}"),
        Some(libc::EACCES) => format!("permission denied: {program}"),
        Some(libc::ENOEXEC) => format!("not an executable: {program}"),
        _ => format!("cannot start {program}: {e}"),
    }
}

fn append(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Lets go of the agent's pipe (the agent reads to its end); what the shim
/// still has to say goes to the sandbox's stderr, where a user looks.
fn detach_stdio(sandbox: &Path) {
    let null = OpenOptions::new().read(true).write(true).open("/dev/null");
    let stderr = append(&sandbox.join("stderr"));
    let stderr = stderr.as_ref().ok().or(null.as_ref().ok());
    // SAFETY: dup2 onto the standard descriptors; the files close after.
    unsafe {
        if let Ok(null) = &null {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
        }
        if let Some(stderr) = stderr {
            libc::dup2(stderr.as_raw_fd(), 2);
        }
    }
}

/// Waits for the task's first process, ends what it left behind in its group,
/// then reaps it.
fn wait_for(pid: libc::pid_t) -> io::Result<ExitRecord> {
    let retry = |f: &mut dyn FnMut() -> libc::c_int| loop {
        if f() >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    // SAFETY: waitid/kill/waitpid on our own child.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        retry(&mut || {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        })?;
        // Not reaped yet, so its pid (the group's id) cannot be reused: the
        // signal reaches only what the task left running, as Mesos destroys
        // a container whose command has exited.
        libc::kill(-pid, libc::SIGKILL);
        let mut status = 0;
        retry(&mut || libc::waitpid(pid, &mut status, 0))?;
        if libc::WIFSIGNALED(status) {
            Ok(ExitRecord::Signal(libc::WTERMSIG(status)))
        } else {
            Ok(ExitRecord::Code(libc::WEXITSTATUS(status)))
        }
    }
}

/// Whole or not at all: a reader never sees half a file.
fn write_exit_file(path: &Path, ended: ExitRecord) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let json = serde_json::to_vec(&ended).map_err(io::Error::other)?;
    let mut file = File::create(&tmp)?;
    file.write_all(&json)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_round_trips() {
        let args = ShimArgs {
            agent_key: "-odd-key".into(),
            task_id: "web.1".into(),
            sandbox: "/tmp/sb x".into(),
            exit_file: "/tmp/meta/exit.json".into(),
            cgroups: vec!["/sys/fs/cgroup/memory/meso/k/web.1".into()],
            program: Some("/bin/sh".into()),
            argv: vec!["sh".into(), "-c".into(), "--help; exit 3".into()],
        };
        assert_eq!(ShimArgs::parse(&args.to_args()), Some(args));
        assert_eq!(ShimArgs::parse(&["meso".into(), "agent".into()]), None);
    }

    #[test]
    fn exit_record_format() {
        assert_eq!(
            serde_json::to_string(&ExitRecord::Code(3)).ok().as_deref(),
            Some(r#"{"code":3}"#)
        );
        assert_eq!(
            serde_json::from_str::<ExitRecord>(r#"{"signal":9}"#).ok(),
            Some(ExitRecord::Signal(9))
        );
    }
}
