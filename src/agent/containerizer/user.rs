//! The user a process task runs as (`command.user`, Marathon's `user`), as
//! Mesos's agent does with `--switch_user`: resolved on the agent before the
//! launch, the sandbox handed to it, and the task's credentials dropped to it
//! between clone and exec (spawn.rs).
//!
//! ```text
//!  command.user ─▶ resolve: passwd entry, primary and supplementary groups
//!               └─ unknown user, or an agent that is not root ─▶ TASK_FAILED
//!               ─▶ chown -R the sandbox (the fetched files too)
//!               ─▶ child: cgroups joined as root, then setgroups, setgid, setuid
//! ```
//!
//! An agent that is not root runs tasks as itself: a task asking for that very
//! user is fine, any other fails saying why, where Mesos would fail the
//! executor's `su`. The task's environment is left as the scheduler made it
//! (Mesos sets no HOME or USER either).

use std::path::Path;

use nix::unistd::{Gid, Uid, User};
use serde::{Deserialize, Serialize};

/// A resolved user: what the task's child needs to become it, prepared in
/// the agent so that the child has nothing to look up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary one included.
    pub groups: Vec<u32>,
}

/// `name`'s passwd entry and groups; an error a task's status can carry.
pub fn resolve(name: &str) -> Result<TaskUser, String> {
    let fail = |why: String| format!("cannot run as user '{name}': {why}");
    let user = User::from_name(name)
        .map_err(|e| fail(format!("cannot read the user database: {e}")))?
        .ok_or_else(|| fail("no such user on this agent".into()))?;
    let me = Uid::effective();
    if !me.is_root() && me != user.uid {
        return Err(fail(format!(
            "the agent runs as uid {me}, not root, so its tasks run as itself"
        )));
    }
    let groups = match std::ffi::CString::new(name) {
        Ok(c_name) => nix::unistd::getgrouplist(&c_name, user.gid)
            .map_err(|e| fail(format!("cannot list its groups: {e}")))?,
        Err(_) => return Err(fail("the name holds a NUL byte".into())),
    };
    Ok(TaskUser {
        name: name.to_string(),
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: groups.into_iter().map(Gid::as_raw).collect(),
    })
}

/// Whether `user` may pass through every directory above `sandbox`: the
/// agent's work dir is the operator's choice, and a task that cannot enter
/// its sandbox would fail with a bare "permission denied".
pub fn check_reachable(sandbox: &Path, user: &TaskUser) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if user.uid == 0 {
        return Ok(());
    }
    for dir in sandbox.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = meta.mode();
        let may = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if user.groups.contains(&meta.gid()) {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !may {
            return Err(format!(
                "cannot run as user '{}': it cannot enter {} (mode {:o}, owner uid {}); \
                 give the agent a work dir others may pass through",
                user.name,
                dir.display(),
                mode & 0o7777,
                meta.uid()
            ));
        }
    }
    Ok(())
}

/// Gives `sandbox` and everything in it to `user`, as Mesos's agent does, so
/// the task can write where it runs and read what was fetched for it.
/// Symbolic links are changed themselves, never followed.
pub fn chown_sandbox(sandbox: &Path, user: &TaskUser) -> Result<(), String> {
    let chown = |path: &Path| {
        std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid)).map_err(|e| {
            format!(
                "cannot give {} to user '{}': {e}",
                path.display(),
                user.name
            )
        })
    };
    chown(sandbox)?;
    let mut dirs = vec![sandbox.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            chown(&path)?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_with_its_groups() {
        let root = resolve("root").expect("root exists everywhere");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0), "{root:?}");
    }

    #[test]
    fn an_unknown_user_is_named_in_the_error() {
        let e = resolve("no-such-user-meso").unwrap_err();
        assert!(
            e.starts_with("cannot run as user 'no-such-user-meso': no such user"),
            "{e}"
        );
    }
}
