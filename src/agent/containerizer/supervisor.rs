//! `meso task-launcher`, the agent's task supervisor: one small,
//! single-threaded process per agent that starts every process task and
//! stays its parent until it ends, so the task's end is recorded even when
//! no agent is there to see it (a `kill -9` of the agent leaves it running).
//!
//! ```text
//!  agent (launcher.rs) ──stdin: {"id":N,"task":TaskArgs}\n──▶ supervisor
//!  supervisor ──clone(CLONE_VM|CLONE_VFORK), spawn.rs──▶ child: own process
//!        group, SIGKILL when the supervisor dies, default signals, joins the
//!        task's cgroups ──exec──▶ task (the supervisor sleeps till then)
//!  supervisor ──stdout: "N started <task pid> <start time>" | "N failed <why>"──▶ agent
//!  the task's pidfd (epoll) readable ─▶ it ended, not yet reaped ─▶ SIGKILL
//!        what it left in its group ─▶ agent here?
//!          yes ─▶ stdout: "ended <pid> <start time> {"code":N}|{"signal":N}"; kept a
//!                 zombie until stdin: "reap <pid> <start time>" (the agent
//!                 has recorded the end) ─▶ reap
//!          no  ─▶ exit file {"code":N} | {"signal":N} (tmp + rename) ─▶ reap
//!  stdin closed (the agent gone) ─▶ exit files for the ends it was told and
//!        had not recorded, those reaped; stdio let go, no new tasks; exits
//!        after its last task
//! ```
//!
//! Why one supervisor per agent and not one per task (a shim, as Mesos's
//! command executor and Nomad's executor are): a shim forked per task, then
//! torn down at its end, was a fifth of a 1,000-task deployment's CPU
//! (~0.5 ms a task on the machines this project measures) and ~170 kB of
//! memory for every running task. The price: a supervisor killed takes its
//! tasks with it (they are SIGKILLed, and the agent reports them failed, as
//! Mesos does when an executor dies); the next launch starts a new one.
//!
//! Why the end goes over the pipe, and a zombie waits for the agent's word:
//! an exit file per task cost a directory and two inodes on the agent's disk
//! (ext4 placing a new directory was a tenth of the agents' CPU in a
//! 1,000-task deployment) and /proc reads while the agent waited for it. An
//! end is never lost: until the agent says it has recorded it, the task is
//! not reaped, and an agent that goes before that leaves an exit file
//! instead, written before the reap as always: while the agent (process.rs)
//! sees the task's pid as a zombie, the record may still come; once the pid
//! is gone, a missing file means the supervisor died. Ends are found through
//! each task's pidfd, since a `waitid` over all children would return a
//! zombie kept for the agent again and again (Linux 5.3 or later).
//!
//! An agent restarted after a `kill -9` finds its tasks in /proc (see
//! `process.rs`'s `ours`): children of a session leader with the
//! supervisor's command line, which names the agent (`--agent-key`).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::procfs;
use super::spawn::{self, Credentials, Plan};
use super::user::TaskUser;

/// A task to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskArgs {
    /// The task's working directory; `stdout` and `stderr` are appended here.
    pub sandbox: PathBuf,
    /// Where the task's exit status is written if it ends with no agent
    /// to tell (its directory is made then).
    pub exit_file: PathBuf,
    /// A cgroup directory the task joins before exec (one per hierarchy).
    pub cgroups: Vec<PathBuf>,
    /// The program to exec; argv[0] (looked up in PATH) when not given.
    pub program: Option<PathBuf>,
    /// The task's argv, argv[0] included.
    pub argv: Vec<String>,
    /// The task's whole environment.
    pub env: BTreeMap<String, String>,
    /// Who the task runs as; the supervisor's own user (the agent's) when None (user.rs).
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

/// The supervisor's loop (`meso task-launcher`); returns the process's exit
/// code. Requests come one line each on stdin (launcher.rs's `Request` as
/// JSON, or `reap <pid>`), replies and ends go one line each to stdout.
pub fn run() -> i32 {
    // SAFETY: plain syscalls; no other thread exists. Its own session: a ^C
    // meant for the agent's terminal does not reach it or its tasks.
    let ends = unsafe {
        libc::setsid();
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::epoll_create1(libc::EPOLL_CLOEXEC)
    };
    if ends < 0 {
        let e = io::Error::last_os_error();
        eprintln!("meso task-launcher: cannot make an epoll set: {e}");
        return 1;
    }
    let _ = std::env::set_current_dir("/");
    let mut supervisor = Supervisor {
        running: HashMap::new(),
        ends,
        agent_here: true,
    };
    let mut input = Vec::new();
    while supervisor.agent_here || !supervisor.running.is_empty() {
        let mut fds = [
            libc::pollfd {
                fd: if supervisor.agent_here { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: ends,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll(2) on an array we own.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                // Leaving would take every task with it: wait and try again.
                eprintln!("meso task-launcher: poll: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            continue;
        }
        if fds[1].revents != 0 {
            supervisor.collect_ends();
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64 * 1024];
            // SAFETY: read(2) into a buffer we own; poll said it will not block.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 || (n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted)
            {
                supervisor.agent_gone();
                let_go_of_the_agent();
                continue;
            }
            input.extend_from_slice(&buf[..n.max(0) as usize]);
            while let Some(end) = input.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = input.drain(..=end).collect();
                supervisor.serve(&line);
            }
        }
    }
    0
}

/// A request: the task to start, and the id its reply carries.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub task: TaskArgs,
}

/// What the agent says once it has recorded a task's end.
pub const REAP: &str = "reap";
/// What the supervisor says when a task has ended.
pub const ENDED: &str = "ended";

/// The tasks started and not yet reaped, by pid.
struct Supervisor {
    running: HashMap<libc::pid_t, Running>,
    /// The epoll set of the running tasks' pidfds (data: the pid).
    ends: libc::c_int,
    agent_here: bool,
}

struct Running {
    exit_file: PathBuf,
    /// Where the supervisor's complaints about the task go, for its user.
    sandbox: PathBuf,
    /// Readable once the task has ended; closed when it is reaped.
    pidfd: OwnedFd,
    /// Field 22 of /proc/PID/stat: a reap names the task by it too.
    start_time: u64,
    /// How it ended, told to the agent, which has not recorded it yet.
    told: Option<ExitRecord>,
}

impl Supervisor {
    fn serve(&mut self, line: &[u8]) {
        if let Some(task) = line
            .strip_prefix(REAP.as_bytes())
            .and_then(|l| l.strip_prefix(b" "))
        {
            let task = std::str::from_utf8(task).unwrap_or_default();
            let parsed = task
                .trim()
                .split_once(' ')
                .and_then(|(pid, start)| Some((pid.parse().ok()?, start.parse().ok()?)));
            match parsed {
                Some((pid, start_time)) => self.recorded(pid, start_time),
                None => eprintln!("meso task-launcher: bad reap ignored: {task:?}"),
            }
            return;
        }
        let request: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("meso task-launcher: bad request ignored: {e}");
                return;
            }
        };
        let said = match self.start(&request.task) {
            Ok((pid, start_time)) => format!("started {pid} {start_time}"),
            Err(why) => format!("failed {why}"),
        };
        reply(&format!("{} {said}", request.id));
    }

    /// Starts a task; its pid and start time.
    fn start(&mut self, task: &TaskArgs) -> Result<(libc::pid_t, u64), String> {
        let pid = spawn(task)?;
        // Not reaped before this loop does it, so readable even if the task
        // has already ended, and the pid is the task's.
        let start_time = procfs::proc_stat(pid).map(|s| s.start_time);
        let watched = procfs::pidfd_open(pid).map(kept_high).and_then(|pidfd| {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: pid as u64,
            };
            // SAFETY: epoll_ctl(2) with an event we own, on fds we own.
            let added = unsafe {
                libc::epoll_ctl(
                    self.ends,
                    libc::EPOLL_CTL_ADD,
                    pidfd.as_raw_fd(),
                    &mut event,
                )
            };
            if added < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(pidfd)
        });
        match (start_time, watched) {
            (Some(start_time), Ok(pidfd)) => {
                self.running.insert(
                    pid,
                    Running {
                        exit_file: task.exit_file.clone(),
                        sandbox: task.sandbox.clone(),
                        pidfd,
                        start_time,
                        told: None,
                    },
                );
                Ok((pid, start_time))
            }
            (start_time, watched) => {
                // The agent could not tell it from a recycled pid, or this
                // loop would never see it end: it must not run unwatched, and
                // no end is reported for a launch reported failed.
                // SAFETY: kill(2) of our own child's group, then its reap.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                reap(pid);
                Err(match watched {
                    Err(e) => format!("cannot watch the task (pidfd_open, Linux 5.3+): {e}"),
                    Ok(_) if start_time.is_none() => {
                        format!("cannot read the start time of the task (pid {pid})")
                    }
                    Ok(_) => "cannot start the task".to_string(),
                })
            }
        }
    }

    /// Every task whose pidfd turned readable has ended: its end is told to
    /// the agent (or written down), its group's leftovers killed.
    fn collect_ends(&mut self) {
        const AT_ONCE: usize = 64;
        // SAFETY: zeroed epoll_events are valid; epoll_wait fills them.
        let mut events: [libc::epoll_event; AT_ONCE] = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: epoll_wait(2) into an array we own; no wait (timeout 0).
            let n = unsafe { libc::epoll_wait(self.ends, events.as_mut_ptr(), AT_ONCE as i32, 0) };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let n = n.max(0) as usize;
            for event in &events[..n] {
                self.ended(event.u64 as libc::pid_t);
            }
            if n < AT_ONCE {
                return;
            }
        }
    }

    fn ended(&mut self, pid: libc::pid_t) {
        let Some(task) = self.running.get_mut(&pid) else {
            return;
        };
        // SAFETY: waitid(2) into a siginfo we own; WNOWAIT leaves it a zombie.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } < 0 {
            return;
        }
        // SAFETY: waitid filled these for a child that changed state.
        let (ended_pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if ended_pid != pid {
            return; // not ended after all
        }
        let ended = match info.si_code {
            libc::CLD_EXITED => ExitRecord::Code(status),
            _ => ExitRecord::Signal(status),
        };
        // Its pidfd stays readable: out of the set, or it comes back forever.
        // SAFETY: epoll_ctl(2) removing an fd we own.
        unsafe {
            libc::epoll_ctl(
                self.ends,
                libc::EPOLL_CTL_DEL,
                task.pidfd.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
        // Not reaped yet, so its pid (the group's id) cannot be reused: the
        // signal reaches only what the task left running, as Mesos destroys a
        // container whose command has exited.
        // SAFETY: kill(2) of our own child's group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        if self.agent_here {
            task.told = Some(ended);
            let record = serde_json::to_string(&ended).unwrap_or_default();
            reply(&format!("{ENDED} {pid} {} {record}", task.start_time));
        } else {
            self.write_down_and_reap(pid, ended);
        }
    }

    /// The agent has recorded the end it was told: the task is reaped.
    fn recorded(&mut self, pid: libc::pid_t, start_time: u64) {
        let told = |t: &Running| t.told.is_some() && t.start_time == start_time;
        if self.running.get(&pid).is_some_and(told) {
            self.running.remove(&pid);
            reap(pid);
        }
    }

    /// The agent is gone: the ends it was told but had not recorded are
    /// written down for the next agent, and every later one will be.
    fn agent_gone(&mut self) {
        self.agent_here = false;
        let told: Vec<(libc::pid_t, ExitRecord)> = self
            .running
            .iter()
            .filter_map(|(pid, t)| Some((*pid, t.told?)))
            .collect();
        for (pid, ended) in told {
            self.write_down_and_reap(pid, ended);
        }
    }

    /// The exit file first, then the reap: a task seen reaped without one
    /// will never have one.
    fn write_down_and_reap(&mut self, pid: libc::pid_t, ended: ExitRecord) {
        if let Some(task) = self.running.remove(&pid)
            && let Err(e) = write_exit_file(&task.exit_file, ended)
        {
            complain(
                &task.sandbox,
                &format!("cannot write {}: {e}", task.exit_file.display()),
            );
        }
        reap(pid);
    }
}

/// Reaps a child that has ended (or was just SIGKILLed).
fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waitpid(2) of our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

/// One write to stdout per line, so a line is never split.
fn reply(line: &str) {
    // SAFETY: fd 1 stays open for the process's life; ManuallyDrop keeps this
    // File from closing it.
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    let _ = out.write_all(format!("{line}\n").as_bytes());
}

/// The agent is gone: its pipes and its stderr are let go (whoever reads
/// them to their end, a terminal or a test, is not held by the tasks still
/// running here).
fn let_go_of_the_agent() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        // SAFETY: dup2 onto the standard descriptors; `null` closes after.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(null.as_raw_fd(), 2);
        }
    }
}

/// What the supervisor has to say about a task goes to the task's stderr,
/// where its user looks.
fn complain(sandbox: &Path, what: &str) {
    if let Ok(mut stderr) = append(&sandbox.join("stderr")) {
        let _ = writeln!(stderr, "meso task-launcher: {what}");
    }
}

/// The fd from which the supervisor keeps its tasks' pidfds, unless half its
/// limit on open files is lower.
const PIDFDS_FROM: u64 = 4096;

/// The lowest fd a task's pidfd is kept at: [`PIDFDS_FROM`], or half the
/// limit on open files (read once) when that is lower.
fn pidfds_from() -> libc::c_int {
    static FROM: OnceLock<libc::c_int> = OnceLock::new();
    *FROM.get_or_init(|| {
        let half = crate::cli::open_file_limit().map_or(PIDFDS_FROM, |soft| soft / 2);
        libc::c_int::try_from(half.min(PIDFDS_FROM)).unwrap_or(0)
    })
}

/// `pidfd` moved up to [`pidfds_from`] or above, where the child of the
/// next spawn never copies it (spawn.rs copies only the fds below its
/// stdio). Where there is no room up there it stays where it is, and costs
/// each spawn a copy and a close, as every fd did before.
fn kept_high(pidfd: OwnedFd) -> OwnedFd {
    // SAFETY: fcntl(2) on a fd we own; the copy is ours to own.
    let moved = unsafe { libc::fcntl(pidfd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, pidfds_from()) };
    if moved < 0 {
        return pidfd;
    }
    // SAFETY: `moved` was just made and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(moved) }
}

/// Starts the task (spawn.rs); returns its pid.
fn spawn(args: &TaskArgs) -> Result<libc::pid_t, String> {
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

/// Whole or not at all: a reader never sees half a file. Not fsynced, as the
/// agent's checkpoints are not (checkpoint.rs): the file must outlive the
/// agent, which the page cache does, and a host that goes down takes the task
/// with it. A flush per task end cost a disk write each when a deployment's
/// worth of tasks stop at once.
fn write_exit_file(path: &Path, ended: ExitRecord) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
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

    #[test]
    fn pidfds_are_kept_high_and_still_watch_their_process() {
        // SAFETY: getpid(2) cannot fail.
        let me = unsafe { libc::getpid() };
        let opened = procfs::pidfd_open(me).unwrap();
        let low = opened.as_raw_fd();
        let pidfd = kept_high(opened);
        assert!(
            pidfds_from() > low,
            "{} is no higher than {low}",
            pidfds_from()
        );
        assert!(
            pidfd.as_raw_fd() >= pidfds_from(),
            "fd {} below {}",
            pidfd.as_raw_fd(),
            pidfds_from()
        );
        // SAFETY: F_GETFD on a fd we own.
        let flags = unsafe { libc::fcntl(pidfd.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        // A pidfd of a live process is not readable yet.
        let mut poll = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd we own, no wait.
        assert_eq!(unsafe { libc::poll(&mut poll, 1, 0) }, 0);
    }
}
