//! What the tests of tasks, and of the session that feeds them, start from:
//! a containerizer that starts nothing real, and the agent's tasks over it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::Tasks;
use crate::agent::checkpoint::Dirs;
use crate::agent::containerizer::{
    ContainerHandle, Containerizer, Exit, LaunchError, LaunchRequest, Launched,
};
use crate::model::{CommandSpec, FetchUri, TaskSpec};

/// Starts every task as a process that never ends, once its gate is
/// open (at once when made open); `fail*` tasks fail to start.
pub(crate) struct Starter {
    gate: watch::Receiver<bool>,
    /// Only tasks whose id starts with this wait for the gate.
    gated: String,
}

impl Starter {
    pub(crate) fn open() -> Self {
        Self {
            gate: watch::channel(true).1,
            gated: String::new(),
        }
    }

    pub(crate) fn gated() -> (watch::Sender<bool>, Self) {
        Self::gating("")
    }

    /// Tasks whose id starts with `prefix` wait for the gate; others start.
    pub(crate) fn gating(prefix: &str) -> (watch::Sender<bool>, Self) {
        let (tx, gate) = watch::channel(false);
        let gated = prefix.to_string();
        (tx, Self { gate, gated })
    }
}

impl Containerizer for Starter {
    fn launch<'a>(
        &'a self,
        req: LaunchRequest<'a>,
    ) -> BoxFuture<'a, Result<Launched, LaunchError>> {
        let id = req.spec.task_id.clone();
        let mut gate = self.gate.clone();
        let waits = id.starts_with(&self.gated);
        Box::pin(async move {
            if waits {
                let _ = gate.wait_for(|open| *open).await;
            }
            if id.starts_with("fail") {
                return Err(LaunchError::new("REASON_CONTAINER_LAUNCH_FAILED", "no"));
            }
            Ok(Launched {
                handle: ContainerHandle::Process {
                    pid: 1,
                    start_time: 1,
                    pgid: 1,
                    exit_file: PathBuf::from("/nonexistent"),
                    cgroups: Vec::new(),
                },
                ips: Vec::new(),
            })
        })
    }
    fn wait<'a>(&'a self, _: &'a ContainerHandle) -> BoxFuture<'a, Exit> {
        Box::pin(std::future::pending())
    }
    fn kill<'a>(&'a self, _: &'a ContainerHandle, _: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    fn ours(&self) -> BoxFuture<'_, Vec<ContainerHandle>> {
        Box::pin(async { Vec::new() })
    }
    fn cleanup<'a>(&'a self, _: &'a ContainerHandle) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// A `sleep 600` task on agent `c-S0` that fetches `uris` first.
pub(crate) fn sleep_task(id: &str, uris: &[&str]) -> TaskSpec {
    TaskSpec {
        task_id: id.into(),
        agent_id: "c-S0".into(),
        command: Some(CommandSpec {
            value: Some("sleep 600".into()),
            shell: true,
            uris: uris
                .iter()
                .map(|u| FetchUri {
                    value: u.to_string(),
                    executable: false,
                    extract: false,
                    output_file: None,
                })
                .collect(),
            ..CommandSpec::default()
        }),
        ..TaskSpec::default()
    }
}

/// Tasks run by `process`, whose STARTING is held for `starting_hold`.
pub(crate) fn tasks_with(dir: &Path, process: Starter, starting_hold: Duration) -> Arc<Tasks> {
    let id = watch::channel(Some("c-S0".to_string())).1;
    let tasks = Tasks::new(
        Dirs::new(dir),
        "host".into(),
        "127.0.0.1:1".into(),
        Arc::new(process),
        Err("no docker here".into()),
        id,
    );
    Arc::new(Tasks {
        starting_hold,
        ..tasks
    })
}
