//! How the supervisor (supervisor.rs) starts a task: `clone(CLONE_VM | CLONE_VFORK)`,
//! as glibc's `posix_spawn` does, then raw syscalls in the child and an exec.
//!
//! ```text
//!  supervisor: Plan (C strings, fds, cgroup files) made ─▶ all signals blocked
//!        ─▶ clone(CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD) on a stack of its own
//!  child (the supervisor's memory and fd table, the supervisor asleep): a fd
//!        table of its own with only the fds below its stdio's, then stdio and no
//!        other fd, cwd, own group, SIGKILL when the supervisor dies, default signals, cgroups, user
//!        ─▶ execve each PATH candidate (a file without `#!` runs under /bin/sh)
//!        ─▶ on a failure: errno into the shared Shared, _exit(127)
//!  supervisor wakes (exec done or child gone) ─▶ signals restored ─▶ pid, or the
//!        errno (the child reaped)
//! ```
//!
//! Why not `std::process::Command`: with a `pre_exec` hook (the task joins
//! its cgroups and takes its group and user before exec) std forks, which
//! copies the supervisor's page tables and write-protects its memory, both sides
//! then take copy-on-write faults, and the exec tears the copy down again:
//! that was a third of the task shims' CPU in a 1,000-task deployment (each
//! task had one then), for nothing the task keeps. Sharing the memory costs none of it.
//!
//! Why the fd table is shared, then unshared below the stdio: a copy at
//! the clone takes every fd the supervisor holds, one pidfd per running task
//! (supervisor.rs), and the exec then closes each again. With 333 tasks an
//! agent, that was ~2% of a 1,000-task deployment's CPU, and it grows with
//! every task the agent runs. `close_range(CLOSE_RANGE_UNSHARE)` from the
//! first fd above the stdio copies only the few below it (Linux 5.9+; on an
//! older kernel the child copies the whole table, as a plain clone did); the
//! supervisor keeps its pidfds high so they are never among them.
//!
//! The child may not allocate, take a lock, or return: everything it reads
//! is made before the clone, and it writes only the errno it reports. Its
//! glibc calls (open, write, signal...) are the async-signal-safe ones; the
//! credential changes are raw syscalls, so glibc's all-threads `setxid`
//! machinery never runs in a child that shares the supervisor's memory.

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// glibc's search path for `execvp` when the environment has none.
const DEFAULT_PATH: &str = "/bin:/usr/bin";
/// Plenty for the child's syscalls; it never runs Rust code that recurses.
const STACK: usize = 64 * 1024;

/// A task user's ids, for the raw syscalls of the child.
pub struct Credentials {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// What the child needs, all of it made before the clone.
pub struct Plan {
    /// The paths to try exec'ing, in order (PATH searched when the program
    /// has no `/`).
    candidates: Vec<CString>,
    /// What `argv_ptrs`, `envp_ptrs` and `script` point into.
    _strings: (Vec<CString>, Vec<CString>),
    /// `/bin/sh <candidate> argv[1..]`, for a file the kernel will not run.
    script: Vec<*const c_char>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
    cwd: CString,
    /// Duplicated onto 0, 1, 2.
    stdio: [RawFd; 3],
    /// The child's own fd table holds the fds below this (the stdio among
    /// them); the rest are never copied.
    copied_below: libc::c_uint,
    procs_files: Vec<CString>,
    supervisor_pid: libc::pid_t,
    credentials: Option<Credentials>,
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::other("a NUL byte in the task's command line"))
}

impl Plan {
    /// `program` is exec'd with `argv` (argv[0] included) and exactly `env`,
    /// in `cwd`, with `stdio` as its fds 0 to 2, after joining the cgroups
    /// (`<dir>/cgroup.procs` each) and taking `credentials`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        program: &Path,
        argv: &[String],
        env: &BTreeMap<String, String>,
        cwd: &Path,
        stdio: [RawFd; 3],
        cgroups: &[PathBuf],
        credentials: Option<Credentials>,
    ) -> io::Result<Self> {
        let path = env.get("PATH").map(String::as_str).unwrap_or(DEFAULT_PATH);
        let candidates = candidates(program, path)
            .iter()
            .map(|c| cstring(c.as_os_str().as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<io::Result<_>>()?;
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
            .collect::<io::Result<_>>()?;
        let procs_files = cgroups
            .iter()
            .map(|dir| cstring(dir.join("cgroup.procs").as_os_str().as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let argv_ptrs: Vec<*const c_char> = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        // Slot 1 is the candidate, written by the child before it uses it.
        let script: Vec<*const c_char> = [c"/bin/sh".as_ptr(), std::ptr::null()]
            .into_iter()
            .chain(argv.iter().skip(1).map(|a| a.as_ptr()))
            .chain([std::ptr::null()])
            .collect();
        let envp_ptrs = envp
            .iter()
            .map(|e| e.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        Ok(Self {
            candidates,
            _strings: (argv, envp),
            script,
            argv_ptrs,
            envp_ptrs,
            cwd: cstring(cwd.as_os_str().as_bytes())?,
            stdio,
            copied_below: stdio
                .iter()
                .map(|&fd| libc::c_uint::try_from(fd).unwrap_or(0) + 1)
                .max()
                .unwrap_or(0)
                .max(3),
            procs_files,
            // SAFETY: getpid(2) cannot fail.
            supervisor_pid: unsafe { libc::getpid() },
            credentials,
        })
    }
}

/// Where `execvp` would look for `program`: itself when it holds a `/`,
/// else each entry of `path` (an empty one is the working directory).
fn candidates(program: &Path, path: &str) -> Vec<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return vec![program.to_path_buf()];
    }
    path.split(':')
        .map(|dir| {
            if dir.is_empty() {
                program.to_path_buf()
            } else {
                Path::new(dir).join(program)
            }
        })
        .collect()
}

/// What the child and the supervisor share: the plan, and the errno of the step
/// that failed (0 while none did).
struct Shared {
    plan: *mut Plan,
    errno: c_int,
}

/// Starts the task; returns its pid once it has exec'd. Err with the errno
/// of whatever failed first (the child is then reaped).
pub fn spawn(plan: &mut Plan) -> io::Result<libc::pid_t> {
    let mut stack = vec![0u8; STACK];
    // The stack grows down from its 16-byte aligned end.
    let top = (stack.as_mut_ptr() as usize + STACK) & !15;
    let mut shared = Shared { plan, errno: 0 };
    // SAFETY: sigset/sigprocmask on our own values; clone with a stack we own
    // for the child's whole life (the supervisor sleeps until the child execs or
    // exits: CLONE_VFORK); `child` never returns.
    unsafe {
        // No signal handler may run in the child on memory it shares.
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut before);
        let pid = libc::clone(
            child,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::SIGCHLD,
            (&mut shared as *mut Shared).cast(),
        );
        let clone_error = io::Error::last_os_error();
        libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        drop(stack);
        if pid < 0 {
            return Err(clone_error);
        }
        // Read through a volatile: the compiler cannot see the child's write.
        let errno = std::ptr::read_volatile(&shared.errno);
        if errno != 0 {
            let mut status = 0;
            while libc::waitpid(pid, &mut status, 0) < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(pid)
    }
}

/// The child, until exec. Never returns.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the supervisor's `Shared`, alive and untouched while
    // the supervisor sleeps (CLONE_VFORK).
    let shared = unsafe { &mut *arg.cast::<Shared>() };
    // SAFETY: the plan outlives the clone, as `shared` does.
    let plan = unsafe { &mut *shared.plan };
    // SAFETY: raw syscalls on values prepared before the clone.
    let errno = unsafe { prepare_and_exec(plan) };
    // SAFETY: as above; then the child ends without running anything of the
    // supervisor's (no exit handlers, no buffers flushed).
    unsafe {
        std::ptr::write_volatile(&mut shared.errno, errno.max(1));
        libc::_exit(127)
    }
}

/// Everything between clone and exec; returns the errno of what failed.
unsafe fn prepare_and_exec(plan: &mut Plan) -> c_int {
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    macro_rules! check {
        ($e:expr) => {
            if $e < 0 {
                return errno();
            }
        };
    }
    // SAFETY: the caller's; every pointer is into `plan`.
    unsafe {
        // First: until then the fd table is the supervisor's (CLONE_FILES).
        let own_table = libc::syscall(
            libc::SYS_close_range,
            plan.copied_below,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        );
        if own_table < 0 {
            check!(libc::syscall(libc::SYS_unshare, libc::CLONE_FILES));
        }
        for (target, &fd) in plan.stdio.iter().enumerate() {
            let target = target as c_int;
            if fd == target {
                // dup2 onto itself keeps close-on-exec: clear it.
                check!(libc::fcntl(fd, libc::F_SETFD, 0));
            } else {
                check!(libc::dup2(fd, target));
            }
        }
        // Nothing else of the supervisor's reaches the task, close-on-exec
        // or not (an fd the agent leaked to it). On a kernel without
        // close_range the exec still closes every close-on-exec fd.
        libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, 0);
        check!(libc::chdir(plan.cwd.as_ptr()));
        // Its own group: a kill reaches the task's whole tree, not the supervisor.
        check!(libc::setpgid(0, 0));
        // A task without its supervisor would end unrecorded: it dies with it.
        check!(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL));
        if libc::getppid() != plan.supervisor_pid {
            return libc::ESRCH;
        }
        // Ignored signals stay ignored across exec; the task gets a clean slate.
        for signal in 1..32 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        // Before exec, so the task cannot allocate outside its limit.
        // "0" is the writing process itself.
        for path in &plan.procs_files {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            check!(fd);
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            let e = errno();
            libc::close(fd);
            if written < 0 {
                return e;
            }
        }
        // After the cgroups (joining one takes root), groups before the uid
        // (after it, setgroups is not allowed).
        if let Some(c) = &plan.credentials {
            check!(libc::syscall(
                libc::SYS_setgroups,
                c.groups.len(),
                c.groups.as_ptr()
            ));
            check!(libc::syscall(libc::SYS_setgid, c.gid));
            check!(libc::syscall(libc::SYS_setuid, c.uid));
            // A change of credentials clears the parent-death signal.
            check!(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL));
            if libc::getppid() != plan.supervisor_pid {
                return libc::ESRCH;
            }
        }
        // Last: from here on no signal is held back.
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check!(libc::sigprocmask(
            libc::SIG_SETMASK,
            &empty,
            std::ptr::null_mut()
        ));
        // execvp's search: on to the next candidate while it is not there,
        // EACCES if one was there but not allowed.
        let mut failed = libc::ENOENT;
        let mut denied = false;
        for candidate in &plan.candidates {
            libc::execve(
                candidate.as_ptr(),
                plan.argv_ptrs.as_ptr(),
                plan.envp_ptrs.as_ptr(),
            );
            failed = errno();
            match failed {
                libc::ENOEXEC => {
                    // No `#!` and not a binary: the shell runs it, as execvp does.
                    plan.script[1] = candidate.as_ptr();
                    libc::execve(
                        plan.script[0],
                        plan.script.as_ptr(),
                        plan.envp_ptrs.as_ptr(),
                    );
                    return libc::ENOEXEC;
                }
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return failed,
            }
        }
        if denied { libc::EACCES } else { failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;

    /// Spawns `program` in `dir` with PATH=`dir`; the exit status, or the error.
    fn run(dir: &Path, program: &str, argv: &[&str]) -> io::Result<i32> {
        let env = BTreeMap::from([("PATH".to_string(), dir.display().to_string())]);
        let null = std::fs::File::open("/dev/null")?;
        let fd = null.as_raw_fd();
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let mut plan = Plan::new(Path::new(program), &argv, &env, dir, [fd; 3], &[], None)?;
        let pid = spawn(&mut plan)?;
        let mut status = 0;
        // SAFETY: waitpid(2) on the child just spawned.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        Ok(libc::WEXITSTATUS(status))
    }

    #[test]
    fn a_task_is_execd_with_its_argv_env_and_cwd_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("task");
        // No `#!`: the kernel refuses it and /bin/sh runs it, as under execvp.
        std::fs::write(&script, "echo \"$0 $1 $PATH\" > out; exit 7\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(run(dir.path(), "task", &["task", "hello"]).unwrap(), 7);
        let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert_eq!(
            out.trim(),
            format!("{} hello {}", script.display(), dir.path().display())
        );
        let missing = run(dir.path(), "missing", &["missing"]).unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let denied = run(dir.path(), "task", &["task"]).unwrap_err();
        assert_eq!(denied.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn a_task_gets_its_stdio_and_no_other_fd() {
        let dir = tempfile::tempdir().unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        // Without close-on-exec, as a fd leaked to the supervisor: one below
        // the task's stdio (copied into the child's table, then closed) and
        // one high up, where the pidfds are (never copied).
        // SAFETY: fcntl(2) on a fd we own; the new ones are closed below.
        let fds =
            [3, 700].map(|from| unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD, from) });
        assert!(
            fds.iter().all(|&fd| fd >= 3),
            "{}",
            io::Error::last_os_error()
        );
        let check = format!(
            "for fd in {} {}; do test -e /proc/$$/fd/$fd && exit 1; done; exit 0",
            fds[0], fds[1]
        );
        let status = run(dir.path(), "/bin/sh", &["sh", "-c", &check]);
        // SAFETY: the fds dup'd above.
        fds.iter().for_each(|&fd| unsafe {
            libc::close(fd);
        });
        assert_eq!(status.unwrap(), 0, "the task inherited one of {fds:?}");
    }

    #[test]
    fn the_path_is_searched_as_execvp_does() {
        assert_eq!(
            candidates(Path::new("./run"), "/bin"),
            vec![PathBuf::from("./run")]
        );
        assert_eq!(
            candidates(Path::new("sleep"), "/usr/local/bin::/bin"),
            vec![
                PathBuf::from("/usr/local/bin/sleep"),
                PathBuf::from("sleep"),
                PathBuf::from("/bin/sleep")
            ]
        );
    }
}
