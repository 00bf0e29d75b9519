//! The scheduler's loop on the leader: on every registry change (and once a
//! second, for backoff and unreachable timers) it plans a round
//! ([`reconcile::plan`]) and carries it out through the master's own launch
//! and kill paths, then deployments move on.
//!
//! ```text
//!  Change bus ─┐
//!  1 s tick ───┴─▶ leader? ─▶ plan(registry, now) ─▶ KillTasks ─▶ LaunchTasks
//!                                                 ─▶ AdvanceDeployment / FinishDeployment
//! ```
//!
//! Every master runs the loop; only the leader acts. A new leader needs no
//! hand-over: the plan is made from the replicated state alone, so it picks up
//! a deployment where the old leader left it, and the tasks that run stay.
//! It waits until it has applied an entry of its own term (`caught_up`):
//! until then its registry may lack launches the old leader committed, and a
//! round planned from it would launch those instances a second time.

pub mod reconcile;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::master::command::Command;
use crate::master::{Master, now_secs};
use crate::scheduler::placement::RejectSummary;
use crate::scheduler::state::MarathonCommand;

/// Rounds longer than this are followed by a rest as long as they took.
const REST_AFTER: Duration = Duration::from_millis(1);

/// What the last round could not place, per app (shown by `/v2/queue`).
pub type Unplaced = Arc<Mutex<BTreeMap<String, (usize, RejectSummary)>>>;

pub async fn run(master: Arc<Master>, unplaced: Unplaced, shutdown: CancellationToken) {
    let mut changes = master.subscribe();
    let mut status = master.raft.watch();
    let mut caught_up = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = changes.recv() => match got {
                Err(RecvError::Closed) => return,
                // Lagged or not, the round reads the registry as it is now.
                _ => while changes.try_recv().is_ok() {},
            },
            _ = tick.tick() => {}
            // A new leader's first round comes as soon as it has caught up.
            got = status.changed() => {
                if got.is_err() {
                    return;
                }
                let now = status.borrow_and_update().caught_up;
                let became = now && !caught_up;
                caught_up = now;
                if !became {
                    continue;
                }
            }
        }
        if !master.status().caught_up {
            continue;
        }
        let planning = std::time::Instant::now();
        let plan = {
            let registry = master.registry();
            if registry.marathon.apps.is_empty()
                && registry.marathon.deployments.is_empty()
                && registry.apps_with_tasks().next().is_none()
            {
                continue;
            }
            reconcile::plan(&registry, now_secs())
        };
        let planned_in = planning.elapsed();
        if let Ok(mut u) = unplaced.lock() {
            *u = plan.unplaced;
        }
        // Failures (lost leadership, a timeout) are retried by the next round.
        if !plan.kills.is_empty()
            && let Err(e) = master.kill_tasks(&plan.kills).await
        {
            tracing::info!(error = %e.message, "scheduler: kills not committed");
            continue;
        }
        if !plan.launches.is_empty()
            && let Err(e) = master.launch_tasks(plan.launches).await
        {
            tracing::info!(error = %e.message, "scheduler: launches not committed");
            continue;
        }
        for (id, step) in plan.advance {
            let command = MarathonCommand::AdvanceDeployment { id, step };
            let _ = master.raft.propose(Command::Marathon { command }).await;
        }
        for (id, outcome) in plan.finish {
            let command = MarathonCommand::FinishDeployment { id, outcome };
            let _ = master.raft.propose(Command::Marathon { command }).await;
        }
        // A round that places or restarts reads every agent and many tasks:
        // with tens of thousands it takes milliseconds, and status updates
        // coming back to back would keep the loop planning without a pause.
        // Resting as long as the round took holds it to half a core; changes
        // meanwhile make one round. Rounds of a small cluster take
        // microseconds and never rest.
        if planned_in > REST_AFTER {
            tracing::debug!(ms = planned_in.as_secs_f64() * 1e3, "scheduler round");
            tokio::time::sleep(planned_in).await;
        }
    }
}
