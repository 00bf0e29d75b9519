//! The scheduler role: a Marathon-compatible framework for long-running apps,
//! built into the master. Its state lives in the replicated registry, so a
//! leader failover loses no app, deployment or backoff.
//!
//! ```text
//!  /v2 HTTP (api/) ─▶ app/ parse, default, validate (422 with field paths)
//!        │ leader only (followers forward writes)
//!        ▼
//!  plan a deployment (deployment/) ─▶ propose Command::Marathon ─▶ raft ─▶ every master:
//!        registry.marathon.apply ─▶ Change::Marathon* ─▶ events/ (SSE on any node)
//!        │
//!  leader: the reconcile loop (driver) on each Change and a 1 s tick
//!        desired instances (app + running deployment step + backoff)
//!          vs the app's tasks in the registry
//!        ─▶ placement/ (constraints, resources, ports) ─▶ Master::launch_tasks
//!        ─▶ kill surplus (killSelection) ─▶ Master::kill_task
//!  agents run health and readiness checks (agent/health) and report them in
//!  status updates ─▶ registry ─▶ health in task JSON and events, deployments
//!        wait for new tasks healthy and ready
//! ```
//!
//! Rooms: `app/` (the app definition: wire form, defaults, validation, task
//! specs), `placement/` (constraints and agent choice), `state` (what the
//! registry holds for Marathon), `service_ports` (who holds which, and the
//! next free), the driver, `deployment/`, `events/`, and `api/` (the /v2
//! routes).

pub mod api;
pub mod app;
pub mod deployment;
pub mod driver;
pub mod events;
pub mod placement;
pub mod running_deployments;
pub mod service_ports;
pub mod state;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::master::Master;

/// Starts the scheduler on a master (its loop acts only while the master
/// leads) and returns what its HTTP routes need.
pub fn start(master: Arc<Master>, shutdown: CancellationToken) -> api::Ctx {
    let unplaced = driver::Unplaced::default();
    tokio::spawn(driver::run(
        master.clone(),
        unplaced.clone(),
        shutdown.clone(),
    ));
    let bus = events::start(master.clone(), shutdown);
    api::Ctx {
        master,
        unplaced,
        bus,
    }
}
