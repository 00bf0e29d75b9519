//! One round of the scheduler, as a pure function of the registry and the
//! time: what to launch, what to kill, which deployments move on. The driver
//! carries the plan out and calls this again on the next change, so each
//! round only has to be right about the state it sees, never remember.
//!
//! ```text
//!  per app: its live tasks ─▶ counted (staging/starting/running, unreachable
//!           until inactiveAfterSeconds) / killing / old config / new config
//!     restart step running? ─▶ replace old by new within upgradeStrategy
//!     else                 ─▶ kill the surplus (killSelection), launch the missing
//!                             (not before the backoff delay), placed by placement/
//!  tasks of removed apps ─▶ kill
//!  per deployment: every action of its step holds ─▶ advance, or finish
//! ```

use std::collections::BTreeMap;

use crate::master::registry::Registry;
use crate::model::{RunSpecRef, Task, TaskSpec, TaskState};
use crate::scheduler::app::{AppDefinition, KillSelection, UnreachableStrategy, new_task_id};
use crate::scheduler::placement::{
    self, AgentView, Constraint, Demand, InstanceView, Placed, RejectSummary,
};
use crate::scheduler::state::{ActionKind, Deployment, Outcome};

/// Launches per round: one log entry stays well under a megabyte.
pub const MAX_LAUNCHES: usize = 1000;

/// The framework id Marathon's tasks carry (`<cluster>-0001`).
pub fn framework_id(registry: &Registry) -> String {
    format!("{}-0001", registry.cluster_id.as_deref().unwrap_or("meso"))
}

#[derive(Debug, Default)]
pub struct Plan {
    pub launches: Vec<TaskSpec>,
    pub kills: Vec<String>,
    /// Deployment id and the step to move to.
    pub advance: Vec<(String, usize)>,
    pub finish: Vec<(String, Outcome)>,
    /// Apps with instances that found no agent, and why (for `/v2/queue`).
    pub unplaced: BTreeMap<String, (usize, RejectSummary)>,
}

/// The version of an app's configuration: tasks of another one are replaced
/// by a restart.
pub fn config_version(app: &AppDefinition) -> String {
    app.version_info
        .as_ref()
        .map(|v| v.last_config_change_at.clone())
        .or_else(|| app.version.clone())
        .unwrap_or_default()
}

/// Whether a task counts as healthy for its app: running, and, when the app
/// has health checks, reported healthy by its agent.
pub fn is_healthy(task: &Task, app: &AppDefinition) -> bool {
    task.state == TaskState::Running && (app.health_checks.is_empty() || task.healthy == Some(true))
}

/// An app's live tasks, sorted into what the round needs.
#[derive(Debug, Default)]
struct AppTasks<'a> {
    /// Count as instances: staging, starting, running, and unreachable ones
    /// still within their inactive time.
    counted: Vec<&'a Task>,
    /// Asked to end, not ended yet: they still hold capacity.
    killing: Vec<&'a Task>,
    /// Unreachable past their expunge time: to kill (ends them when their
    /// agent comes back).
    expunge: Vec<&'a Task>,
}

fn sort_tasks<'a>(app: &AppDefinition, tasks: &[&'a Task], now: f64) -> AppTasks<'a> {
    let mut out = AppTasks::default();
    for task in tasks {
        if task.kill_requested || task.state == TaskState::Killing {
            out.killing.push(task);
            continue;
        }
        if task.state != TaskState::Unreachable {
            out.counted.push(task);
            continue;
        }
        let since = task
            .statuses
            .iter()
            .rev()
            .take_while(|s| s.state == TaskState::Unreachable)
            .last()
            .map_or(now, |s| s.timestamp);
        match &app.unreachable_strategy {
            UnreachableStrategy::Disabled => out.counted.push(task),
            UnreachableStrategy::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => {
                let gone_for = now - since;
                if gone_for >= *expunge_after_seconds as f64 {
                    out.expunge.push(task);
                } else if gone_for < *inactive_after_seconds as f64 {
                    out.counted.push(task);
                }
                // Between the two: neither counted nor killed; replaced.
            }
        }
    }
    out
}

pub fn plan(registry: &Registry, now: f64) -> Plan {
    let marathon = &registry.marathon;
    let mut plan = Plan::default();
    let mut by_app: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for task in registry.tasks.values() {
        if let Some(run) = &task.spec.run_spec {
            by_app.entry(run.app_id.as_str()).or_default().push(task);
        }
    }
    // Tasks of apps that no longer exist.
    for (app_id, tasks) in &by_app {
        if !marathon.apps.contains_key(*app_id) {
            plan.kills.extend(
                tasks
                    .iter()
                    .filter(|t| !t.kill_requested)
                    .map(|t| t.spec.task_id.clone()),
            );
        }
    }
    let mut agents = AgentView::from_registry(registry);
    let framework = framework_id(registry);
    let restarting: Vec<&str> = marathon
        .deployments
        .values()
        .flat_map(|d| d.current())
        .filter(|a| a.action == ActionKind::RestartApplication)
        .map(|a| a.app.as_str())
        .collect();
    let no_tasks = Vec::new();
    for (app_id, record) in &marathon.apps {
        let app = record.current();
        let tasks = by_app.get(app_id.as_str()).unwrap_or(&no_tasks);
        let sorted = sort_tasks(app, tasks, now);
        plan.kills
            .extend(sorted.expunge.iter().map(|t| t.spec.task_id.clone()));
        let version = config_version(app);
        let n = app.instances as usize;
        let (kill, launch) = if restarting.contains(&app_id.as_str()) {
            restart_round(app, &sorted, &version, n)
        } else {
            scale_round(app, &sorted, n, &agents)
        };
        plan.kills.extend(kill);
        if launch == 0 {
            continue;
        }
        let delayed = marathon.delays.get(app_id).is_some_and(|d| now < d.until);
        let room = MAX_LAUNCHES.saturating_sub(plan.launches.len());
        if delayed || room == 0 {
            continue;
        }
        let launch = launch.min(room);
        let existing: Vec<Placed> = sorted
            .counted
            .iter()
            .map(|t| Placed {
                agent_id: t.spec.agent_id.clone(),
            })
            .collect();
        // Stored apps were validated, constraints included; one that no
        // longer parses places as if it had none rather than not at all.
        let constraints = Constraint::parse_all(&app.constraints).unwrap_or_default();
        let placement = placement::place(
            &mut agents,
            &demand_of(app),
            &constraints,
            &existing,
            launch,
        );
        for placement::Chosen {
            agent_id,
            host_ports,
        } in placement.chosen
        {
            let task_id = new_task_id(&app.id);
            let app_version = app.version.clone().unwrap_or_default();
            let mut spec = app.task_spec(&task_id, &agent_id, &host_ports, &app_version);
            spec.framework_id = Some(framework.clone());
            spec.run_spec = Some(RunSpecRef {
                app_id: app_id.clone(),
                version: app_version,
                config_version: version.clone(),
            });
            plan.launches.push(spec);
        }
        if placement.unplaced > 0 {
            plan.unplaced
                .insert(app_id.clone(), (placement.unplaced, placement.reasons));
        }
    }
    for deployment in marathon.deployments.values() {
        if step_done(registry, deployment, &by_app, now) {
            let next = deployment.current_step + 1;
            if next < deployment.steps.len() {
                plan.advance.push((deployment.id.clone(), next));
            } else {
                plan.finish
                    .push((deployment.id.clone(), Outcome::Succeeded));
            }
        }
    }
    plan
}

/// What one instance of the app asks of an agent: its resources, and its
/// host ports (port definitions with host networking, the port mappings'
/// host ports on a bridge; 0 is any).
fn demand_of(app: &AppDefinition) -> Demand {
    let ports = if app.is_host_networked() {
        app.port_definitions.iter().map(|p| p.port).collect()
    } else {
        app.container
            .iter()
            .flat_map(|c| c.port_mappings.iter())
            .filter_map(|m| m.host_port)
            .collect()
    };
    Demand {
        cpus: app.cpus,
        mem: app.mem,
        disk: app.disk,
        ports,
        require_ports: app.require_ports || !app.is_host_networked(),
    }
}

/// Steady state (and scale steps): kill the surplus, launch the missing.
fn scale_round(
    app: &AppDefinition,
    tasks: &AppTasks,
    n: usize,
    agents: &[AgentView],
) -> (Vec<String>, usize) {
    let counted = tasks.counted.len();
    if counted > n {
        let views = instance_views(app, &tasks.counted);
        let selection = match app.kill_selection {
            KillSelection::YoungestFirst => placement::KillSelection::YoungestFirst,
            KillSelection::OldestFirst => placement::KillSelection::OldestFirst,
        };
        let constraints = Constraint::parse_all(&app.constraints).unwrap_or_default();
        let kill = placement::choose_to_kill(&views, counted - n, selection, &constraints, agents);
        (kill, 0)
    } else {
        (Vec::new(), n - counted)
    }
}

/// A rolling restart round, Marathon's `TaskReplaceActor` as a function of
/// the state: kill old instances while enough healthy ones remain, launch
/// new ones while capacity allows.
fn restart_round(
    app: &AppDefinition,
    tasks: &AppTasks,
    version: &str,
    n: usize,
) -> (Vec<String>, usize) {
    let is_new = |t: &&&Task| {
        t.spec
            .run_spec
            .as_ref()
            .is_some_and(|r| r.config_version == version)
    };
    let (new, old): (Vec<&Task>, Vec<&Task>) = tasks.counted.iter().partition(is_new);
    let healthy = |t: &&&Task| is_healthy(t, app);
    let min_healthy = (n as f64 * app.upgrade_strategy.minimum_health_capacity).ceil() as usize;
    let mut max_capacity =
        (n as f64 * (1.0 + app.upgrade_strategy.maximum_over_capacity)).floor() as usize;
    let healthy_total = tasks.counted.iter().filter(healthy).count();
    if min_healthy == max_capacity && max_capacity <= healthy_total {
        // Nothing could ever start or stop: allow one over, as Marathon does.
        max_capacity += 1;
    }
    let mut kill = Vec::new();
    // Unhealthy old instances go first: they cost no healthy capacity.
    let (old_healthy, old_sick): (Vec<&Task>, Vec<&Task>) = old.iter().partition(healthy);
    kill.extend(old_sick.iter().map(|t| t.spec.task_id.clone()));
    let mut healthy_left = healthy_total;
    // Oldest first among the healthy old ones.
    let mut old_healthy = old_healthy;
    old_healthy.sort_by(|a, b| a.staged_at.total_cmp(&b.staged_at));
    for task in old_healthy {
        if healthy_left > min_healthy {
            kill.push(task.spec.task_id.clone());
            healthy_left -= 1;
        }
    }
    // Extras of the new version (after a forced change) go too.
    if new.len() > n {
        let mut extra = new.clone();
        extra.sort_by(|a, b| b.staged_at.total_cmp(&a.staged_at));
        kill.extend(
            extra[..new.len() - n]
                .iter()
                .map(|t| t.spec.task_id.clone()),
        );
    }
    // A task asked to end (now or before) holds its capacity until it has.
    let occupying = tasks.counted.len() + tasks.killing.len();
    let launch = n
        .saturating_sub(new.len())
        .min(max_capacity.saturating_sub(occupying));
    (kill, launch)
}

fn instance_views(app: &AppDefinition, tasks: &[&Task]) -> Vec<InstanceView> {
    tasks
        .iter()
        .map(|t| InstanceView {
            task_id: t.spec.task_id.clone(),
            agent_id: t.spec.agent_id.clone(),
            staged_at: t.staged_at,
            started_at: t.started_at,
            healthy: if app.health_checks.is_empty() {
                None
            } else {
                t.healthy
            },
            state: t.state,
        })
        .collect()
}

/// Whether every action of the deployment's current step holds.
fn step_done(
    registry: &Registry,
    deployment: &Deployment,
    by_app: &BTreeMap<&str, Vec<&Task>>,
    now: f64,
) -> bool {
    let no_tasks = Vec::new();
    deployment.current().iter().all(|action| {
        let tasks = by_app.get(action.app.as_str()).unwrap_or(&no_tasks);
        let app = registry.marathon.app(&action.app);
        match (action.action, app) {
            (ActionKind::StartApplication, _) => true,
            (ActionKind::StopApplication, _) => tasks.is_empty(),
            (_, None) => true,
            (ActionKind::ScaleApplication | ActionKind::RestartApplication, Some(app)) => {
                let sorted = sort_tasks(app, tasks, now);
                let version = config_version(app);
                sorted.killing.is_empty()
                    && sorted.counted.len() == app.instances as usize
                    && sorted.counted.iter().all(|t| {
                        is_healthy(t, app)
                            && (action.action == ActionKind::ScaleApplication
                                || t.spec
                                    .run_spec
                                    .as_ref()
                                    .is_some_and(|r| r.config_version == version))
                    })
            }
        }
    })
}
