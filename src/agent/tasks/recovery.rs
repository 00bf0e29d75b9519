//! After an agent restart: every checkpointed container is watched again,
//! launches the restart interrupted are settled, and containers of this
//! agent's that no checkpoint knows (orphans) are killed.

use std::sync::Arc;
use std::time::Duration;

use super::Tasks;
use crate::agent::containerizer::ContainerHandle;
use crate::model::TaskState;

impl Tasks {
    /// After a restart: watch every checkpointed container again, settle
    /// launches the restart interrupted, and kill containers of ours that no
    /// checkpoint knows.
    pub async fn recover(self: &Arc<Self>) {
        let records = self.dirs.load_all();
        let mut known: Vec<ContainerHandle> = Vec::new();
        let mut watch = Vec::new();
        let mut interrupted = Vec::new();
        {
            let mut map = self.records();
            for r in records {
                if !r.state.is_terminal() {
                    match &r.handle {
                        Some(h) => {
                            known.push(h.clone());
                            let checked = r.state == TaskState::Running && !r.kill_requested;
                            watch.push((r.spec.task_id.clone(), h.clone(), checked));
                        }
                        None => interrupted.push(r.spec.task_id.clone()),
                    }
                }
                self.insert_record(&mut map, r);
            }
        }
        tracing::info!(
            watching = watch.len(),
            interrupted = interrupted.len(),
            "agent recovered its tasks"
        );
        for id in interrupted {
            self.fail(
                &id,
                "REASON_CONTAINER_LAUNCH_FAILED",
                "the agent restarted while launching the task".into(),
            );
        }
        for containerizer in self.containerizers() {
            for orphan in containerizer.ours().await {
                if !known.iter().any(|k| same_container(k, &orphan)) {
                    tracing::warn!(container = ?orphan, "killing a container no task of this agent owns");
                    containerizer.kill(&orphan, Duration::ZERO).await;
                    containerizer.cleanup(&orphan).await;
                }
            }
        }
        for (id, handle, checked) in watch {
            let Some(containerizer) = self.containerizer_of(&handle) else {
                self.fail(
                    &id,
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    "its containerizer is disabled since the agent restarted".into(),
                );
                continue;
            };
            if checked {
                self.start_checks(&id, &handle, &containerizer);
            }
            let me = self.clone();
            tokio::spawn(async move { me.watch(id, handle, containerizer).await });
        }
    }
}

/// Two handles name the same container (a recovered handle may differ in
/// details such as cgroup paths).
fn same_container(a: &ContainerHandle, b: &ContainerHandle) -> bool {
    match (a, b) {
        (
            ContainerHandle::Process {
                pid: p,
                start_time: t,
                ..
            },
            ContainerHandle::Process {
                pid: q,
                start_time: u,
                ..
            },
        ) => p == q && t == u,
        (
            ContainerHandle::Docker {
                container_id: x,
                name: m,
            },
            ContainerHandle::Docker {
                container_id: y,
                name: n,
            },
        ) => x == y || m == n,
        _ => false,
    }
}
