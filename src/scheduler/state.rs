//! What the registry holds for the scheduler, and how Marathon commands change
//! it. Like the rest of the registry this is deterministic: times travel in
//! the commands (or in the statuses that end tasks), never read from a clock.
//!
//! ```text
//!  Deploy{put, remove, deployment} ─▶ apps (≤ VERSIONS kept each), deployment recorded,
//!                                     forced-over deployments dropped, delays reset,
//!                                     service ports held and given back (derived)
//!  AdvanceDeployment / FinishDeployment ─▶ the deployment moves on, or is gone
//!  a task of an app ends FAILED/FINISHED/ERROR/… ─▶ backoff grows, lastTaskFailure
//!  ResetDelay ─▶ backoff gone
//! ```
//!
//! Backoff lives here, not in the leader's memory: Marathon lost it on every
//! failover (its issue #985, a thundering herd of relaunches); ours is
//! replicated with the tasks whose failures grow it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use imbl::{OrdMap, Vector};
use serde::{Deserialize, Serialize};

use super::app::{AppDefinition, marathon_timestamp};
use super::running_deployments::RunningDeployments;
use super::service_ports::ServicePorts;
use crate::model::{Task, TaskState};

/// How many versions of an app are kept (Marathon's `zk_max_versions` is 50).
pub const VERSIONS: usize = 50;

/// The reason of the status that ends a task killed for failing its checks.
const HEALTH_KILL_REASON: &str = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED";

/// The collections are persistent (`imbl`), like the registry's: a Raft
/// round that changes the scheduler's state copies it (the registry holds it
/// in an `Arc`), and with plain maps that copy was every app's every
/// version, once per POST.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarathonState {
    /// Apps by id (`/group/app`); each holds its latest versions, newest last.
    pub apps: OrdMap<String, AppRecord>,
    /// Groups created explicitly (`/v2/groups`), by id, with their dependencies.
    /// Groups that only exist because an app lies under them are not here.
    pub groups: OrdMap<String, GroupRecord>,
    /// Running deployments by id, and by the apps they touch. Each behind
    /// an `Arc`: a change to one copies the map's node holding it, which
    /// then copies pointers rather than plans (a plan holds every app it
    /// touches, and a thousand apps POSTed one by one are a thousand
    /// deployments in flight).
    pub deployments: RunningDeployments,
    /// Launch backoff per app id.
    pub delays: OrdMap<String, LaunchDelay>,
    /// The latest failed task per app id (`lastTaskFailure`).
    pub last_failures: OrdMap<String, TaskFailure>,
    /// HTTP callback URLs (`/v2/eventSubscriptions`).
    pub subscriptions: BTreeSet<String>,
    /// The service ports the apps' current versions hold: derived from
    /// `apps`, not in the snapshot, rebuilt from it ([`Self::reindex`]).
    #[serde(skip)]
    pub service_ports: ServicePorts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    /// Newest last; never empty. Each behind an `Arc`, so that copying a
    /// record (a change to any app copies the map's node of records around
    /// it) copies pointers, not definitions.
    pub versions: Vector<Arc<AppDefinition>>,
}

impl AppRecord {
    pub fn current(&self) -> &AppDefinition {
        self.versions.back().expect("an app record holds a version")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: String,
    #[serde(default)]
    pub dependencies: Vec<String>,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    StartApplication,
    StopApplication,
    ScaleApplication,
    RestartApplication,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub action: ActionKind,
    pub app: String,
}

/// A deployment plan: steps run one after another, the actions of a step at
/// once. `original` keeps each affected app as it was (None: it did not
/// exist), so the plan can be rolled back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub version: String,
    pub affected_apps: Vec<String>,
    pub steps: Vec<Vec<Action>>,
    /// Index of the step running now (0-based; Marathon shows it 1-based).
    #[serde(default)]
    pub current_step: usize,
    #[serde(default)]
    pub original: BTreeMap<String, Option<AppDefinition>>,
}

/// Marathon's backoff: after each failure the delay is multiplied by the
/// app's factor, up to its maximum; launches wait until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchDelay {
    pub delay_secs: f64,
    /// Seconds since the epoch.
    pub until: f64,
    /// When the delay was first set, for `/v2/queue`'s `since`.
    pub since: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFailure {
    pub app_id: String,
    pub task_id: String,
    pub host: String,
    pub agent_id: String,
    pub state: TaskState,
    pub message: String,
    pub timestamp: f64,
    pub version: String,
}

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed {
        reason: String,
    },
    /// Stopped by `DELETE /v2/deployments/{id}?force=true`, or replaced by a
    /// forced change to one of its apps.
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarathonCommand {
    /// Store new app versions and remove apps (one atomic change of the app
    /// tree), and record the deployment that carries it out. Deployments in
    /// `cancel` (overridden with `force`) end first.
    Deploy {
        /// Behind `Arc`s, as the state keeps them: applying copies pointers.
        #[serde(default)]
        put: Vec<Arc<AppDefinition>>,
        #[serde(default)]
        remove: Vec<String>,
        #[serde(default)]
        put_groups: Vec<GroupRecord>,
        #[serde(default)]
        remove_groups: Vec<String>,
        deployment: Arc<Deployment>,
        #[serde(default)]
        cancel: Vec<String>,
    },
    AdvanceDeployment {
        id: String,
        step: usize,
    },
    FinishDeployment {
        id: String,
        outcome: Outcome,
    },
    /// `DELETE /v2/queue/{app}/delay`.
    ResetDelay {
        app: String,
    },
    Subscribe {
        url: String,
    },
    Unsubscribe {
        url: String,
    },
}

/// What a Marathon command changed, for the event bus.
#[derive(Debug, Clone, PartialEq)]
pub enum MarathonChange {
    AppsChanged {
        put: Vec<String>,
        removed: Vec<String>,
    },
    DeploymentStarted {
        id: String,
    },
    DeploymentAdvanced {
        id: String,
        /// The step that just succeeded (0-based).
        finished_step: usize,
    },
    DeploymentFinished {
        deployment: Arc<Deployment>,
        outcome: Outcome,
    },
    DelayReset {
        app: String,
    },
    SubscriptionsChanged {
        url: String,
        subscribed: bool,
    },
}

impl MarathonState {
    /// Rebuilds the derived state (after a snapshot is read).
    pub fn reindex(&mut self) {
        self.service_ports = ServicePorts::of(self.apps.values().map(AppRecord::current));
    }

    pub fn app(&self, id: &str) -> Option<&AppDefinition> {
        self.apps.get(id).map(AppRecord::current)
    }

    pub fn apply(&mut self, command: &MarathonCommand) -> Vec<MarathonChange> {
        match command {
            MarathonCommand::Deploy {
                put,
                remove,
                put_groups,
                remove_groups,
                deployment,
                cancel,
            } => {
                let mut changes = Vec::new();
                for id in cancel {
                    if let Some(d) = self.deployments.remove(id) {
                        changes.push(MarathonChange::DeploymentFinished {
                            deployment: d,
                            outcome: Outcome::Canceled,
                        });
                    }
                }
                for app in put {
                    let id = app.id.to_string();
                    self.service_ports.hold(app);
                    match self.apps.get_mut(&id) {
                        Some(record) => {
                            self.service_ports.release(record.current());
                            record.versions.push_back(app.clone());
                            while record.versions.len() > VERSIONS {
                                record.versions.pop_front();
                            }
                        }
                        None => {
                            self.apps.insert(
                                id.clone(),
                                AppRecord {
                                    versions: Vector::unit(app.clone()),
                                },
                            );
                        }
                    }
                    // A new version starts without the old one's backoff.
                    self.delays.remove(&id);
                }
                for id in remove {
                    if let Some(record) = self.apps.remove(id) {
                        self.service_ports.release(record.current());
                    }
                    self.delays.remove(id);
                    self.last_failures.remove(id);
                }
                for group in put_groups {
                    self.groups.insert(group.id.clone(), group.clone());
                }
                for id in remove_groups {
                    let prefix = format!("{}/", id.trim_end_matches('/'));
                    let gone: Vec<String> = self
                        .groups
                        .keys()
                        .filter(|g| *g == id || g.starts_with(&prefix))
                        .cloned()
                        .collect();
                    for g in gone {
                        self.groups.remove(&g);
                    }
                }
                changes.push(MarathonChange::AppsChanged {
                    put: put.iter().map(|a| a.id.to_string()).collect(),
                    removed: remove.clone(),
                });
                self.deployments
                    .insert(deployment.id.clone(), deployment.clone());
                changes.push(MarathonChange::DeploymentStarted {
                    id: deployment.id.clone(),
                });
                changes
            }
            MarathonCommand::AdvanceDeployment { id, step } => {
                // Only from the step the proposer saw: a retried or late
                // proposal changes nothing. Checked before `get_mut` and
                // `make_mut`, which copy a deployment a published registry
                // still shares (its plan holds every app it touches).
                let moves = self
                    .deployments
                    .get(id)
                    .is_some_and(|d| d.current_step + 1 == *step && *step < d.steps.len());
                match self.deployments.get_mut(id) {
                    Some(d) if moves => {
                        Arc::make_mut(d).current_step = *step;
                        vec![MarathonChange::DeploymentAdvanced {
                            id: id.clone(),
                            finished_step: step - 1,
                        }]
                    }
                    _ => vec![],
                }
            }
            MarathonCommand::FinishDeployment { id, outcome } => {
                match self.deployments.remove(id) {
                    Some(d) => vec![MarathonChange::DeploymentFinished {
                        deployment: d,
                        outcome: outcome.clone(),
                    }],
                    None => vec![],
                }
            }
            MarathonCommand::ResetDelay { app } => match self.delays.remove(app) {
                Some(_) => vec![MarathonChange::DelayReset { app: app.clone() }],
                None => vec![],
            },
            MarathonCommand::Subscribe { url } => {
                if self.subscriptions.insert(url.clone()) {
                    vec![MarathonChange::SubscriptionsChanged {
                        url: url.clone(),
                        subscribed: true,
                    }]
                } else {
                    vec![]
                }
            }
            MarathonCommand::Unsubscribe { url } => {
                if self.subscriptions.remove(url) {
                    vec![MarathonChange::SubscriptionsChanged {
                        url: url.clone(),
                        subscribed: false,
                    }]
                } else {
                    vec![]
                }
            }
        }
    }

    /// A task of an app ended (called by the registry as it completes one).
    /// Failures, finishes and kills for failing health checks grow the app's
    /// backoff, as Marathon counts them; other kills and the losses an
    /// operator or agent caused do not.
    pub fn task_ended(&mut self, task: &Task, host: &str, time: f64) {
        let Some(run) = &task.spec.run_spec else {
            return;
        };
        let Some(app) = self.app(&run.app_id) else {
            return;
        };
        let (base, factor, max) = (
            f64::from(app.backoff_seconds),
            app.backoff_factor.max(1.0),
            f64::from(app.max_launch_delay_seconds),
        );
        let health_kill = task.state == TaskState::Killed
            && task.latest().and_then(|s| s.reason.as_deref()) == Some(HEALTH_KILL_REASON);
        let counts = health_kill
            || matches!(
                task.state,
                TaskState::Failed | TaskState::Finished | TaskState::Error
            );
        if matches!(
            task.state,
            TaskState::Failed | TaskState::Error | TaskState::Lost | TaskState::Dropped
        ) {
            let status = task.latest();
            self.last_failures.insert(
                run.app_id.clone(),
                TaskFailure {
                    app_id: run.app_id.clone(),
                    task_id: task.spec.task_id.clone(),
                    host: host.to_string(),
                    agent_id: task.spec.agent_id.clone(),
                    state: task.state,
                    message: status.and_then(|s| s.message.clone()).unwrap_or_default(),
                    timestamp: status.map_or(time, |s| s.timestamp),
                    version: run.version.clone(),
                },
            );
        }
        if !counts {
            return;
        }
        let delay = match self.delays.get(&run.app_id) {
            // Reset after `delay + maxLaunchDelay` without failures, as Marathon.
            Some(d) if time < d.until + max => (d.delay_secs * factor).min(max),
            _ => base.min(max),
        };
        let since = self.delays.get(&run.app_id).map_or(time, |d| d.since);
        self.delays.insert(
            run.app_id.clone(),
            LaunchDelay {
                delay_secs: delay,
                until: time + delay,
                since,
            },
        );
    }
}

impl Deployment {
    /// The actions running now.
    pub fn current(&self) -> &[Action] {
        self.steps
            .get(self.current_step)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The plan as `/v2/deployments` and the events show it.
    pub fn to_json(&self) -> serde_json::Value {
        let steps: Vec<serde_json::Value> = self
            .steps
            .iter()
            .map(|step| serde_json::json!({"actions": actions_json(step)}))
            .collect();
        serde_json::json!({
            "id": self.id,
            "version": self.version,
            "affectedApps": self.affected_apps,
            "affectedPods": [],
            "steps": steps,
            "currentActions": actions_json(self.current())
                .into_iter()
                .map(|mut a| {
                    a["readinessCheckResults"] = serde_json::json!([]);
                    a
                })
                .collect::<Vec<_>>(),
            "currentStep": self.current_step + 1,
            "totalSteps": self.steps.len(),
        })
    }
}

pub fn actions_json(actions: &[Action]) -> Vec<serde_json::Value> {
    actions
        .iter()
        .map(|a| serde_json::json!({"action": a.action, "app": a.app}))
        .collect()
}

/// A version string for a proposal made at `time`.
pub fn version_at(time: f64) -> String {
    marathon_timestamp(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RunSpecRef, TaskSpec, TaskStatus};
    use crate::scheduler::app::test_app;

    fn state() -> MarathonState {
        let app = test_app(serde_json::json!({
            "id": "/app", "cmd": "exit 1",
            "backoffSeconds": 1, "backoffFactor": 2, "maxLaunchDelaySeconds": 8
        }));
        let mut state = MarathonState::default();
        state.apps.insert(
            "/app".into(),
            AppRecord {
                versions: imbl::Vector::unit(Arc::new(app)),
            },
        );
        state
    }

    fn ended(id: &str, state: TaskState, reason: Option<&str>, at: f64) -> Task {
        let spec = TaskSpec {
            task_id: id.into(),
            agent_id: "c-S0".into(),
            run_spec: Some(RunSpecRef {
                app_id: "/app".into(),
                version: "v1".into(),
                config_version: "v1".into(),
            }),
            ..Default::default()
        };
        let mut status = TaskStatus::new(id, "c-S0", state, at).message("exited with status 1");
        if let Some(reason) = reason {
            status = status.reason(reason);
        }
        Task::new(spec, status)
    }

    fn delay(state: &MarathonState) -> Option<(f64, f64)> {
        state.delays.get("/app").map(|d| (d.delay_secs, d.until))
    }

    /// Puts and removes apps as `/v2` does, one deployment each.
    fn deploy(state: &mut MarathonState, put: &[(&str, &[u16])], remove: &[&str]) {
        let put = put
            .iter()
            .map(|(id, ports)| {
                let defs: Vec<serde_json::Value> = ports
                    .iter()
                    .map(|p| serde_json::json!({"port": p}))
                    .collect();
                Arc::new(test_app(
                    serde_json::json!({"id": id, "cmd": "sleep 9", "portDefinitions": defs}),
                ))
            })
            .collect();
        state.apply(&MarathonCommand::Deploy {
            put,
            remove: remove.iter().map(|id| id.to_string()).collect(),
            put_groups: Vec::new(),
            remove_groups: Vec::new(),
            deployment: Arc::new(Deployment {
                id: "d".into(),
                version: "v".into(),
                affected_apps: Vec::new(),
                steps: Vec::new(),
                current_step: 0,
                original: BTreeMap::new(),
            }),
            cancel: Vec::new(),
        });
    }

    #[test]
    fn service_ports_follow_the_current_versions_and_survive_a_snapshot() {
        use crate::scheduler::service_ports::ServicePorts;
        let mut s = MarathonState::default();
        deploy(&mut s, &[("/a", &[10000, 10001]), ("/b", &[10001])], &[]);
        deploy(&mut s, &[("/a", &[10002])], &[]);
        assert!(s.service_ports.is_held(10001), "/b still holds it");
        assert!(!s.service_ports.is_held(10000), "/a let it go");
        deploy(&mut s, &[("/c", &[12000])], &["/b"]);
        assert!(!s.service_ports.is_held(10001));
        let recount = ServicePorts::of(s.apps.values().map(AppRecord::current));
        assert_eq!(s.service_ports, recount);

        let mut registry = crate::master::registry::Registry::default();
        registry.marathon = Arc::new(s.clone());
        let read = crate::master::registry::Registry::from_snapshot(&registry.to_snapshot())
            .expect("the snapshot reads back");
        assert_eq!(*read.marathon, s, "the index is rebuilt, not lost");
    }

    #[test]
    fn backoff_grows_by_its_factor_up_to_the_cap_and_resets() {
        let mut s = state();
        let failed = |id: &str, at| ended(id, TaskState::Failed, None, at);
        s.task_ended(&failed("t1", 100.0), "h", 100.0);
        assert_eq!(delay(&s), Some((1.0, 101.0)));
        for (at, want) in [(102.0, 2.0), (105.0, 4.0), (110.0, 8.0), (119.0, 8.0)] {
            s.task_ended(&failed("t", at), "h", at);
            assert_eq!(delay(&s), Some((want, at + want)), "at {at}");
        }
        assert_eq!(s.delays["/app"].since, 100.0, "since the first failure");
        let failure = &s.last_failures["/app"];
        assert_eq!(
            (
                failure.task_id.as_str(),
                failure.state,
                failure.message.as_str()
            ),
            ("t", TaskState::Failed, "exited with status 1")
        );

        // A kill asked for changes nothing; a kill for failing checks counts.
        let before = s.clone();
        s.task_ended(&ended("k", TaskState::Killed, None, 128.0), "h", 128.0);
        assert_eq!(s, before);
        let health = Some(HEALTH_KILL_REASON);
        s.task_ended(&ended("k", TaskState::Killed, health, 128.0), "h", 128.0);
        assert_eq!(delay(&s), Some((8.0, 136.0)));

        // Quiet for longer than the delay and the maximum: it starts over.
        s.task_ended(&failed("t", 145.0), "h", 145.0);
        assert_eq!(delay(&s), Some((1.0, 146.0)));

        // It is replicated state: it survives a snapshot's round trip.
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<MarathonState>(&text).unwrap(), s);

        // DELETE /v2/queue/{app}/delay.
        let changes = s.apply(&MarathonCommand::ResetDelay { app: "/app".into() });
        assert_eq!(changes, [MarathonChange::DelayReset { app: "/app".into() }]);
        assert_eq!(delay(&s), None);
        assert!(
            s.apply(&MarathonCommand::ResetDelay { app: "/app".into() })
                .is_empty()
        );
        s.task_ended(&failed("t", 150.0), "h", 150.0);
        assert_eq!(delay(&s), Some((1.0, 151.0)), "from the start again");
    }
}
