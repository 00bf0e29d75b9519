//! `meso exec TASK -- CMD...`: a command beside a running task.
//!
//! ```text
//!  TASK ─▶ task::resolve ─▶ one live task
//!    docker  ─▶ docker exec [-i] [-t] meso-<task-id> CMD...   (the agent names
//!               its containers so; the engine must be this machine's)
//!    process ─▶ /proc/*/environ holding MESOS_TASK_ID=<id> ─▶ that process's
//!               environment ─▶ CMD in $MESOS_SANDBOX with that environment
//! ```
//!
//! A process task has no container to enter, so `exec` runs CMD as the
//! task's neighbour, as Mesos's `COMMAND` health checks run: in its sandbox,
//! with its environment (`MESOS_SANDBOX`, `PORT0`, `MARATHON_APP_ID`, ...),
//! but not in its cgroups or as its user. The task is found by its processes
//! on this machine, so `exec` must run on the task's agent (the error says
//! which host that is); no agent API runs commands for remote callers, which
//! keeps the agent's HTTP port from being a remote shell.
//!
//! The command's exit code becomes `meso exec`'s.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use clap::Args;

use super::target::ClusterArgs;
use super::task::{self, Task};
use super::{Exit, code};

#[derive(Args)]
pub struct ExecArgs {
    /// A task id (or the start of one), or an app with a single task
    task: String,
    /// The command and its arguments (after `--`)
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub async fn run(args: ExecArgs) -> anyhow::Result<()> {
    let api = args.cluster.api()?;
    let tasks: Vec<Task> = task::resolve(&api, &args.task)
        .await?
        .into_iter()
        .filter(|t| t.live)
        .collect();
    let task = match &tasks[..] {
        [one] => one,
        [] => {
            return Err(Exit::new(
                code::NOT_FOUND,
                format!(
                    "task {:?} is not running; `meso task list` shows the live ones",
                    args.task
                ),
            )
            .into());
        }
        [first, ..] => {
            return Err(Exit::new(
                code::BAD_INPUT,
                format!(
                    "{:?} has {} tasks; name one (e.g. {})",
                    args.task,
                    tasks.len(),
                    first.id
                ),
            )
            .into());
        }
    };
    let mut command = if task.container == "DOCKER" {
        let mut c = Command::new("docker");
        c.arg("exec");
        if std::io::stdin().is_terminal() {
            c.arg("-i");
            if std::io::stdout().is_terminal() {
                c.arg("-t");
            }
        }
        c.arg(format!("meso-{}", task.id));
        c.args(&args.command);
        c
    } else {
        let Some(env) = task_environment(&task.id) else {
            return Err(Exit::new(
                code::FAILURE,
                format!(
                    "task {} runs on agent host {}, not on this machine (none of its processes is here); run `meso exec` there",
                    task.id, task.host
                ),
            )
            .into());
        };
        let sandbox = env
            .iter()
            .find(|(k, _)| k == "MESOS_SANDBOX")
            .map(|(_, v)| PathBuf::from(v))
            .context("the task's environment has no MESOS_SANDBOX")?;
        let (program, rest) = args.command.split_first().context("no command given")?;
        let has_path = env.iter().any(|(k, _)| k == "PATH");
        let mut c = Command::new(program);
        c.args(rest).current_dir(&sandbox).env_clear().envs(env);
        // A PATH to find CMD by, when the task was given none.
        if let Some(path) = std::env::var_os("PATH").filter(|_| !has_path) {
            c.env("PATH", path);
        }
        c
    };
    let status = command
        .status()
        .with_context(|| format!("cannot run {:?}", args.command[0]))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(n) => Err(Exit::new(u8::try_from(n).unwrap_or(1), "").into()),
        None => Err(Exit::new(1, "the command was killed by a signal").into()),
    }
}

/// The environment of a process on this machine whose environment holds
/// `MESOS_TASK_ID=<id>`: the task's own (its first process, or anything the
/// task started).
fn task_environment(id: &str) -> Option<Vec<(OsString, OsString)>> {
    let needle = format!("MESOS_TASK_ID={id}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .collect();
        if !vars.contains(&needle.as_bytes()) {
            continue;
        }
        return Some(
            vars.iter()
                .filter_map(|v| {
                    let at = v.iter().position(|b| *b == b'=')?;
                    Some((
                        OsString::from_vec(v[..at].to_vec()),
                        OsString::from_vec(v[at + 1..].to_vec()),
                    ))
                })
                .collect(),
        );
    }
    None
}
