//! A task's launch: STARTING, the sandbox and the fetch, the containerizer's
//! start, RUNNING, then the watch for its end. The synchronous file work
//! (the sandbox, handing the task to the containerizer) holds one of a few
//! preparation permits; a fetch, network I/O that may take minutes, does not.
//!
//! ```text
//!  permit ─▶ STARTING (held) ─▶ sandbox, (no permit: fetch) ─▶ containerizer.launch ─▶ RUNNING
//!                 │                                                        │
//!                 └── sent with RUNNING (or the failure), in one UPDATE ◀──┘
//!                     or alone once the start has taken STARTING_HOLD
//! ```
//!
//! Why STARTING waits: the update sender keeps one call in flight, and a
//! process task starts in a few milliseconds, about what STARTING's own
//! UPDATE took to commit (a Raft write) on a machine busy with the start
//! itself. RUNNING then waited for that call's 202 before it could go: ~1 ms
//! of every launch, and two log entries where one does. A second call in
//! flight would not keep each task's order: two calls commit in either
//! order, and the registry, which drops a status only by its uuid, would
//! take a STARTING committed after its RUNNING as the task's new state.

use std::sync::Arc;

use tokio::sync::SemaphorePermit;

use super::{SOURCE_AGENT, SOURCE_EXECUTOR, Sending, Tasks};
use crate::agent::checkpoint::Record;
use crate::agent::containerizer::{ContainerHandle, Containerizer, LaunchRequest};
use crate::agent::env::task_env;
use crate::model::{TaskSpec, TaskState, TaskStatus};

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
            self.insert_record(&mut records, record);
        }
        let me = self.clone();
        tokio::spawn(async move { me.run(id).await });
    }

    async fn run(self: Arc<Self>, id: String) {
        // Never closed, so always granted in the end.
        let permit = self.preparing.acquire().await.ok();
        let Some(spec) = self.spec(&id) else { return };
        if self.kill_requested(&id) {
            // Killed while it waited for a permit: nothing to prepare.
            self.killed_during_launch(&id);
            return;
        }
        let preparing = match spec.command.as_ref().map_or(0, |c| c.uris.len()) {
            0 => "preparing the sandbox".to_string(),
            n => format!("fetching {n} URI(s) into the sandbox"),
        };
        let accept = |_: &mut Record| true;
        let fill = |s: TaskStatus| s.source(SOURCE_EXECUTOR).message(preparing);
        self.record_status(&id, TaskState::Starting, accept, fill, Sending::Held);
        let started = self
            .holding_starting(&id, self.start(&id, &spec, permit))
            .await;
        // Every way out of `start` records a status, which sends STARTING
        // with it; this is for the record that is gone.
        self.release(&id);
        let Some((handle, containerizer, kill_now)) = started else {
            return;
        };
        // RUNNING was just queued, and its sender woken into this worker's
        // next turn: let it send before the checks and the watch set up.
        tokio::task::yield_now().await;
        if kill_now {
            self.kill(&id, spec.kill_grace_period());
        } else {
            self.start_checks(&id, &handle, &containerizer);
        }
        self.watch(id, handle, containerizer).await;
    }

    /// Awaits a task's start while its STARTING is held back, so that a
    /// quick start (a process task's few milliseconds) sends STARTING in one
    /// UPDATE with the RUNNING or the failure after it: one Raft write
    /// instead of two, and RUNNING never waits for STARTING's
    /// acknowledgement (the sender keeps one call in flight). A start slower
    /// than [`STARTING_HOLD`](super::STARTING_HOLD) (a fetch, a docker
    /// container) lets STARTING go on its own then.
    async fn holding_starting<T>(&self, id: &str, start: impl Future<Output = T>) -> T {
        let mut start = std::pin::pin!(start);
        match tokio::time::timeout(self.starting_hold, &mut start).await {
            Ok(started) => started,
            Err(_) => {
                self.release(id);
                start.await
            }
        }
    }

    /// From STARTING to RUNNING: the sandbox, the fetch, the containerizer's
    /// start. The container's handle, its containerizer and whether a kill
    /// came meanwhile; None when it did not start (its status says why).
    async fn start(
        &self,
        id: &str,
        spec: &TaskSpec,
        mut permit: Option<SemaphorePermit<'_>>,
    ) -> Option<(ContainerHandle, Arc<dyn Containerizer>, bool)> {
        let uris = spec
            .command
            .as_ref()
            .map(|c| c.uris.as_slice())
            .unwrap_or(&[]);
        let sandbox = self.dirs.sandbox(id);
        let meta = self.dirs.meta(id);
        if let Err(e) = std::fs::create_dir_all(&sandbox) {
            let msg = format!("cannot create the sandbox {}: {e}", sandbox.display());
            self.fail(id, "REASON_CONTAINER_PREPARATION_FAILED", msg);
            return None;
        }
        if !uris.is_empty() {
            // A download may take minutes (a slow server, a large artifact):
            // held by four of them, the permits stopped every launch on the
            // agent. The fetch is async I/O and starves nothing; after it
            // the launch queues for a permit again.
            drop(permit);
            let fetched = crate::agent::fetcher::fetch(uris, &sandbox).await;
            if let Err(e) = fetched {
                self.fail(id, "REASON_CONTAINER_PREPARATION_FAILED", e);
                return None;
            }
            permit = self.preparing.acquire().await.ok();
        }
        let containerizer = match self.containerizer(spec) {
            Ok(c) => c,
            Err(why) => {
                self.fail(id, "REASON_CONTAINER_LAUNCH_FAILED", why);
                return None;
            }
        };
        if self.kill_requested(id) {
            self.killed_during_launch(id);
            return None;
        }
        let request = LaunchRequest {
            spec,
            sandbox: &sandbox,
            env: task_env(spec, &sandbox, &self.hostname, &self.agent_addr),
            meta_dir: &meta,
        };
        // Waiting for the container to start needs no permit (a docker
        // start takes hundreds of ms); the containerizer's own synchronous
        // part (a process task's cgroups) runs unpermitted too, before its
        // first await.
        drop(permit);
        let launched = match containerizer.launch(request).await {
            Ok(l) => l,
            Err(e) => {
                self.fail(id, e.reason, e.message);
                return None;
            }
        };
        let handle = launched.handle.clone();
        let kill_now = {
            let mut records = self.records();
            match records.get_mut(id) {
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
        self.set_status(id, TaskState::Running, |mut s| {
            s.container_ips = launched.ips.clone();
            s.source(SOURCE_EXECUTOR).message(running)
        });
        Some((handle, containerizer, kill_now))
    }

    fn killed_during_launch(&self, id: &str) {
        self.set_status(id, TaskState::Killed, |s| {
            s.source(SOURCE_AGENT)
                .reason("REASON_TASK_KILLED_DURING_LAUNCH")
                .message("killed before it started")
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use tokio::sync::watch;

    use super::*;
    use crate::agent::checkpoint::Dirs;
    use crate::agent::tasks::PREPARING_AT_ONCE;
    use crate::agent::tasks::testing::{Starter, sleep_task as spec, tasks_with};

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
            Arc::new(Starter::open()),
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

    /// Fetches from a server that never answers do not hold the
    /// preparation permits: a launch without URIs behind more of them than
    /// there are permits still runs.
    #[tokio::test]
    async fn a_slow_fetch_does_not_hold_up_other_launches() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = format!("http://{}/big.tgz", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let tasks = tasks_with(dir.path(), Starter::open(), Duration::from_millis(10));
        for n in 0..=PREPARING_AT_ONCE {
            tasks.launch(spec(&format!("fetching-{n}"), &[&silent]));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        tasks.launch(spec("plain", &[]));
        eventually("the launch without URIs running", || {
            state_of(&tasks, "plain") == Some(TaskState::Running)
        })
        .await;
        assert_eq!(state_of(&tasks, "fetching-0"), Some(TaskState::Starting));
    }

    /// A task killed while it waits for a permit ends KILLED without being
    /// prepared: no STARTING, no sandbox.
    #[tokio::test]
    async fn a_task_killed_while_queued_is_not_prepared() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let tasks = tasks_with(dir.path(), Starter::open(), Duration::from_millis(10));
        let all = tasks
            .preparing
            .acquire_many(PREPARING_AT_ONCE as u32)
            .await
            .unwrap();
        tasks.launch(spec("queued", &[]));
        tokio::time::sleep(Duration::from_millis(50)).await;
        tasks.kill("queued", Duration::from_secs(1));
        drop(all);
        eventually("the queued task KILLED", || {
            state_of(&tasks, "queued") == Some(TaskState::Killed)
        })
        .await;
        assert_eq!(to_send(&tasks, "queued"), [TaskState::Killed]);
        assert!(!tasks.dirs.sandbox("queued").exists());
    }

    /// The states of a task's updates the sender would send now, in order.
    fn to_send(tasks: &Tasks, id: &str) -> Vec<TaskState> {
        let pending = tasks.pending(10_000);
        pending
            .iter()
            .filter(|s| s.task_id == id)
            .map(|s| s.state)
            .collect()
    }

    fn state_of(tasks: &Tasks, id: &str) -> Option<TaskState> {
        tasks
            .report()
            .into_iter()
            .find(|t| t.task_id == id)
            .map(|t| t.state)
    }

    async fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The count of launches under way (what the update sender waits on)
    /// follows every way in and out: launches, a start, a failed start, a
    /// kill of a task never seen.
    #[tokio::test]
    async fn the_launches_under_way_are_counted_through_every_change() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (gate, starter) = Starter::gating("slow");
        let tasks = tasks_with(dir.path(), starter, Duration::from_secs(3600));
        let recount = |tasks: &Tasks| {
            tasks
                .report()
                .iter()
                .filter(|t| matches!(t.state, TaskState::Staging | TaskState::Starting))
                .count()
        };
        for id in ["slow-1", "slow-2", "fail-1", "quick-1"] {
            tasks.launch(spec(id, &[]));
        }
        assert_eq!(tasks.launches_under_way(), 4);
        eventually("the quick ones ended their launch", || {
            state_of(&tasks, "quick-1") == Some(TaskState::Running)
                && state_of(&tasks, "fail-1") == Some(TaskState::Failed)
        })
        .await;
        assert_eq!(tasks.launches_under_way(), 2);
        assert_eq!(tasks.launches_under_way(), recount(&tasks));
        tasks.kill("never-seen", Duration::from_secs(1));
        assert_eq!(tasks.launches_under_way(), 2);
        let _ = gate.send(true);
        eventually("every launch over", || tasks.launches_under_way() == 0).await;
        assert_eq!(recount(&tasks), 0);
    }

    /// While a task starts, its STARTING is held back; what ends the start
    /// (RUNNING, or the failure) sends STARTING with it, in order: the
    /// master gets both in one UPDATE.
    #[tokio::test]
    async fn a_start_sends_starting_with_what_follows() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (gate, starter) = Starter::gated();
        let tasks = tasks_with(dir.path(), starter, Duration::from_secs(3600));
        tasks.launch(spec("quick", &[]));
        tasks.launch(spec("fail-quick", &[]));
        eventually("both tasks STARTING", || {
            state_of(&tasks, "quick") == Some(TaskState::Starting)
                && state_of(&tasks, "fail-quick") == Some(TaskState::Starting)
        })
        .await;
        assert_eq!(tasks.pending(10_000), Vec::new(), "STARTING is held");

        gate.send_replace(true);
        eventually("both starts ended", || {
            to_send(&tasks, "quick").len() == 2 && to_send(&tasks, "fail-quick").len() == 2
        })
        .await;
        assert_eq!(
            to_send(&tasks, "quick"),
            [TaskState::Starting, TaskState::Running]
        );
        assert_eq!(
            to_send(&tasks, "fail-quick"),
            [TaskState::Starting, TaskState::Failed]
        );
    }

    /// A start that takes longer than the hold (a fetch, a docker pull)
    /// shows STARTING on its own meanwhile.
    #[tokio::test]
    async fn a_slow_start_sends_starting_alone() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (gate, starter) = Starter::gated();
        let tasks = tasks_with(dir.path(), starter, Duration::from_millis(10));
        tasks.launch(spec("slow", &[]));
        eventually("STARTING sent while the start goes on", || {
            to_send(&tasks, "slow") == [TaskState::Starting]
        })
        .await;
        gate.send_replace(true);
        eventually("RUNNING after it", || {
            to_send(&tasks, "slow") == [TaskState::Starting, TaskState::Running]
        })
        .await;
    }
}
