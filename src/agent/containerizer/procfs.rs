//! What the process containerizer and the task supervisor read of /proc: a
//! process's stat fields (state, parent, group, session, start time), its
//! command line after the executable, and the task group it is in; and a
//! pidfd of a process, to wait for its end.

use std::os::fd::{FromRawFd, OwnedFd};

use super::cgroups;

/// The fields of /proc/PID/stat the containerizer reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ProcStat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks after boot (field 22): with the pid, a process's identity.
    pub start_time: u64,
}

pub(super) fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A descriptor that turns readable once the process has ended (Linux 5.3+).
pub(super) fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: a syscall that returns a new descriptor we then own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
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

/// A process's argv after argv[0] (whatever path it was run by), each
/// argument followed by its NUL, as /proc/PID/cmdline holds them.
pub(super) fn args_of(pid: i32) -> Option<Vec<u8>> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let at = cmdline.iter().position(|b| *b == 0)?;
    Some(cmdline[at + 1..].to_vec())
}

/// The name of the cgroup a process is in (the last component of its path
/// in /proc/PID/cgroup), when it is one of meso's task groups.
pub(super) fn task_group(pid: i32) -> Option<String> {
    task_group_in(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

/// The task group named in the text of a /proc/PID/cgroup: the last
/// component of a path `…/meso/<agent>/<task>`.
fn task_group_in(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        // "<id>:<controllers>:<path>"; the path may hold ':'.
        let path = line.splitn(3, ':').nth(2)?;
        let mut parts = path.rsplitn(3, '/');
        let (name, _agent, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let parent = rest.rsplit('/').next();
        (parent == Some(cgroups::PARENT) && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_tasks_group_is_read_from_its_cgroup_file() {
        let v2 = "0::/meso/agent-1/web.1a2b\n";
        assert_eq!(task_group_in(v2).as_deref(), Some("web.1a2b"));
        let v1 = "12:memory:/meso/k/t\n11:cpu,cpuacct:/meso/k/t\n1:name=systemd:/user.slice\n";
        assert_eq!(task_group_in(v1).as_deref(), Some("t"));
        let nested = "0::/system.slice/x.service/meso/k/t\n";
        assert_eq!(task_group_in(nested).as_deref(), Some("t"));
        assert_eq!(task_group_in("0::/user.slice/session-1.scope\n"), None);
        assert_eq!(task_group_in("0::/notmeso/k/t\n"), None);
        assert_eq!(task_group_in("0::/\n"), None);
        assert_eq!(task_group_in(""), None);
    }

    #[test]
    fn own_start_time_is_read() {
        let me = std::process::id() as i32;
        let stat = proc_stat(me);
        assert!(stat.is_some_and(|s| s.start_time > 0 && s.state != 'Z'));
    }
}
