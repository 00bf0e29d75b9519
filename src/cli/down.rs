//! `meso down [--purge]`: stops the cluster `meso up` runs from a data dir.
//!
//! ```text
//!  <data-dir>/meso-up.json ─▶ pid still that meso up?
//!      no  ─▶ stale file removed ("was not running")
//!      yes ─▶ --purge: remove every app, kill every task, wait for them to end
//!          ─▶ SIGTERM ─▶ wait for the process to go (SIGKILL after --timeout)
//!  --purge ─▶ remove the data dir (only if it holds nothing but meso's own)
//! ```
//!
//! Without `--purge` tasks keep running, as when `meso up` gets Ctrl-C: the
//! next `meso up` on the data dir adopts them. With it nothing is left, so
//! apps are removed first (else Marathon's scheduler would relaunch the tasks
//! killed) and the data dir goes with the cluster.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use reqwest::Method;
use serde_json::json;

use super::state_file::{self, UpState};
use super::target::{Api, LocalArgs};
use super::{Exit, code};
use crate::model::TaskState;

#[derive(Args)]
pub struct DownArgs {
    #[command(flatten)]
    local: LocalArgs,
    /// Also remove every app and task, then the data dir
    #[arg(long)]
    purge: bool,
    /// How long to wait for the cluster (and, with --purge, its tasks) to stop
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub async fn run(args: DownArgs) -> anyhow::Result<()> {
    let dir = args.local.data_dir()?;
    let state = UpState::read(&dir)?;
    match state {
        Some(state) if state.alive() => {
            if args.purge {
                purge_tasks(&Api::new(state.api())?, args.timeout).await?;
            }
            stop(&state, args.timeout).await?;
            println!(
                "stopped the cluster in {} (pid {})",
                dir.display(),
                state.pid
            );
        }
        Some(_) => {
            let _ = fs::remove_file(dir.join(state_file::FILE));
            println!(
                "the cluster in {} was not running (its state file is removed)",
                dir.display()
            );
        }
        None if args.purge && dir.exists() => {}
        None => {
            return Err(Exit::new(
                code::NO_CLUSTER,
                format!(
                    "no cluster running from data dir {} — nothing to stop (pass --data-dir, or start one with `meso up -d`)",
                    dir.display()
                ),
            )
            .into());
        }
    }
    if args.purge && dir.exists() {
        remove_data_dir(&dir)?;
        println!("removed {}", dir.display());
    }
    Ok(())
}

/// SIGTERM, then waits for the process to be gone; SIGKILL after `timeout`.
async fn stop(state: &UpState, timeout: Duration) -> anyhow::Result<()> {
    let pid = i32::try_from(state.pid).context("pid out of range")?;
    // SAFETY: kill has no memory effects; the pid was checked to still be
    // that `meso up` just before.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let started = Instant::now();
    while state.alive() {
        if started.elapsed() > timeout {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            bail!(
                "the cluster (pid {pid}) did not stop within {} s of SIGTERM and was killed; its state file remains",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Removes every Marathon app (so nothing relaunches), kills the tasks left
/// (those launched through the operator API), and waits until none is live.
async fn purge_tasks(api: &Api, timeout: Duration) -> anyhow::Result<()> {
    let apps = api.get("/v2/apps", "apps").await?;
    for app in apps["apps"].as_array().into_iter().flatten() {
        if let Some(id) = app["id"].as_str() {
            let path = format!("/v2/apps{id}?force=true");
            api.expect(Method::DELETE, &path, None, &format!("app {id}"))
                .await?;
        }
    }
    let started = Instant::now();
    let mut asked = std::collections::BTreeSet::new();
    loop {
        let live = live_tasks(api).await?;
        if live.is_empty() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!(
                "{} task(s) still running after {} s (e.g. {}); the cluster is left running",
                live.len(),
                timeout.as_secs(),
                live[0]
            );
        }
        for id in live {
            if asked.insert(id.clone()) {
                let call = json!({"type": "KILL_TASK", "kill_task": {"task_id": id}});
                let answer = api.call(Method::POST, "/api/v1", Some(&call)).await?;
                // A task that ended meanwhile is not an error.
                if !answer.status.is_success() && answer.status != reqwest::StatusCode::NOT_FOUND {
                    answer.ok(&format!("kill task {id}"))?;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn live_tasks(api: &Api) -> anyhow::Result<Vec<String>> {
    let tasks = api.get("/master/tasks", "tasks").await?;
    Ok(tasks["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            serde_json::from_value::<TaskState>(t["state"].clone()).is_ok_and(|s| !s.is_terminal())
        })
        .filter_map(|t| t["id"].as_str().map(String::from))
        .collect())
}

/// Removes a data dir only when it holds what `meso up` makes and nothing
/// else: `--data-dir ~` by mistake must not take the home directory along.
fn remove_data_dir(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let ours = name == state_file::FILE
            || name == state_file::LOG
            || ["master-", "agent-"].iter().any(|p| {
                name.strip_prefix(p)
                    .is_some_and(|n| n.parse::<u64>().is_ok())
            });
        if !ours {
            bail!(
                "{} holds {name:?}, which meso did not make; not removing it",
                dir.display()
            );
        }
    }
    fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}
