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
//!
//! The registry counts each app's tasks as it applies (`AppCounts`), so a
//! round reads an app's tasks only when the counts leave it a choice; on a
//! big cluster in a deployment that is one app a round, not every task. And
//! a round reads only the apps (and their deployments) in its [`Scope`]:
//! those the changes since the last round touched, all once a second.
//!
//! "In service" for a deployment is Marathon's: running, healthy when the
//! task has health checks, and ready when it has a readiness check
//! ([`is_up`]). Health and readiness are the agent's reports, in the registry.

use std::collections::BTreeMap;

use crate::master::registry::Registry;
use crate::model::{RunSpecRef, Task, TaskSpec, TaskState};
use crate::scheduler::app::{
    AppDefinition, KillSelection, UnreachableStrategy, UpgradeStrategy, new_task_id,
};
use crate::scheduler::placement::{
    self, AgentView, Constraint, Demand, InstanceView, Placed, RejectSummary,
};
use crate::scheduler::state::{ActionKind, AppRecord, Deployment, Outcome};

use super::scope::Scope;

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

/// Whether a task counts as healthy: running, and, when it runs health
/// checks, reported healthy by its agent. The task's own checks decide, not
/// the app's latest version: a task launched before the app had checks
/// never gets a verdict, and must not count as sick in the restart that
/// adds them (it would be killed at once, whatever minimumHealthCapacity).
pub fn is_healthy(task: &Task) -> bool {
    task.state == TaskState::Running
        && (task.spec.health_checks.is_empty() || task.healthy == Some(true))
}

/// Whether a task passed its readiness check (one without a check is ready).
pub fn is_ready(task: &Task) -> bool {
    task.spec.readiness_check.is_none() || task.ready == Some(true)
}

/// Whether a task is in service for a deployment: healthy and ready.
pub fn is_up(task: &Task) -> bool {
    is_healthy(task) && is_ready(task)
}

/// An app's live tasks, sorted into what the round needs.
#[derive(Debug, Default)]
struct AppTasks<'a> {
    /// Count as instances: staging, starting, running, unreachable ones
    /// still within their inactive time, and ones their agent is killing on
    /// its own (for failing health checks): such a task is replaced once it
    /// has ended, after the backoff its end earns, not the moment it starts
    /// to die.
    counted: Vec<&'a Task>,
    /// Asked to end (by the scheduler, an operator, a client), not ended
    /// yet: no longer instances, but they still hold capacity.
    killing: Vec<&'a Task>,
    /// Unreachable past their expunge time: to kill (ends them when their
    /// agent comes back).
    expunge: Vec<&'a Task>,
}

fn sort_tasks<'a>(app: &AppDefinition, tasks: &[&'a Task], now: f64) -> AppTasks<'a> {
    let mut out = AppTasks::default();
    for task in tasks {
        if task.kill_requested {
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

pub fn plan(registry: &Registry, now: f64, scope: &Scope) -> Plan {
    let marathon = &registry.marathon;
    let mut plan = Plan::default();
    // Tasks of apps that no longer exist.
    let with_tasks: Box<dyn Iterator<Item = &String>> = match scope {
        Scope::All => Box::new(registry.apps_with_tasks()),
        Scope::Apps(ids) => Box::new(ids.iter()),
    };
    for app_id in with_tasks {
        if !marathon.apps.contains_key(app_id) {
            plan.kills.extend(
                registry
                    .app_tasks(app_id)
                    .filter(|t| !t.kill_requested)
                    .map(|t| t.spec.task_id.clone()),
            );
        }
    }
    let mut agents = LazyAgents {
        registry,
        views: None,
    };
    let framework = framework_id(registry);
    let deployments = scope.deployments(&marathon.deployments);
    let restarting: Vec<&str> = deployments
        .iter()
        .flat_map(|d| d.current())
        .filter(|a| a.action == ActionKind::RestartApplication)
        .map(|a| a.app.as_str())
        .collect();
    let apps: Box<dyn Iterator<Item = (&String, &AppRecord)>> = match scope {
        Scope::All => Box::new(marathon.apps.iter()),
        Scope::Apps(ids) => Box::new(
            ids.iter()
                .filter_map(|id| Some((id, marathon.apps.get(id)?))),
        ),
    };
    for (app_id, record) in apps {
        let app = record.current();
        let n = app.instances as usize;
        let restarting = restarting.contains(&app_id.as_str());
        let delayed = marathon.delays.get(app_id).is_some_and(|d| now < d.until);
        let room = MAX_LAUNCHES.saturating_sub(plan.launches.len());
        // The registry counts each app's tasks as it applies: an app with
        // no unreachable task, outside a restart, needs no look at its
        // tasks unless it has too many, or too few and may launch now. On
        // a big cluster that is almost every app of almost every round.
        if !restarting
            && let Some(counted) = registry.app_counts(app_id).reachable_instances()
            && (counted == n || (counted < n && (delayed || room == 0)))
        {
            continue;
        }
        let tasks: Vec<&Task> = registry.app_tasks(app_id).collect();
        let sorted = sort_tasks(app, &tasks, now);
        plan.kills
            .extend(sorted.expunge.iter().map(|t| t.spec.task_id.clone()));
        let version = config_version(app);
        let (kill, launch) = if restarting {
            restart_round(&sorted, &version, n, app.upgrade_strategy)
        } else {
            scale_round(app, &sorted, n, &mut agents)
        };
        plan.kills.extend(kill);
        if launch == 0 || delayed || room == 0 {
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
            agents.get(),
            &demand_of(app),
            &constraints,
            &existing,
            launch,
        );
        let app_version = app.version.clone().unwrap_or_default();
        let environment = app.task_env(&app_version);
        for placement::Chosen {
            agent_id,
            host_ports,
        } in placement.chosen
        {
            let task_id = new_task_id(&app.id);
            let mut spec = app.task_spec(&task_id, &agent_id, &host_ports, &environment);
            spec.framework_id = Some(framework.clone());
            spec.run_spec = Some(RunSpecRef {
                app_id: app_id.clone(),
                version: app_version.clone(),
                config_version: version.clone(),
            });
            plan.launches.push(spec);
        }
        if placement.unplaced > 0 {
            plan.unplaced
                .insert(app_id.clone(), (placement.unplaced, placement.reasons));
        }
    }
    for deployment in deployments {
        if step_done(registry, deployment, now) {
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

/// The agents as placement sees them (free = total − live tasks), built on
/// first use: it reads every task, and most rounds need none, such as those
/// that come of the status updates of a deployment already placed.
struct LazyAgents<'r> {
    registry: &'r Registry,
    views: Option<Vec<AgentView<'r>>>,
}

impl<'r> LazyAgents<'r> {
    fn get(&mut self) -> &mut Vec<AgentView<'r>> {
        let registry = self.registry;
        self.views
            .get_or_insert_with(|| AgentView::from_registry(registry))
    }
}

/// What one instance of the app asks of an agent: its resources, and its
/// host ports (port definitions with host networking, the port mappings'
/// host ports on a bridge; 0 is any).
fn demand_of(app: &AppDefinition) -> Demand {
    let ports = if app.is_host_networked() {
        app.port_definitions.iter().map(|p| p.port).collect()
    } else {
        app.port_mappings().filter_map(|m| m.host_port).collect()
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
    agents: &mut LazyAgents,
) -> (Vec<String>, usize) {
    let counted = tasks.counted.len();
    if counted > n {
        let views = instance_views(&tasks.counted);
        let selection = match app.kill_selection {
            KillSelection::YoungestFirst => placement::KillSelection::YoungestFirst,
            KillSelection::OldestFirst => placement::KillSelection::OldestFirst,
        };
        let constraints = Constraint::parse_all(&app.constraints).unwrap_or_default();
        let kill =
            placement::choose_to_kill(&views, counted - n, selection, &constraints, agents.get());
        (kill, 0)
    } else {
        (Vec::new(), n - counted)
    }
}

/// A rolling restart round, Marathon's `TaskReplaceActor` as a function of
/// the state: kill old instances while enough healthy ones remain, launch
/// new ones while capacity allows.
///
/// An old instance counts towards `minimumHealthCapacity` while it is
/// healthy, a new one once it is healthy *and* ready; one asked to end counts
/// no more (so it is never counted twice across rounds), but holds its
/// capacity until it has ended.
fn restart_round(
    tasks: &AppTasks,
    version: &str,
    n: usize,
    strategy: UpgradeStrategy,
) -> (Vec<String>, usize) {
    let is_new = |t: &&&Task| {
        t.spec
            .run_spec
            .as_ref()
            .is_some_and(|r| r.config_version == version)
    };
    let (new, old): (Vec<&Task>, Vec<&Task>) = tasks.counted.iter().partition(is_new);
    let (mut old_healthy, old_sick): (Vec<&Task>, Vec<&Task>) =
        old.iter().partition(|t| is_healthy(t));
    let up = old_healthy.len() + new.iter().filter(|t| is_up(t)).count();
    let min_healthy = (n as f64 * strategy.minimum_health_capacity).ceil() as usize;
    let mut max_capacity = (n as f64 * (1.0 + strategy.maximum_over_capacity)).floor() as usize;
    if min_healthy == max_capacity && max_capacity <= up {
        // Nothing could ever start or stop: allow one over, as Marathon does.
        max_capacity += 1;
    }
    let mut kill = Vec::new();
    // Old instances that are not healthy go first: they cost no capacity
    // that counts.
    kill.extend(old_sick.iter().map(|t| t.spec.task_id.clone()));
    // Then the oldest healthy old ones, while more than enough remain.
    old_healthy.sort_by(|a, b| a.staged_at.total_cmp(&b.staged_at));
    let mut up_left = up;
    for task in old_healthy {
        if up_left <= min_healthy {
            break;
        }
        kill.push(task.spec.task_id.clone());
        up_left -= 1;
    }
    // Extras of the new version (after a forced change) go too, youngest first.
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

fn instance_views(tasks: &[&Task]) -> Vec<InstanceView> {
    tasks
        .iter()
        .map(|t| InstanceView {
            task_id: t.spec.task_id.clone(),
            agent_id: t.spec.agent_id.clone(),
            staged_at: t.staged_at,
            started_at: t.started_at,
            healthy: if t.spec.health_checks.is_empty() {
                None
            } else {
                t.healthy
            },
            state: t.state,
        })
        .collect()
}

/// Whether every action of the deployment's current step holds. The app's
/// counts decide when they can (no task unreachable); a restart's tasks are
/// looked at only once the counts say it may be done.
fn step_done(registry: &Registry, deployment: &Deployment, now: f64) -> bool {
    deployment.current().iter().all(|action| {
        let app = registry.marathon.app(&action.app);
        let counts = registry.app_counts(&action.app);
        match (action.action, app) {
            (ActionKind::StartApplication, _) => true,
            (ActionKind::StopApplication, _) => counts.live == 0,
            (_, None) => true,
            (ActionKind::ScaleApplication | ActionKind::RestartApplication, Some(app)) => {
                let n = app.instances as usize;
                if counts.unreachable == 0
                    && (counts.kill_requested > 0 || counts.live != n || counts.up != n)
                {
                    return false;
                }
                if counts.unreachable == 0 && action.action == ActionKind::ScaleApplication {
                    return true;
                }
                let tasks: Vec<&Task> = registry.app_tasks(&action.app).collect();
                let sorted = sort_tasks(app, &tasks, now);
                let version = config_version(app);
                sorted.killing.is_empty()
                    && sorted.counted.len() == n
                    && sorted.counted.iter().all(|t| {
                        is_up(t)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HealthCheckSpec, ReadinessCheckSpec, TaskStatus};

    fn task(id: &str, config: &str, checked: bool, readiness: bool, at: f64) -> Task {
        let spec = TaskSpec {
            task_id: id.into(),
            agent_id: "a".into(),
            health_checks: if checked {
                vec![HealthCheckSpec::default()]
            } else {
                Vec::new()
            },
            readiness_check: readiness.then(|| ReadinessCheckSpec {
                name: "r".into(),
                protocol: Default::default(),
                path: "/".into(),
                port_index: 0,
                interval_seconds: 1.0,
                timeout_seconds: 1.0,
                http_status_codes_for_ready: vec![200],
            }),
            run_spec: Some(RunSpecRef {
                app_id: "/app".into(),
                version: config.into(),
                config_version: config.into(),
            }),
            ..Default::default()
        };
        Task::new(spec, TaskStatus::new(id, "a", TaskState::Staging, at))
    }

    fn running(mut t: Task, healthy: bool) -> Task {
        t.state = TaskState::Running;
        if !t.spec.health_checks.is_empty() {
            t.healthy = Some(healthy);
        }
        if t.spec.readiness_check.is_some() {
            t.ready = Some(true);
        }
        t
    }

    fn round(world: &[Task], n: usize, strategy: UpgradeStrategy) -> (Vec<String>, usize) {
        let sorted = AppTasks {
            counted: world.iter().filter(|t| !t.kill_requested).collect(),
            killing: world.iter().filter(|t| t.kill_requested).collect(),
            expunge: Vec::new(),
        };
        restart_round(&sorted, "v2", n, strategy)
    }

    /// A small deterministic generator: which of the possible happenings
    /// comes next.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Restarts `n` healthy instances under `strategy`, with new tasks
    /// starting, turning healthy, turning ready and old ones ending in an
    /// order `seed` picks, one thing after each round; Marathon's bounds must
    /// hold after every round, and the restart must end with `n` new
    /// instances in service and nothing else.
    fn restart(n: usize, mhc: f64, moc: f64, readiness: bool, mut seed: u64) {
        let strategy = UpgradeStrategy {
            minimum_health_capacity: mhc,
            maximum_over_capacity: moc,
        };
        let min = (n as f64 * mhc).ceil() as usize;
        let max = (n as f64 * (1.0 + moc)).floor() as usize;
        let allowed = if min == max { max + 1 } else { max };
        let mut world: Vec<Task> = (0..n)
            .map(|i| {
                running(
                    task(&format!("old{i}"), "v1", true, readiness, i as f64),
                    true,
                )
            })
            .collect();
        let mut launched = 0;
        for step in 0..10_000 {
            let (kill, launch) = round(&world, n, strategy);
            for t in world.iter_mut().filter(|t| kill.contains(&t.spec.task_id)) {
                t.kill_requested = true;
            }
            for _ in 0..launch {
                launched += 1;
                let id = format!("new{launched}");
                world.push(task(&id, "v2", true, readiness, 100.0 + launched as f64));
            }
            let is_new = |t: &Task| t.spec.run_spec.as_ref().unwrap().config_version == "v2";
            let up = world
                .iter()
                .filter(|t| !t.kill_requested)
                .filter(|t| if is_new(t) { is_up(t) } else { is_healthy(t) })
                .count();
            let what = format!("n {n}, mhc {mhc}, moc {moc}, readiness {readiness}, step {step}");
            assert!(up >= min, "{what}: {up} in service, fewer than {min}");
            assert!(
                world.len() <= allowed,
                "{what}: {} live, more than {allowed}",
                world.len()
            );
            if world.len() == n && world.iter().all(|t| is_new(t) && is_up(t)) {
                assert_eq!(launched, n, "{what}: nothing new ever failed");
                return;
            }
            // One thing happens.
            let mut can: Vec<(usize, u8)> = Vec::new();
            for (i, t) in world.iter().enumerate() {
                if t.kill_requested {
                    can.push((i, 0)); // ends
                } else if t.state == TaskState::Staging {
                    can.push((i, 1)); // runs, no verdict yet
                } else if t.healthy.is_none() {
                    can.push((i, 2)); // turns healthy
                } else if t.ready.is_none() && t.spec.readiness_check.is_some() {
                    can.push((i, 3)); // turns ready
                }
            }
            assert!(!can.is_empty(), "{what}: stuck with nothing to happen");
            let (i, happening) = can[(next(&mut seed) % can.len() as u64) as usize];
            match happening {
                0 => {
                    world.remove(i);
                }
                1 => world[i].state = TaskState::Running,
                2 => world[i].healthy = Some(true),
                _ => world[i].ready = Some(true),
            }
        }
        panic!("the restart did not end");
    }

    #[test]
    fn restarts_keep_marathons_bounds_in_any_order_of_events() {
        for (n, mhc, moc) in [
            (4, 0.5, 0.5),
            (4, 1.0, 0.0),
            (4, 0.0, 0.0),
            (4, 1.0, 1.0),
            (4, 0.0, 1.0),
            (5, 0.6, 0.2),
            (1, 1.0, 0.0),
            (1, 0.0, 0.0),
            (3, 0.5, 0.0),
        ] {
            for readiness in [false, true] {
                for seed in 1..40 {
                    restart(n, mhc, moc, readiness, seed * 7919);
                }
            }
        }
    }

    #[test]
    fn a_task_its_agent_kills_stays_an_instance_until_it_has_ended() {
        let app = crate::scheduler::app::test_app(serde_json::json!({"id": "/app", "cmd": "x"}));
        let mut dying = running(task("dying", "v1", true, false, 0.0), false);
        dying.state = TaskState::Killing;
        let mut asked = running(task("asked", "v1", true, false, 0.0), true);
        asked.kill_requested = true;
        let sorted = sort_tasks(&app, &[&dying, &asked], 1.0);
        let ids = |ts: &[&Task]| {
            ts.iter()
                .map(|t| t.spec.task_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&sorted.counted), ["dying"]);
        assert_eq!(ids(&sorted.killing), ["asked"]);
    }

    #[test]
    fn old_tasks_without_checks_count_as_healthy_when_the_new_version_adds_some() {
        let world: Vec<Task> = (0..4)
            .map(|i| running(task(&format!("old{i}"), "v1", false, false, 0.0), false))
            .collect();
        let strategy = UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 0.0,
        };
        let (kill, launch) = round(&world, 4, strategy);
        assert!(kill.is_empty(), "{kill:?}");
        assert_eq!(launch, 1, "one over, as Marathon allows");
    }

    #[test]
    fn a_new_task_healthy_but_not_ready_frees_no_old_one() {
        let strategy = UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 0.0,
        };
        let mut world: Vec<Task> = (0..2)
            .map(|i| running(task(&format!("old{i}"), "v1", true, true, 0.0), true))
            .collect();
        let mut fresh = task("new1", "v2", true, true, 1.0);
        fresh.state = TaskState::Running;
        fresh.healthy = Some(true);
        world.push(fresh);
        let (kill, launch) = round(&world, 2, strategy);
        assert!(kill.is_empty() && launch == 0, "{kill:?} {launch}");
        world[2].ready = Some(true);
        let (kill, launch) = round(&world, 2, strategy);
        assert_eq!(kill, ["old0"]);
        assert_eq!(launch, 0, "the killed one holds its place until it ends");
    }

    /// One agent with room for both apps, apps `/a` and `/b` of two
    /// instances and none launched, and a deployment that stops `/gone`,
    /// done already (it has no task).
    fn two_apps() -> Registry {
        use crate::master::registry::registry_with_agent;
        use crate::scheduler::app::test_app;
        use crate::scheduler::state::Action;
        let (mut reg, _) = registry_with_agent();
        let marathon = std::sync::Arc::make_mut(&mut reg.marathon);
        for id in ["/a", "/b"] {
            let app = test_app(
                serde_json::json!({"id": id, "cmd": "sleep 9", "instances": 2, "cpus": 0.1, "mem": 16, "portDefinitions": []}),
            );
            marathon.apps.insert(
                id.into(),
                AppRecord {
                    versions: imbl::Vector::unit(std::sync::Arc::new(app)),
                },
            );
        }
        let stop_gone = Deployment {
            id: "d-b".into(),
            version: "v".into(),
            affected_apps: vec!["/gone".into()],
            steps: vec![vec![Action {
                action: ActionKind::StopApplication,
                app: "/gone".into(),
            }]],
            current_step: 0,
            original: BTreeMap::new(),
        };
        marathon
            .deployments
            .insert("d-b".into(), std::sync::Arc::new(stop_gone));
        reg
    }

    fn launched_apps(plan: &Plan) -> Vec<&str> {
        let mut apps: Vec<&str> = plan
            .launches
            .iter()
            .filter_map(|t| Some(t.run_spec.as_ref()?.app_id.as_str()))
            .collect();
        apps.dedup();
        apps
    }

    #[test]
    fn a_round_plans_only_the_apps_in_its_scope() {
        let reg = two_apps();
        let all = plan(&reg, 10.0, &Scope::All);
        assert_eq!(launched_apps(&all), ["/a", "/b"]);
        assert_eq!(all.launches.len(), 4);
        assert_eq!(all.finish, [("d-b".to_string(), Outcome::Succeeded)]);

        let only_a = plan(&reg, 10.0, &Scope::Apps(["/a".to_string()].into()));
        assert_eq!(launched_apps(&only_a), ["/a"]);
        assert_eq!(only_a.launches.len(), 2);
        assert!(only_a.finish.is_empty(), "d-b is not /a's");

        let gone = plan(&reg, 10.0, &Scope::Apps(["/gone".to_string()].into()));
        assert!(gone.launches.is_empty());
        assert_eq!(gone.finish, [("d-b".to_string(), Outcome::Succeeded)]);
    }
}
