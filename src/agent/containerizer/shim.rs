//! The supervisor of one process task: a fork of the agent's task launcher
//! (launcher.rs), never an exec of its own. It outlives the agent (a `kill -9`
//! of the agent leaves it running), so the task's end is recorded even when no
//! agent is there to see it.
//!
//! ```text
//!  launcher ──fork──▶ shim: setsid, SIGCHLD default, cwd = the task's meta dir
//!  shim ──clone(CLONE_VM|CLONE_VFORK), spawn.rs──▶ child: own process
//!                 group, SIGKILL when the shim dies, default signals, joins
//!                 the task's cgroups ──exec──▶ task (the shim sleeps till then)
//!  shim ──"<id> started <shim pid> <start time> <task pid>" or "<id> failed
//!         <why>"──▶ the launcher's stdout (the agent reads it); stdio let go
//!  shim: task ended (not yet reaped) ─▶ SIGKILL what it left in its group
//!        ─▶ reap ─▶ exit file {"code":N} | {"signal":N} (tmp + rename) ─▶ _exit
//! ```
//!
//! Single-threaded and without tokio, like the launcher it was forked from:
//! the task's child shares the shim's memory until its exec (spawn.rs) and
//! may only make raw syscalls, which is safe only when no other thread could
//! hold a lock at the clone.
//!
//! An agent restarted after a `kill -9` finds its shims again in /proc (see
//! `process.rs`'s `ours`): session leaders with the launcher's command line,
//! which names the agent (`--agent-key`), whose working directory is the
//! task's meta dir (the exit file's). The task's process group is the shim's
//! only child's pid.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spawn::{self, Credentials, Plan};
use super::user::TaskUser;

/// What a shim is asked to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShimArgs {
    pub task_id: String,
    /// The task's working directory; `stdout` and `stderr` are appended here.
    pub sandbox: PathBuf,
    /// Where the task's exit status is written when it ends; its directory is
    /// the shim's working directory.
    pub exit_file: PathBuf,
    /// A cgroup directory the task joins before exec (one per hierarchy).
    pub cgroups: Vec<PathBuf>,
    /// The program to exec; argv[0] (looked up in PATH) when not given.
    pub program: Option<PathBuf>,
    /// The task's argv, argv[0] included.
    pub argv: Vec<String>,
    /// The task's whole environment.
    pub env: BTreeMap<String, String>,
    /// Who the task runs as; the shim's own user when None (user.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<TaskUser>,
}

/// How the task ended, as the exit file holds it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitRecord {
    Code(i32),
    Signal(i32),
}

/// Runs in the launcher's forked child; returns the exit code for `_exit`.
/// `report` carries the one line the agent waits for.
pub fn run(args: &ShimArgs, report: &dyn Fn(&str)) -> i32 {
    // SAFETY: plain syscalls; no other thread exists. setsid fails only when
    // already a group leader, which is as detached as we need.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // The launcher lets the kernel reap its children; the shim reaps its own.
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    let started = (|| {
        let meta = args
            .exit_file
            .parent()
            .ok_or("the exit file has no directory")?;
        std::env::set_current_dir(meta)
            .map_err(|e| format!("cannot enter {}: {e}", meta.display()))?;
        // Read now: the agent cannot, if the task ends at once and the shim
        // with it (nothing waits to reap it).
        let start_time = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| super::process::start_time_of(&stat))
            .ok_or("cannot read the shim's own start time")?;
        let pid = spawn(args)?;
        Ok::<_, String>((start_time, pid))
    })();
    let pid = match started {
        Ok((start_time, pid)) => {
            let me = std::process::id();
            report(&format!("started {me} {start_time} {pid}"));
            pid
        }
        Err(why) => {
            report(&format!("failed {why}"));
            return 1;
        }
    };
    detach_stdio(&args.sandbox);

    let ended = match wait_for(pid) {
        Ok(ended) => ended,
        Err(e) => {
            eprintln!("meso task shim: cannot wait for the task (pid {pid}): {e}");
            return 1;
        }
    };
    match write_exit_file(&args.exit_file, ended) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "meso task shim: cannot write {}: {e}",
                args.exit_file.display()
            );
            1
        }
    }
}

/// Starts the task (spawn.rs); returns its pid.
fn spawn(args: &ShimArgs) -> Result<libc::pid_t, String> {
    let argv0 = args.argv.first().ok_or("no command to run")?;
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
    let stdin = File::open("/dev/null").map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let stdout = append(&args.sandbox.join("stdout"))?;
    let stderr = append(&args.sandbox.join("stderr"))?;
    let credentials = args.user.as_ref().map(|u| Credentials {
        uid: u.uid,
        gid: u.gid,
        groups: u.groups.clone(),
    });
    let program = args.program.clone().unwrap_or_else(|| PathBuf::from(argv0));
    let mut plan = Plan::new(
        &program,
        &args.argv,
        &args.env,
        &args.sandbox,
        [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()],
        &args.cgroups,
        credentials,
    )
    .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    // The files stay open until the child has exec'd (spawn returns after).
    spawn::spawn(&mut plan).map_err(|e| describe_spawn_error(&program, &e))
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

/// Whole or not at all: a reader never sees half a file. Not fsynced, as the
/// agent's checkpoints are not (checkpoint.rs): the file must outlive the
/// agent, which the page cache does, and a host that goes down takes the task
/// with it. A flush per task end cost the shims a disk write each when a
/// deployment's worth of tasks stop at once.
fn write_exit_file(path: &Path, ended: ExitRecord) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let json = serde_json::to_vec(&ended).map_err(io::Error::other)?;
    let mut file = File::create(&tmp)?;
    file.write_all(&json)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
