//! A task's launch: STARTING, the sandbox and the fetch (holding one of a
//! few preparation permits), the containerizer's start, RUNNING, then the
//! watch for its end.

use std::sync::Arc;

use super::{SOURCE_AGENT, SOURCE_EXECUTOR, Tasks};
use crate::agent::checkpoint::Record;
use crate::agent::containerizer::{ContainerHandle, LaunchRequest};
use crate::agent::env::task_env;
use crate::model::{TaskSpec, TaskState};

impl Tasks {
    /// Starts a task the master sent. A task already known (a LAUNCH sent
    /// again after a failover) is left alone.
    pub fn launch(self: &Arc<Self>, spec: TaskSpec) {
        let id = spec.task_id.clone();
        {
            let mut records = self.records();
            if records.contains_key(&id) {
                tracing::debug!(task = %id, "LAUNCH of a task already known ignored");
                return;
            }
            let record = Record::new(spec, TaskState::Staging, false);
            // Not checkpointed until STARTING (a moment later): an agent that
            // dies in between does not report the task, and the leader sends
            // the LAUNCH again.
            records.insert(id.clone(), record);
        }
        let me = self.clone();
        tokio::spawn(async move { me.run(id).await });
    }

    async fn run(self: Arc<Self>, id: String) {
        // Never closed, so always granted in the end.
        let permit = self.preparing.acquire().await.ok();
        let Some(spec) = self.spec(&id) else { return };
        let uris = spec
            .command
            .as_ref()
            .map(|c| c.uris.as_slice())
            .unwrap_or(&[]);
        let preparing = match uris.len() {
            0 => "preparing the sandbox".to_string(),
            n => format!("fetching {n} URI(s) into the sandbox"),
        };
        self.set_status(&id, TaskState::Starting, |s| {
            s.source(SOURCE_EXECUTOR).message(preparing)
        });
        let sandbox = self.dirs.sandbox(&id);
        let meta = self.dirs.meta(&id);
        if let Err(e) = std::fs::create_dir_all(&sandbox) {
            let msg = format!("cannot create the sandbox {}: {e}", sandbox.display());
            return self.fail(&id, "REASON_CONTAINER_PREPARATION_FAILED", msg);
        }
        if let Err(e) = crate::agent::fetcher::fetch(uris, &sandbox).await {
            return self.fail(&id, "REASON_CONTAINER_PREPARATION_FAILED", e);
        }
        let containerizer = match self.containerizer(&spec) {
            Ok(c) => c,
            Err(why) => return self.fail(&id, "REASON_CONTAINER_LAUNCH_FAILED", why),
        };
        if self.kill_requested(&id) {
            return self.set_status(&id, TaskState::Killed, |s| {
                s.source(SOURCE_AGENT)
                    .reason("REASON_TASK_KILLED_DURING_LAUNCH")
                    .message("killed before it started")
            });
        }
        let request = LaunchRequest {
            spec: &spec,
            sandbox: &sandbox,
            env: task_env(&spec, &sandbox, &self.hostname, &self.agent_addr),
            meta_dir: &meta,
        };
        // The containerizer's own synchronous part runs before its first
        // await, so the next launch's preparation still queues behind it;
        // waiting for the container to start needs no permit (a docker
        // start takes hundreds of ms).
        drop(permit);
        let launched = match containerizer.launch(request).await {
            Ok(l) => l,
            Err(e) => return self.fail(&id, e.reason, e.message),
        };
        let handle = launched.handle.clone();
        let kill_now = {
            let mut records = self.records();
            match records.get_mut(&id) {
                Some(r) => {
                    // Checkpointed with the RUNNING status just below; an
                    // agent dying in between leaves an orphan that recovery kills.
                    r.handle = Some(handle.clone());
                    r.container_ips = launched.ips.clone();
                    r.kill_requested
                }
                None => false,
            }
        };
        let running = match &handle {
            ContainerHandle::Process { pgid, .. } => format!("running as process group {pgid}"),
            ContainerHandle::Docker { name, .. } => format!("running in container {name}"),
        };
        self.set_status(&id, TaskState::Running, |mut s| {
            s.container_ips = launched.ips.clone();
            s.source(SOURCE_EXECUTOR).message(running)
        });
        if kill_now {
            self.kill(&id, spec.kill_grace_period());
        } else {
            self.start_checks(&id, &handle, &containerizer);
        }
        self.watch(id, handle, containerizer).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use futures::future::BoxFuture;
    use tokio::sync::watch;

    use super::*;
    use crate::agent::checkpoint::Dirs;
    use crate::agent::containerizer::{Containerizer, Exit, LaunchError, Launched};
    use crate::agent::tasks::PREPARING_AT_ONCE;
    use crate::model::{CommandSpec, FetchUri};

    /// Starts every task at once, as a process that never ends; `fail*`
    /// tasks fail to start.
    struct Instant;

    impl Containerizer for Instant {
        fn launch<'a>(
            &'a self,
            req: LaunchRequest<'a>,
        ) -> BoxFuture<'a, Result<Launched, LaunchError>> {
            let id = req.spec.task_id.clone();
            Box::pin(async move {
                if id.starts_with("fail") {
                    return Err(LaunchError::new("REASON_CONTAINER_LAUNCH_FAILED", "no"));
                }
                Ok(Launched {
                    handle: ContainerHandle::Process {
                        shim_pid: 1,
                        shim_start_time: 1,
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

    fn spec(id: &str, uris: &[&str]) -> TaskSpec {
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

    fn last_states(tasks: &Tasks) -> HashMap<String, TaskState> {
        let mut last = HashMap::new();
        for s in tasks.pending(10_000) {
            last.insert(s.task_id.clone(), s.state);
        }
        last
    }

    /// Launches that fail while they hold a preparation permit (a fetch that
    /// fails) or just after (the containerizer refuses) give it back: a
    /// burst of them, many more than there are permits, does not keep the
    /// launches behind them from running.
    #[tokio::test]
    async fn failed_launches_do_not_keep_later_ones_waiting() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (_id_tx, id_rx) = watch::channel(Some("c-S0".to_string()));
        let tasks = Arc::new(Tasks::new(
            Dirs::new(dir.path()),
            "host".into(),
            "127.0.0.1:1".into(),
            Arc::new(Instant),
            Err("no docker here".into()),
            id_rx,
        ));
        let missing = format!("{}/missing.tgz", dir.path().display());
        let burst = PREPARING_AT_ONCE * 3;
        for n in 0..burst {
            tasks.launch(spec(&format!("fetch-{n}"), &[&missing]));
            tasks.launch(spec(&format!("fail-{n}"), &[]));
        }
        for n in 0..burst {
            tasks.launch(spec(&format!("ok-{n}"), &[]));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let last = last_states(&tasks);
            let all = |prefix: &str, state| {
                (0..burst).all(|n| last.get(&format!("{prefix}-{n}")) == Some(&state))
            };
            if all("ok", TaskState::Running)
                && all("fetch", TaskState::Failed)
                && all("fail", TaskState::Failed)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not every launch settled: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
