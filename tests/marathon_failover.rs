//! The Marathon scheduler across a leader failover: three masters as OS
//! processes, two agents that know all three, a rolling restart in progress,
//! and `kill -9` of the leading master in the middle of it. The new leader
//! carries the same deployment to its end from the replicated state alone,
//! and leaves alone every task the old leader had already brought up.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::marathon::send;
use common::*;
use serde_json::{Value, json};

const APP: &str = "/slow";
const INSTANCES: usize = 4;

/// The app's tasks as `GET /v2/apps/{id}` embeds them, by id.
async fn app_tasks(http: &str) -> Option<(Value, BTreeMap<String, Value>)> {
    let app = get_json(http, &format!("/v2/apps{APP}")).await?["app"].clone();
    let tasks = app["tasks"]
        .as_array()?
        .iter()
        .filter_map(|t| Some((t["id"].as_str()?.to_string(), t.clone())))
        .collect();
    Some((app, tasks))
}

/// Running, and every health check of the task says alive.
fn healthy(task: &Value) -> bool {
    task["state"] == "TASK_RUNNING"
        && task["healthCheckResults"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|c| c["alive"] == true))
}

/// The app's tasks in `/master/tasks` (every state, ended ones included), by id.
async fn master_tasks(http: &str) -> BTreeMap<String, Value> {
    let all = get_json(http, "/master/tasks")
        .await
        .expect("/master/tasks answers");
    all["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| {
            t["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("slow.instance-"))
        })
        .filter_map(|t| Some((t["id"].as_str()?.to_string(), t.clone())))
        .collect()
}

fn spawn_agent_of(c: &Cluster, n: usize) -> (Proc, TaskReaper) {
    let masters = c.live_http().join(",");
    let work = c.dir.path().join(format!("agent{n}"));
    let args = agent_args(
        &masters,
        &c.ip,
        &work,
        &[
            "--resources",
            "cpus:4;mem:4096;disk:1000;ports:[31000-31100]",
        ],
    );
    let agent = spawn_agent(
        &format!("agent {n}"),
        &args,
        &c.dir.path().join(format!("agent-{n}.log")),
    );
    let reaper = TaskReaper::new(Path::new(&work));
    (agent, reaper)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_deployment_the_new_leader_finishes_it_sparing_new_tasks() {
    let mut c = Cluster::start(&[]).await;
    // Reapers before anything can fail: task processes outlive their agents.
    let (_agent1, _reaper1) = spawn_agent_of(&c, 1);
    let (_agent2, _reaper2) = spawn_agent_of(&c, 2);
    let leader = c.leader().await;
    state_where(&c.http[&leader], "both agents registered", |s| {
        s["activated_slaves"] == 2
    })
    .await;

    // Four sleeps whose check passes two seconds after each starts: a
    // restart that may run one task over (maximumOverCapacity 0.25) and must
    // keep all four healthy (minimumHealthCapacity 1) replaces them one at a
    // time, each step waiting for the new task's first check.
    let a_follower = c.http[&c.live().into_iter().find(|id| *id != leader).unwrap()].clone();
    let (status, created) = send(
        reqwest::Method::POST,
        &a_follower,
        "/v2/apps",
        Some(json!({
            "id": APP, "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": INSTANCES,
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
                              "delaySeconds": 2, "intervalSeconds": 1, "gracePeriodSeconds": 60,
                              "timeoutSeconds": 5, "maxConsecutiveFailures": 3}],
            "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 0.25},
        })),
    )
    .await;
    assert_eq!(status, 201, "a follower forwards the POST: {created}");
    let follower = a_follower.as_str();
    let old: BTreeSet<String> = wait_for(
        "four healthy instances and no deployment",
        Duration::from_secs(60),
        || async move {
            let (app, tasks) = app_tasks(follower).await?;
            let settled = tasks.len() == INSTANCES
                && tasks.values().all(healthy)
                && app["deployments"].as_array().is_some_and(Vec::is_empty);
            settled.then(|| tasks.into_keys().collect())
        },
    )
    .await;

    // The restart, through a follower again.
    let (status, body) = send(
        reqwest::Method::PUT,
        &a_follower,
        &format!("/v2/apps{APP}"),
        Some(json!({"cmd": "sleep 601"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deployment = body["deploymentId"]
        .as_str()
        .expect("deploymentId")
        .to_string();
    let version = body["version"].as_str().expect("version").to_string();
    let (deployment_id, new_version) = (deployment.as_str(), version.as_str());

    // Wait until the first new task is healthy and the restart is still going.
    let (before, during) = wait_for(
        "a healthy task of the new version mid-deployment",
        Duration::from_secs(60),
        || async move {
            let (_, tasks) = app_tasks(follower).await?;
            let new_healthy = tasks
                .values()
                .filter(|t| t["version"] == new_version && healthy(t))
                .count();
            let deployments = get_json(follower, "/v2/deployments").await?;
            let running = deployments
                .as_array()?
                .iter()
                .any(|d| d["id"] == deployment_id);
            ((1..INSTANCES).contains(&new_healthy) && running).then_some((tasks, deployments))
        },
    )
    .await;
    let spared: BTreeSet<String> = before
        .iter()
        .filter(|(_, t)| t["version"] == version.as_str() && healthy(t))
        .map(|(id, _)| id.clone())
        .collect();
    let leader = c.leader().await;
    c.kill9(leader);
    eprintln!(
        "killed leader {leader} with {} new task(s) healthy, step {} of {}",
        spared.len(),
        during[0]["currentStep"],
        during[0]["totalSteps"]
    );

    // A new leader, and the same deployment still running on the survivors.
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    let survivor = c.http[&c.live().into_iter().find(|id| *id != new_leader).unwrap()].clone();
    let survivor = survivor.as_str();
    let (_, deployments) = send(reqwest::Method::GET, survivor, "/v2/deployments", None).await;
    let ids: Vec<&str> = deployments
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, [deployment.as_str()], "{deployments}");

    // The new leader finishes it: no deployment left, four healthy tasks of
    // the new version.
    let (app, after) = wait_for(
        "the deployment finished on the new leader",
        Duration::from_secs(90),
        || async move {
            let deployments = get_json(survivor, "/v2/deployments").await?;
            if !deployments.as_array()?.is_empty() {
                return None;
            }
            let (app, tasks) = app_tasks(survivor).await?;
            let done = tasks.len() == INSTANCES
                && tasks
                    .values()
                    .all(|t| t["version"] == new_version && healthy(t));
            done.then_some((app, tasks))
        },
    )
    .await;
    assert_eq!(app["tasksRunning"], INSTANCES, "{app}");
    assert_eq!(app["tasksHealthy"], INSTANCES, "{app}");
    assert_eq!(app["version"], version.as_str(), "{app}");
    for id in &spared {
        assert!(
            after.contains_key(id),
            "{id} was healthy and of the new version before the failover, and is gone: {after:?}"
        );
    }

    // The whole story from the registry: the four old tasks ended KILLED,
    // exactly four new ones were ever launched, and none of them ended.
    let all = master_tasks(survivor).await;
    let mut new_tasks = Vec::new();
    for (id, task) in &all {
        if old.contains(id) {
            assert_eq!(task["state"], "TASK_KILLED", "old task {id}: {task}");
        } else {
            new_tasks.push(id.clone());
            assert_eq!(
                task["state"], "TASK_RUNNING",
                "a task of the new version ended: {task}"
            );
        }
    }
    assert_eq!(
        new_tasks.len(),
        INSTANCES,
        "one launch per instance, none twice: {new_tasks:?}"
    );
    assert_eq!(
        old.iter().filter(|id| all.contains_key(*id)).count(),
        INSTANCES
    );

    // The restarted old leader agrees once it has caught up.
    c.start_node(leader);
    let back = c.http[&leader].clone();
    let back = back.as_str();
    wait_for(
        "the restarted master sees the finished deployment",
        CONVERGE_TIMEOUT,
        || async move {
            let deployments = get_json(back, "/v2/deployments").await?;
            let (_, tasks) = app_tasks(back).await?;
            (deployments.as_array()?.is_empty()
                && tasks.len() == INSTANCES
                && tasks.values().all(|t| t["version"] == new_version))
            .then_some(())
        },
    )
    .await;
}
