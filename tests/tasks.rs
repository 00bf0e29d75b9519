//! Tasks end to end, through a real master and a real agent: launched with the
//! operator API, run by the process containerizer, reported in Mesos's states,
//! killed to the last grandchild, limited by cgroups, re-adopted after
//! `kill -9` of the agent, carried through an agent's absence and return.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_task_runs_in_its_sandbox_with_mesos_environment() {
    let site = Site::start(&[]).await;
    let mut task = site.shell_task(
        "hello",
        "echo out $MESOS_TASK_ID; echo err >&2; echo ports $PORT0 $PORTS $PORT_HTTP; echo sandbox $MESOS_SANDBOX; echo greeting $GREETING",
    );
    task["ports"] = json!([{"number": 0, "name": "http"}]);
    task["command"]["environment"] = json!({"GREETING": "hi"});
    let launched = site.launch(task).await;
    assert_eq!(launched["state"], "TASK_STAGING");
    let port = launched["discovery"]["ports"]["ports"][0]["number"]
        .as_u64()
        .unwrap();
    assert!(
        (31000..=31100).contains(&port),
        "a port from the agent's range"
    );

    let done = site.task_in("hello", "TASK_FINISHED").await;
    assert_eq!(
        states(&done),
        [
            "TASK_STAGING",
            "TASK_STARTING",
            "TASK_RUNNING",
            "TASK_FINISHED"
        ]
    );
    assert_eq!(last_status(&done)["exit_code"], 0);
    let out = read_text(&site.sandbox("hello").join("stdout"));
    let sandbox = site.sandbox("hello");
    assert!(out.contains("out hello"), "{out}");
    assert!(
        out.contains(&format!("ports {port} {port} {port}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("sandbox {}", sandbox.display())),
        "{out}"
    );
    assert!(out.contains("greeting hi"), "{out}");
    assert_eq!(read_text(&sandbox.join("stderr")).trim(), "err");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_say_why() {
    let site = Site::start(&[]).await;
    site.launch(site.shell_task("three", "exit 3")).await;
    site.launch(site.shell_task("missing", "no-such-command-here"))
        .await;
    let mut argv = site.shell_task("argv", "/no/such/program");
    argv["command"]["shell"] = json!(false);
    site.launch(argv).await;
    let mut huge = site.shell_task("huge", "true");
    huge["cpus"] = json!(64);
    let recorded = site.launch(huge).await;
    assert_eq!(recorded["state"], "TASK_ERROR", "{recorded}");
    assert!(
        last_status(&recorded)["message"]
            .as_str()
            .unwrap()
            .contains("cpus"),
        "{recorded}"
    );

    let three = site.task_in("three", "TASK_FAILED").await;
    assert_eq!(last_status(&three)["exit_code"], 3);
    let missing = site.task_in("missing", "TASK_FAILED").await;
    let msg = last_status(&missing)["message"].as_str().unwrap();
    assert!(msg.contains("not found"), "{missing}");
    let argv = site.task_in("argv", "TASK_FAILED").await;
    assert_eq!(
        last_status(&argv)["reason"],
        "REASON_CONTAINER_LAUNCH_FAILED",
        "{argv}"
    );
    assert!(
        last_status(&argv)["message"]
            .as_str()
            .unwrap()
            .contains("/no/such/program"),
        "{argv}"
    );
    // The agent is still well.
    site.launch(site.shell_task("after", "true")).await;
    site.task_in("after", "TASK_FINISHED").await;
}

/// `/master/tasks?task_id=` answers that task alone, live or ended, as
/// Mesos's filter does; without it, every task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_tasks_answers_the_task_asked_for() {
    let site = Site::start(&[]).await;
    site.launch(site.shell_task("ended", "true")).await;
    site.task_in("ended", "TASK_FINISHED").await;
    site.launch(site.shell_task("live", "sleep 600")).await;
    site.task_in("live", "TASK_RUNNING").await;
    let ids = |answer: Value| -> Vec<String> {
        answer["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    for id in ["ended", "live"] {
        let one = get_json(&site.master.http, &format!("/master/tasks?task_id={id}"))
            .await
            .unwrap();
        assert_eq!(ids(one), [id]);
    }
    let none = get_json(&site.master.http, "/master/tasks?task_id=nothing")
        .await
        .unwrap();
    assert_eq!(ids(none), Vec::<String>::new());
    let all = get_json(&site.master.http, "/master/tasks").await.unwrap();
    assert_eq!(ids(all), ["live", "ended"], "live first");
    site.kill("live").await;
    site.task_in("live", "TASK_KILLED").await;
}

/// uid and gid of `user` in /etc/passwd.
fn passwd_ids(user: &str) -> (u32, u32) {
    let passwd = read_text(Path::new("/etc/passwd"));
    let line = passwd
        .lines()
        .find(|l| l.split(':').next() == Some(user))
        .unwrap_or_else(|| panic!("no {user} in /etc/passwd"));
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_as_its_user_in_a_sandbox_it_owns() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let site = Site::start(&[]).await;
    // The test's temporary dir is root's alone; an agent's work dir is
    // usually /var/lib/...: others may pass through.
    std::fs::set_permissions(site.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut task = site.shell_task("as-nobody", "id -u; id -g; echo mine > note; cat note");
    task["command"]["user"] = json!("nobody");
    site.launch(task).await;
    let mut unknown = site.shell_task("as-ghost", "true");
    unknown["command"]["user"] = json!("no-such-user-meso");
    site.launch(unknown).await;

    let done = site.task_in("as-nobody", "TASK_FINISHED").await;
    assert_eq!(last_status(&done)["exit_code"], 0, "{done}");
    let (uid, gid) = passwd_ids("nobody");
    let sandbox = site.sandbox("as-nobody");
    let out = read_text(&sandbox.join("stdout"));
    assert_eq!(
        out,
        format!("{uid}\n{gid}\nmine\n"),
        "stderr: {}",
        read_text(&sandbox.join("stderr"))
    );
    assert_eq!(std::fs::metadata(&sandbox).unwrap().uid(), uid);
    assert_eq!(std::fs::metadata(sandbox.join("note")).unwrap().uid(), uid);

    let ghost = site.task_in("as-ghost", "TASK_FAILED").await;
    let message = last_status(&ghost)["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("cannot run as user 'no-such-user-meso': no such user"),
        "{ghost}"
    );
}

/// The command names of a task's processes, sorted.
fn task_comms(id: &str) -> Vec<String> {
    let mut comms: Vec<String> = task_pids(id)
        .iter()
        .map(|pid| {
            read_text(Path::new(&format!("/proc/{pid}/comm")))
                .trim()
                .to_string()
        })
        .collect();
    comms.sort();
    comms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_command_is_execd_without_a_shell_and_the_rest_get_one() {
    let site = Site::start(&[]).await;
    site.launch(site.shell_task("plain", "sleep 1000")).await;
    site.launch(site.shell_task("shelled", "sleep 1000; true"))
        .await;
    site.task_in("plain", "TASK_RUNNING").await;
    site.task_in("shelled", "TASK_RUNNING").await;
    let comms = |id: &'static str, want: usize| async move {
        wait_for(
            &format!("{id}'s processes"),
            Duration::from_secs(10),
            || async {
                let comms = task_comms(id);
                (comms.len() == want).then_some(comms)
            },
        )
        .await
    };
    assert_eq!(comms("plain", 1).await, ["sleep"]);
    assert_eq!(comms("shelled", 2).await, ["sh", "sleep"]);
    // As the shell would have set it.
    let pid = task_pids("plain")[0];
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let pwd = format!("PWD={}", site.sandbox("plain").display());
    assert!(
        environ.split(|b| *b == 0).any(|v| v == pwd.as_bytes()),
        "{pwd} not in the task's environment"
    );
    for id in ["plain", "shelled"] {
        let r = operator(
            &site.master.http,
            json!({"type": "KILL_TASK", "kill_task": {"task_id": id}}),
        )
        .await;
        assert!(r.status().is_success(), "{}", r.status());
        site.task_in(id, "TASK_KILLED").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_reaches_grandchildren_and_sigterm_ignorers() {
    let site = Site::start(&[]).await;
    site.launch(site.shell_task(
        "tree",
        "sleep 1000 & sleep 1000 & sh -c 'sleep 1000' & wait",
    ))
    .await;
    let mut stubborn = site.shell_task("stubborn", "trap '' TERM; sleep 1000 & wait; sleep 1000");
    stubborn["kill_grace_period_seconds"] = json!(0.5);
    site.launch(stubborn).await;
    site.task_in("tree", "TASK_RUNNING").await;
    site.task_in("stubborn", "TASK_RUNNING").await;
    wait_for("the tree's processes", Duration::from_secs(10), || async {
        (task_pids("tree").len() >= 4).then_some(())
    })
    .await;

    let state = get_json(&site.master.http, "/master/state").await.unwrap();
    let used = &state["slaves"][0]["used_resources"];
    assert_eq!(
        used["mem"], 128.0,
        "two running tasks hold their memory: {used}"
    );
    let metrics = get_json(&site.master.http, "/metrics/snapshot")
        .await
        .unwrap();
    assert_eq!(metrics["master/tasks_running"], 2.0, "{metrics}");
    assert_eq!(metrics["master/slaves_active"], 1.0, "{metrics}");

    site.kill("tree").await;
    site.kill("stubborn").await;
    let tree = site.task_in("tree", "TASK_KILLED").await;
    assert!(
        states(&tree).contains(&"TASK_KILLING".to_string()),
        "{tree}"
    );
    site.task_in("stubborn", "TASK_KILLED").await;
    wait_for(
        "every process of both tasks gone",
        Duration::from_secs(10),
        || async {
            (task_pids("tree").is_empty() && task_pids("stubborn").is_empty()).then_some(())
        },
    )
    .await;
    let state = get_json(&site.master.http, "/master/state").await.unwrap();
    assert_eq!(state["slaves"][0]["used_resources"]["mem"], 0.0, "freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_stopped_by_its_limit() {
    let site = Site::start(&[]).await;
    let mut hog = site.shell_task(
        "hog",
        "python3 -c 'import time; b = bytearray(400 * 1024 * 1024); time.sleep(30)'",
    );
    hog["mem"] = json!(64);
    site.launch(hog).await;
    let hog = site.task_in("hog", "TASK_FAILED").await;
    assert_eq!(
        last_status(&hog)["reason"],
        "REASON_CONTAINER_LIMITATION_MEMORY",
        "{hog}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_agent_keeps_tasks_running_and_reports_those_that_ended() {
    let mut site = Site::start(&[]).await;
    site.launch(site.shell_task("keeps", "echo $$ > pid; while true; do sleep 0.1; done"))
        .await;
    // "ends" ends when told, while the agent is down.
    site.launch(site.shell_task("ends", "while [ ! -e go ]; do sleep 0.1; done; exit 4"))
        .await;
    site.task_in("keeps", "TASK_RUNNING").await;
    site.task_in("ends", "TASK_RUNNING").await;
    let pid_file = site.sandbox("keeps").join("pid");
    let pid = wait_for("the task's pid", Duration::from_secs(10), || {
        let text = read_text(&pid_file);
        async move { text.trim().parse::<i32>().ok() }
    })
    .await;

    site.agent.as_mut().unwrap().kill9();
    std::fs::write(site.sandbox("ends").join("go"), "").unwrap();
    wait_for("the task ended", Duration::from_secs(30), || async {
        task_pids("ends").is_empty().then_some(())
    })
    .await;
    site.restart_agent("agent-2.log");

    let ends = site.task_in("ends", "TASK_FAILED").await;
    assert_eq!(last_status(&ends)["exit_code"], 4, "{ends}");
    let keeps = site.task_in("keeps", "TASK_RUNNING").await;
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the task was not restarted: its process still runs"
    );
    assert_eq!(read_text(&pid_file).trim(), pid.to_string(), "{keeps}");
    site.kill("keeps").await;
    site.task_in("keeps", "TASK_KILLED").await;
    wait_for(
        "the task's process gone",
        Duration::from_secs(10),
        || async { task_pids("keeps").is_empty().then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_lost_and_found_takes_its_tasks_through_unreachable() {
    let site = Site::start(&[]).await;
    site.launch(site.shell_task("patient", "sleep 1000")).await;
    site.task_in("patient", "TASK_RUNNING").await;
    let before = wait_for("the task's process", Duration::from_secs(10), || async {
        let pids = task_pids("patient");
        (!pids.is_empty()).then_some(pids)
    })
    .await;

    let agent = site.agent.as_ref().unwrap();
    agent.freeze();
    let lost = site.task_in("patient", "TASK_UNREACHABLE").await;
    assert_eq!(last_status(&lost)["reason"], "REASON_SLAVE_REMOVED");
    agent.signal(libc::SIGCONT);
    let back = site.task_in("patient", "TASK_RUNNING").await;
    assert_eq!(
        last_status(&back)["reason"],
        "REASON_SLAVE_REREGISTERED",
        "{back}"
    );
    assert_eq!(
        task_pids("patient"),
        before,
        "the same processes: never restarted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_the_registry_does_not_know_are_killed() {
    let mut site = Site::start(&[]).await;
    site.launch(site.shell_task("orphan", "sleep 1000")).await;
    site.task_in("orphan", "TASK_RUNNING").await;
    // The master loses its registry (a new data dir) at the same address: the
    // agent comes back with a task nobody launched.
    let http = site.master.http.clone();
    site.master.kill9();
    let (ip, port) = http.rsplit_once(':').unwrap();
    assert_eq!(ip, site.ip);
    let mut args = single_master_args(&site.ip, &site.dir.path().join("master-2"));
    let at = args.iter().position(|a| a == "--http").unwrap();
    args[at + 1] = format!("{ip}:{port}");
    site.master = spawn_master("master-2", &args, &site.dir.path().join("master-2.log"));
    wait_for("the orphan killed", Duration::from_secs(30), || async {
        task_pids("orphan").is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_launches_get_400s_with_the_field() {
    let site = Site::start(&[]).await;
    for (task, says) in [
        (
            json!({"agent_id": site.agent_id, "command": {"value": "true"}}),
            "task_id",
        ),
        (
            json!({"task_id": "a b", "agent_id": site.agent_id, "command": {"value": "true"}}),
            "task_id",
        ),
        (
            json!({"task_id": "x", "agent_id": site.agent_id}),
            "command",
        ),
        (
            json!({"task_id": "x", "agent_id": site.agent_id, "cpus": "lots", "command": {"value": "true"}}),
            "cpus",
        ),
        (
            json!({"task_id": "x", "agent_id": site.agent_id, "container": {"type": "DOCKER"}}),
            "image",
        ),
    ] {
        let r = launch_tasks(&site.master.http, json!([task])).await;
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{text} should name {says}");
    }
    site.launch(site.shell_task("dup", "sleep 100")).await;
    let r = launch_tasks(&site.master.http, json!([site.shell_task("dup", "true")])).await;
    assert_eq!(r.status(), 409);
}
