//! The scheduler's loop on the leader: on every registry change (and once a
//! second, for backoff and unreachable timers) it plans a round
//! ([`reconcile::plan`]) and carries it out through the master's own launch
//! and kill paths, then deployments move on. A change's round reads the apps
//! it touched ([`scope`]); the tick's reads them all.
//!
//! ```text
//!  Change bus (leader only) ─▶ Dirty ─┐
//!  1 s tick ──────────────────────────┴─▶ leader? ─▶ plan(registry, now, scope) ─▶ KillTasks,
//!                   LaunchTasks, AdvanceDeployment / FinishDeployment (one Raft round)
//! ```
//!
//! Every master runs the loop; only the leader listens to the change bus and
//! acts. A new leader needs no hand-over: the plan is made from the
//! replicated state alone, so it picks up a deployment where the old leader
//! left it, and the tasks that run stay.
//! It waits until it has applied an entry of its own term (`caught_up`):
//! until then its registry may lack launches the old leader committed, and a
//! round planned from it would launch those instances a second time.

pub mod reconcile;
pub mod scope;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::master::command::Command;
use crate::master::registry::Change;
use crate::master::{Master, now_secs};
use crate::scheduler::placement::RejectSummary;
use crate::scheduler::state::MarathonCommand;

use reconcile::MAX_LAUNCHES;
use scope::{Dirty, Scope};

/// Rounds longer than this are followed by a rest as long as they took.
const REST_AFTER: Duration = Duration::from_millis(1);

/// What the last round could not place, per app (shown by `/v2/queue`).
pub type Unplaced = Arc<Mutex<BTreeMap<String, (usize, RejectSummary)>>>;

pub async fn run(master: Arc<Master>, unplaced: Unplaced, shutdown: CancellationToken) {
    // Only the leader plans, so only the leader listens: a follower holding
    // a receiver had every change cloned for it, 1.3% of a follower's CPU in
    // a 10,000-agent deployment. A leader (re)subscribing reads every app.
    let mut changes = None;
    let mut status = master.raft.watch();
    let mut dirty = Dirty::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = next_change(&mut changes) => {
                match got {
                    Ok(change) => dirty.note(&change),
                    Err(RecvError::Lagged(_)) => dirty.everything(),
                    Err(RecvError::Closed) => return,
                }
                while let Some(rx) = changes.as_mut() {
                    match rx.try_recv() {
                        Ok(change) => dirty.note(&change),
                        Err(TryRecvError::Lagged(_)) => dirty.everything(),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => dirty.everything(),
            // A new leader's first round comes as soon as it has caught up
            // (it holds no receiver yet); other moves change nothing here.
            got = status.changed() => {
                if got.is_err() {
                    return;
                }
                let leading = status.borrow_and_update().caught_up;
                if !leading {
                    changes = None;
                }
                if !leading || changes.is_some() {
                    continue;
                }
            }
        }
        if !master.status().caught_up {
            changes = None;
            continue;
        }
        if changes.is_none() {
            changes = Some(master.subscribe());
            dirty.everything();
        }
        let planning = std::time::Instant::now();
        let (plan, scope) = {
            let registry = master.registry();
            let scope = dirty.take(&registry);
            if registry.marathon.apps.is_empty()
                && registry.marathon.deployments.is_empty()
                && registry.apps_with_tasks().next().is_none()
            {
                continue;
            }
            (reconcile::plan(&registry, now_secs(), &scope), scope)
        };
        let planned_in = planning.elapsed();
        if plan.launches.len() >= MAX_LAUNCHES {
            // Apps were left for want of room in this round's entry.
            dirty.everything();
        }
        if let Ok(mut u) = unplaced.lock() {
            match &scope {
                Scope::All => *u = plan.unplaced,
                Scope::Apps(apps) => {
                    u.retain(|app, _| !apps.contains(app));
                    u.extend(plan.unplaced);
                }
            }
        }
        // Everything the round decided is handed to Raft in order before
        // any of it is awaited: one Raft round (one fsync) for the kills, the
        // launches and the deployments' moves, where awaiting each in turn
        // took three. Awaited one by one, 1,000 deployments ending in one
        // round took 1,000 rounds, and no launch was planned meanwhile.
        // Failures (lost leadership, a timeout) are retried by the next
        // round, which reads every app.
        let mut failed = false;
        let kills = match master.enqueue_kills(&plan.kills).await {
            Ok(kills) => kills,
            Err(e) => {
                tracing::info!(error = %e.message, "scheduler: kills not proposed");
                failed = true;
                None
            }
        };
        let launches = if plan.launches.is_empty() || failed {
            None
        } else {
            match master.enqueue_launch(plan.launches).await {
                Ok(launching) => Some(launching),
                Err(e) => {
                    tracing::info!(error = %e.message, "scheduler: launches not proposed");
                    failed = true;
                    None
                }
            }
        };
        let steps = plan
            .advance
            .into_iter()
            .map(|(id, step)| MarathonCommand::AdvanceDeployment { id, step });
        let ends = plan
            .finish
            .into_iter()
            .map(|(id, outcome)| MarathonCommand::FinishDeployment { id, outcome });
        let mut moves = Vec::new();
        for command in steps.chain(ends) {
            if failed {
                break;
            }
            match master.raft.enqueue(Command::Marathon { command }).await {
                Ok(answer) => moves.push(answer),
                Err(_) => failed = true,
            }
        }
        if let Some(kills) = kills
            && let Err(e) = kills.sent(&master).await
        {
            tracing::info!(error = %e.message, "scheduler: kills not committed");
            failed = true;
        }
        if let Some(launches) = launches
            && let Err(e) = launches.sent(&master).await
        {
            tracing::info!(error = %e.message, "scheduler: launches not committed");
            failed = true;
        }
        for answer in moves {
            if answer.wait().await.is_err() {
                failed = true;
            }
        }
        if failed {
            dirty.everything();
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

/// The next change on the leader's receiver; never, without one.
async fn next_change(
    changes: &mut Option<broadcast::Receiver<Change>>,
) -> Result<Change, RecvError> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
