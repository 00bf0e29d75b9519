//! `meso sim`: simulated agents are agents to a real master. Fifty of them
//! register under their own hostnames with the resources given, a Marathon
//! app of 200 instances runs on them, a kill reports KILLED, a task of
//! `true` finishes, and a restarted fleet gets its agent ids back.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const AGENTS: usize = 50;

fn sim_args(master: &str, prefix: &str) -> Vec<String> {
    [
        "sim",
        "--agents",
        &AGENTS.to_string(),
        "--master",
        master,
        "--prefix",
        prefix,
        "--resources",
        "cpus:8;mem:16384",
        "--attributes",
        "pool:sim",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The app's tasks by id, once exactly `n` of them are RUNNING.
async fn running_tasks(http: &str, app: &str, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{n} running tasks of {app}"),
        Duration::from_secs(60),
        || async move {
            let tasks = get_json(http, &format!("/v2/apps{app}/tasks")).await?["tasks"].clone();
            let tasks = tasks.as_array()?.clone();
            let running = tasks
                .iter()
                .filter(|t| t["state"] == "TASK_RUNNING")
                .count();
            (running == n && tasks.len() == n).then_some(tasks)
        },
    )
    .await
}

/// `/master/tasks`' entry for the task, once `check` holds for it.
async fn master_task(http: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(30), || async {
        let all = get_json(http, "/master/tasks").await?;
        let task = all["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["id"] == id)?
            .clone();
        check(&task).then_some(task)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_agents_register_run_an_app_and_report_kills() {
    let dir = tempfile::tempdir().unwrap();
    let (_, master) = spawn_single_master(dir.path());
    let http = master.http.clone();
    let mut sim = Proc::spawn(
        "sim",
        &sim_args(&http, "sim"),
        &dir.path().join("sim.log"),
        "MESO_SIM_AGENTS",
    );
    assert_eq!(sim.exports["MESO_SIM_AGENTS"], AGENTS.to_string());

    // Every simulated agent is in /master/slaves, active, as it described itself.
    let slaves = wait_for("50 active agents", Duration::from_secs(30), || async {
        let v = get_json(&http, "/master/slaves").await?;
        let slaves = v["slaves"].as_array()?.clone();
        (slaves.len() == AGENTS && slaves.iter().all(|s| s["active"] == true)).then_some(slaves)
    })
    .await;
    let hostnames: BTreeSet<String> = slaves
        .iter()
        .map(|s| s["hostname"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = (1..=AGENTS).map(|n| format!("sim-{n}")).collect();
    assert_eq!(hostnames, expected);
    let first = slaves.iter().find(|s| s["hostname"] == "sim-1").unwrap();
    assert_eq!(first["resources"]["cpus"], 8.0);
    assert_eq!(first["resources"]["mem"], 16384.0);
    assert_eq!(
        first["resources"]["ports"], "[31000-32000]",
        "the default's ports stay"
    );
    assert_eq!(first["attributes"]["pool"], "sim");
    let ids_before: BTreeMap<String, String> = slaves
        .iter()
        .map(|s| {
            (
                s["hostname"].as_str().unwrap().to_string(),
                s["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    // 200 instances of a Marathon app reach RUNNING on them: 4 per agent
    // would fit in cpus alone, so they must spread over many.
    let r = client()
        .post(url(&http, "/v2/apps"))
        .json(
            &json!({"id": "/sim/web", "cmd": "sleep 600", "cpus": 2, "mem": 64,
                       "instances": 200, "constraints": [["pool", "IS", "sim"]]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let tasks = running_tasks(&http, "/sim/web", 200).await;
    let hosts: BTreeSet<&str> = tasks.iter().map(|t| t["host"].as_str().unwrap()).collect();
    assert_eq!(
        hosts.len(),
        AGENTS,
        "4 tasks of 2 cpus fill an 8-cpu agent: all 50 hold some"
    );
    assert!(hosts.iter().all(|h| h.starts_with("sim-")), "{hosts:?}");
    let victim = tasks[0]["id"].as_str().unwrap().to_string();
    let running = master_task(&http, &victim, "the task's statuses", |t| {
        t["state"] == "TASK_RUNNING"
    })
    .await;
    assert_eq!(
        states(&running),
        ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"]
    );

    // A kill (with scale, so nothing replaces it) ends KILLED.
    let r = client()
        .delete(url(
            &http,
            &format!("/v2/apps/sim/web/tasks/{victim}?scale=true"),
        ))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let killed = master_task(&http, &victim, "the killed task ends KILLED", |t| {
        t["state"] == "TASK_KILLED"
    })
    .await;
    assert_eq!(
        states(&killed),
        [
            "TASK_STAGING",
            "TASK_STARTING",
            "TASK_RUNNING",
            "TASK_KILLING",
            "TASK_KILLED"
        ]
    );
    running_tasks(&http, "/sim/web", 199).await;

    // A task of `true` finishes at once; one of `exit 3` fails with its code.
    // (On the killed task's agent: the others are full.)
    let agent = tasks[0]["slaveId"].as_str().unwrap();
    let r = launch_tasks(
        &http,
        json!([
            {"task_id": "done", "agent_id": agent, "cpus": 0.1, "mem": 8, "command": {"value": "true"}},
            {"task_id": "oops", "agent_id": agent, "cpus": 0.1, "mem": 8, "command": {"value": "exit 3"}},
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let done = master_task(&http, "done", "`true` ends FINISHED", |t| {
        t["state"] == "TASK_FINISHED"
    })
    .await;
    assert_eq!(last_status(&done)["exit_code"], 0);
    let oops = master_task(&http, "oops", "`exit 3` ends FAILED", |t| {
        t["state"] == "TASK_FAILED"
    })
    .await;
    assert_eq!(last_status(&oops)["exit_code"], 3);

    // A fleet started again with the same prefix is the same agents: same ids,
    // and the tasks it no longer holds are LOST, then replaced by Marathon.
    sim.kill9();
    let mut sim = Proc::spawn(
        "sim-again",
        &sim_args(&http, "sim"),
        &dir.path().join("sim-again.log"),
        "MESO_SIM_AGENTS",
    );
    let slaves = get_json(&http, "/master/slaves").await.unwrap()["slaves"].clone();
    let ids_after: BTreeMap<String, String> = slaves
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["hostname"].as_str().unwrap().to_string(),
                s["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ids_after, ids_before,
        "the same agent ids, and no new agents"
    );
    let lost = master_task(
        &http,
        tasks[1]["id"].as_str().unwrap(),
        "a task the new fleet does not hold is LOST",
        |t| t["state"] == "TASK_LOST",
    )
    .await;
    assert_eq!(last_status(&lost)["reason"], "REASON_SLAVE_RESTARTED");
    running_tasks(&http, "/sim/web", 199).await;
    sim.terminate(Duration::from_secs(10));
}
