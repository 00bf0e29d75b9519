//! Agents as a user of Mesos knows them: they register with the leader, get an
//! id of the form `<cluster-id>-S<n>` that survives restarts, advertise their
//! resources and attributes in `/master/state`, turn unreachable when silent
//! past the timeout and come back when they return; a master failover alone
//! never makes an agent unreachable.

use crate::common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_registers_turns_unreachable_and_comes_back_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let (ip, master) = spawn_single_master(dir.path());
    let work = dir.path().join("agent");
    let args = agent_args(
        &master.http,
        &ip,
        &work,
        &[
            "--resources",
            "cpus:3;mem:1024;ports:[31000-31010]",
            "--attributes",
            "rack:r1;zone:a",
        ],
    );
    let mut agent = spawn_agent("agent", &args, &dir.path().join("agent-1.log"));

    let state = state_where(&master.http, "the agent in /master/state", |s| {
        s["slaves"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let cluster_id = state["cluster_id"].as_str().unwrap().to_string();
    let s = &state["slaves"][0];
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(id, format!("{cluster_id}-S0"), "Mesos's agent id form");
    assert_eq!(s["resources"]["cpus"], 3.0);
    assert_eq!(s["resources"]["mem"], 1024.0);
    assert!(
        s["resources"]["disk"].as_f64().unwrap() > 0.0,
        "disk is detected"
    );
    assert_eq!(s["resources"]["ports"], "[31000-31010]");
    assert_eq!(s["attributes"]["zone"], "a");
    assert_eq!(s["active"], true);
    assert_eq!(s["pid"], format!("slave(1)@{}", agent.http));
    assert_eq!(state["activated_slaves"], 1);

    agent.kill9();
    let state = state_where(&master.http, "the silent agent marked unreachable", |s| {
        s["unreachable_slaves"] == 1
    })
    .await;
    assert_eq!(slave(&state, &id).unwrap()["active"], false);

    let _back = spawn_agent("agent again", &args, &dir.path().join("agent-2.log"));
    let state = state_where(&master.http, "the agent active again", |s| {
        s["activated_slaves"] == 1
    })
    .await;
    let s = slave(&state, &id).expect("the same id after a restart");
    assert!(s["reregistered_time"].is_number(), "{s}");
    assert_eq!(state["slaves"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_does_not_make_agents_unreachable() {
    let mut c = Cluster::start(&[]).await;
    let masters = c.http.values().cloned().collect::<Vec<_>>().join(",");
    let work = c.dir.path().join("agent");
    let _agent = spawn_agent(
        "agent",
        &agent_args(&masters, &c.ip, &work, &[]),
        &c.dir.path().join("agent.log"),
    );
    let any = c.http[&1].clone();
    let state = state_where(&any, "the agent registered", |s| {
        s["slaves"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let id = state["slaves"][0]["id"].as_str().unwrap().to_string();

    let leader = c.leader().await;
    c.kill9(leader);
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    // Longer than the ci preset's 2 s agent timeout.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let state = get_json(&c.http[&new_leader], "/master/state")
        .await
        .unwrap();
    assert_eq!(state["unreachable_slaves"], 0, "{state}");
    assert_eq!(slave(&state, &id).unwrap()["active"], true);
}

#[test]
fn bad_agent_flags_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("w");
    for (flag, value, says) in [
        ("--resources", "gpus:1", "unknown resource 'gpus'"),
        ("--resources", "cpus:many", "cpus"),
        ("--attributes", "rack", "attributes"),
    ] {
        let out = run(
            &[
                "agent",
                "--http",
                "127.0.0.1:0",
                "--work-dir",
                &work.display().to_string(),
                flag,
                value,
            ],
            Duration::from_secs(20),
        );
        assert_eq!(out.code(), Some(1), "{out:?}");
        let err = out.stderr.trim();
        assert!(
            err.starts_with("error:") && err.lines().count() == 1 && err.contains(says),
            "{err}"
        );
        assert!(!work.exists(), "nothing created for a refused start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meso_up_starts_its_agents() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback_ip();
    let data = dir.path().join("cluster");
    let args: Vec<String> = [
        "up",
        "--preset",
        "ci",
        "--agents",
        "3",
        "--http",
        &format!("{ip}:0"),
        "--data-dir",
        &data.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let up = Proc::spawn("meso up", &args, &dir.path().join("up.log"), "MARATHON_URL");
    // Ready means the agents are registered already.
    let state = get_json(&up.http, "/master/state").await.unwrap();
    assert_eq!(state["activated_slaves"], 3, "{state}");
    // One host, so one port range between them: no port offered twice.
    let mut ports: Vec<String> = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["resources"]["ports"].as_str().unwrap_or("").to_string())
        .collect();
    ports.sort();
    assert_eq!(
        ports,
        ["[31000-31332]", "[31333-31666]", "[31667-32000]"],
        "{state}"
    );
}

/// `--work-dir` relative to where the agent starts: its tasks run, and their
/// sandboxes are under that directory (the task launcher runs from `/`, so a
/// path left relative failed every process task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_work_dir_is_where_the_agent_started() {
    let dir = tempfile::tempdir().unwrap();
    let (ip, master) = spawn_single_master(dir.path());
    let args = agent_args(
        &master.http,
        &ip,
        std::path::Path::new("agent-rel"),
        &["--resources", "cpus:1;mem:256;ports:[31000-31010]"],
    );
    let log = dir.path().join("agent.log");
    let _agent = Proc::spawn_in(
        "agent",
        &args,
        &log,
        "MESO_AGENT_HTTP",
        &[],
        Some(dir.path()),
    );
    let work = dir.path().join("agent-rel");
    let _reaper = TaskReaper::new(&work);
    let state = state_where(&master.http, "the agent registered", |s| {
        s["activated_slaves"] == 1
    })
    .await;
    let agent_id = state["slaves"][0]["id"].as_str().unwrap().to_string();

    let task = serde_json::json!([{
        "task_id": "rel",
        "agent_id": agent_id,
        "cpus": 0.1,
        "mem": 32,
        "command": {"value": "echo hello from $MESOS_SANDBOX"},
    }]);
    let r = launch_tasks(&master.http, task).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let done = wait_for("task rel ended", Duration::from_secs(30), || async {
        let tasks = get_json(&master.http, "/master/tasks").await?;
        let t = tasks["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["id"] == "rel")?
            .clone();
        t["state"]
            .as_str()
            .is_some_and(|s| s != "TASK_STAGING" && s != "TASK_STARTING" && s != "TASK_RUNNING")
            .then_some(t)
    })
    .await;
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    // Its end came over the supervisor's pipe (no exit file, no meta dir),
    // and once recorded the supervisor let the task go.
    assert!(!work.join("meta").join("tasks").join("rel").exists());
    let key = read_text(&work.join("agent.key")).trim().to_string();
    wait_for("the ended task reaped", Duration::from_secs(10), || {
        let held = zombies_held_for(&key);
        async move { held.is_empty().then_some(()) }
    })
    .await;
    let sandbox = work.join("sandboxes").join("rel");
    let out = read_text(&sandbox.join("stdout"));
    assert_eq!(out.trim(), format!("hello from {}", sandbox.display()));
}
