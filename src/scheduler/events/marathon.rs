//! The events of the scheduler's own changes: apps posted and removed
//! (`api_post_event`, `app_terminated_event`), and deployments with their
//! steps (`deployment_info`, `deployment_step_success`/`_failure`,
//! `deployment_success`/`_failed`), each with the deployment's plan in the
//! heavy form, written once for all of a change's events.

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::{Event, Wanted};
use crate::master::registry::Registry;
use crate::scheduler::app::AppDefinition;
use crate::scheduler::state::{Action, Deployment, MarathonChange, Outcome};
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiPost<'a> {
    client_ip: &'static str,
    uri: String,
    app_definition: &'a AppDefinition,
}

/// The events a deployment makes; its plan is written only when one of
/// them is wanted.
const DEPLOYMENT_EVENTS: [&str; 5] = [
    "deployment_info",
    "deployment_step_success",
    "deployment_step_failure",
    "deployment_success",
    "deployment_failed",
];

/// The events of `change`; the caller keeps the `wanted` ones, and what no
/// one wants and costs to write (an app's definition, a deployment's plan)
/// is not written here.
pub(super) fn events(
    registry: &Registry,
    change: &MarathonChange,
    now: f64,
    wanted: &Wanted,
) -> Vec<Event> {
    let marathon = &registry.marathon;
    let deployments_wanted = wanted.any(&DEPLOYMENT_EVENTS);
    match change {
        MarathonChange::AppsChanged { put, removed } => {
            let posted: &[String] = if wanted.wants("api_post_event") {
                put
            } else {
                &[]
            };
            let mut out: Vec<Event> = posted
                .iter()
                .filter_map(|id| marathon.app(id))
                .map(|app| {
                    Event::of(
                        "api_post_event",
                        &ApiPost {
                            client_ip: "",
                            uri: format!("/v2/apps{}", app.id),
                            app_definition: app,
                        },
                        now,
                    )
                })
                .collect();
            out.extend(
                removed
                    .iter()
                    .map(|id| Event::new("app_terminated_event", json!({"appId": id}), now)),
            );
            out
        }
        MarathonChange::DeploymentStarted { .. }
        | MarathonChange::DeploymentAdvanced { .. }
        | MarathonChange::DeploymentFinished { .. }
            if !deployments_wanted =>
        {
            Vec::new()
        }
        MarathonChange::DeploymentStarted { id } => marathon
            .deployments
            .get(id)
            .map(|d| {
                let plan = plan_of(registry, d);
                vec![step_event("deployment_info", &plan, d, d.current_step, now)]
            })
            .unwrap_or_default(),
        MarathonChange::DeploymentAdvanced { id, finished_step } => marathon
            .deployments
            .get(id)
            .map(|d| {
                let plan = plan_of(registry, d);
                vec![
                    step_event("deployment_step_success", &plan, d, *finished_step, now),
                    step_event("deployment_info", &plan, d, d.current_step, now),
                ]
            })
            .unwrap_or_default(),
        MarathonChange::DeploymentFinished {
            deployment,
            outcome,
        } => {
            let d = deployment.as_ref();
            let plan = plan_of(registry, d);
            match outcome {
                Outcome::Succeeded => {
                    let mut out = Vec::new();
                    if !d.steps.is_empty() {
                        out.push(step_event(
                            "deployment_step_success",
                            &plan,
                            d,
                            d.current_step,
                            now,
                        ));
                    }
                    out.push(Event::of(
                        "deployment_success",
                        &DeploymentEnd {
                            id: &d.id,
                            plan: plan.as_deref(),
                            reason: None,
                        },
                        now,
                    ));
                    out
                }
                Outcome::Failed { reason } => failed(&plan, d, reason, now),
                Outcome::Canceled => failed(&plan, d, "canceled", now),
            }
        }
        MarathonChange::DelayReset { .. } => Vec::new(),
        MarathonChange::SubscriptionsChanged { url, subscribed } => vec![Event::new(
            if *subscribed {
                "subscribe_event"
            } else {
                "unsubscribe_event"
            },
            json!({"clientIp": "", "callbackUrl": url}),
            now,
        )],
    }
}

/// A deployment's plan as JSON text, written once for all the events of
/// one change. `None` only if it cannot be written, which plain data cannot.
type Plan = Option<Box<RawValue>>;

#[derive(Serialize)]
struct DeploymentEnd<'a> {
    id: &'a str,
    plan: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// As Marathon's deployment actor: the step that was running fails, then the
/// deployment (a cancel fails its step too).
fn failed(plan: &Plan, d: &Deployment, reason: &str, now: f64) -> Vec<Event> {
    let mut out = Vec::new();
    if !d.steps.is_empty() {
        out.push(step_event(
            "deployment_step_failure",
            plan,
            d,
            d.current_step,
            now,
        ));
    }
    out.push(Event::of(
        "deployment_failed",
        &DeploymentEnd {
            id: &d.id,
            plan: plan.as_deref(),
            reason: Some(reason),
        },
        now,
    ));
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepBody<'a> {
    plan: Option<&'a RawValue>,
    current_step: Actions<'a>,
}

/// A step as the plan shows it: `{"actions": [{"action", "app"}...]}`.
#[derive(Serialize)]
struct Actions<'a> {
    actions: &'a [Action],
}

fn step_event(kind: &str, plan: &Plan, d: &Deployment, step: usize, now: f64) -> Event {
    let actions = d.steps.get(step).map(Vec::as_slice).unwrap_or(&[]);
    Event::of(
        kind,
        &StepBody {
            plan: plan.as_deref(),
            current_step: Actions { actions },
        },
        now,
    )
}

#[derive(Serialize)]
struct PlanWire<'a> {
    id: &'a str,
    version: &'a str,
    steps: Vec<Actions<'a>>,
    original: Tree<'a>,
    target: Tree<'a>,
}

/// An app tree as the heavy plan carries it: every app at the root.
#[derive(Serialize)]
struct Tree<'a> {
    id: &'static str,
    apps: Vec<&'a AppDefinition>,
    groups: [(); 0],
    dependencies: [(); 0],
    version: &'a str,
}

/// The plan with the app tree before (`original`) and after (`target`).
fn plan_of(registry: &Registry, d: &Deployment) -> Plan {
    fn tree<'a>(apps: Vec<&'a AppDefinition>, version: &'a str) -> Tree<'a> {
        Tree {
            id: "/",
            apps,
            groups: [],
            dependencies: [],
            version,
        }
    }
    let wire = PlanWire {
        id: &d.id,
        version: &d.version,
        steps: d.steps.iter().map(|s| Actions { actions: s }).collect(),
        original: tree(d.original.values().flatten().collect(), &d.version),
        target: tree(
            d.affected_apps
                .iter()
                .filter_map(|id| registry.marathon.app(id))
                .collect(),
            &d.version,
        ),
    };
    match serde_json::value::to_raw_value(&wire) {
        Ok(plan) => Some(plan),
        Err(e) => {
            tracing::warn!(deployment = %d.id, error = %e, "deployment plan not serializable");
            None
        }
    }
}
