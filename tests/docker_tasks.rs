//! Docker tasks end to end, through a real master and a real agent: a BRIDGE
//! task on the host port the master picked, with its container IP in its
//! status; docker and process tasks re-adopted (not restarted) after `kill -9`
//! of the agent; an image that cannot be had, named in the failure.
//!
//! Needs a running dockerd and the image `meso-test/busybox:latest`
//! (scripts/test.sh provides both; scripts/test-image.sh builds the image).
//! Task ids are unique per run, since container names (`meso-<task_id>`) are
//! shared by every test on the engine.

use crate::common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const IMAGE: &str = TEST_IMAGE;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// `docker inspect -f FORMAT NAME`, trimmed; empty if there is no such container.
fn inspect(name: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, name])
        .output()
        .expect("docker inspect runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn container(task_id: &str) -> String {
    format!("meso-{task_id}")
}

/// A docker task running `cmd` with the image's `/bin/sh`.
fn docker_task(site: &Site, id: &str, cmd: &str) -> Value {
    json!({
        "task_id": id,
        "agent_id": site.agent_id,
        "cpus": 0.1,
        "mem": 64,
        "kill_grace_period_seconds": 1,
        "command": {"value": cmd},
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_task_serves_on_the_host_port_the_master_picked() {
    docker_ready();
    // The agent offers exactly one port, so the master's choice is known
    // and is one nobody else holds.
    let port = free_port();
    let site = Site::start_with(
        &format!("cpus:4;mem:4096;disk:1000;ports:[{port}-{port}]"),
        None,
        &[],
        &[],
    )
    .await;
    let id = unique("bridge");
    let mut task = docker_task(
        &site,
        &id,
        "echo serving $MESOS_TASK_ID; mkdir -p /www && echo hello-bridge > /www/index.html \
         && exec httpd -f -p 8080 -h /www",
    );
    task["container"]["docker"]["network"] = json!("BRIDGE");
    task["container"]["docker"]["port_mappings"] =
        json!([{"host_port": 0, "container_port": 8080, "protocol": "tcp", "name": "http"}]);
    site.launch(task).await;

    let running = site.task_in(&id, "TASK_RUNNING").await;
    let ip = last_status(&running)["container_status"]["network_infos"][0]["ip_addresses"][0]
        ["ip_address"]
        .as_str()
        .unwrap_or_else(|| panic!("no container IP in {running}"));
    let ip: Ipv4Addr = ip.parse().expect("an IPv4 bridge address");
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
    let mapped = &running["container"]["docker"]["port_mappings"][0]["host_port"];
    assert_eq!(mapped, port, "{running}");
    assert_eq!(
        running["discovery"]["ports"]["ports"][0]["number"], port,
        "{running}"
    );

    let page = wait_for(
        "the task to answer on its host port",
        Duration::from_secs(30),
        || async move {
            let r = client()
                .get(format!("http://127.0.0.1:{port}/index.html"))
                .send()
                .await
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            r.text().await.ok()
        },
    )
    .await;
    assert_eq!(page, "hello-bridge\n");
    let stdout = site.sandbox(&id).join("stdout");
    wait_for(
        "the task's output in its sandbox",
        Duration::from_secs(10),
        || {
            let text = read_text(&stdout);
            let want = format!("serving {id}");
            async move { text.contains(&want).then_some(()) }
        },
    )
    .await;

    site.kill(&id).await;
    site.task_in(&id, "TASK_KILLED").await;
    wait_for("the container removed", Duration::from_secs(10), || async {
        inspect(&container(&id), "{{.Id}}").is_empty().then_some(())
    })
    .await;
}

/// The task's pid, once its shell wrote it into its sandbox.
async fn pid_in(file: &Path) -> i32 {
    wait_for("the task's pid", Duration::from_secs(10), || {
        let text = read_text(file);
        async move { text.trim().parse::<i32>().ok() }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_agent_readopts_docker_and_process_tasks_without_restarting_them() {
    docker_ready();
    let mut site = Site::start(&[]).await;
    let boxed = unique("adopt-docker");
    let plain = unique("adopt-process");
    site.launch(docker_task(
        &site,
        &boxed,
        "while true; do echo tick; sleep 0.2; done",
    ))
    .await;
    site.launch(site.shell_task(&plain, "echo $$ > pid; while true; do sleep 0.1; done"))
        .await;
    site.task_in(&boxed, "TASK_RUNNING").await;
    site.task_in(&plain, "TASK_RUNNING").await;
    let id_before = inspect(&container(&boxed), "{{.Id}} {{.State.StartedAt}}");
    assert!(!id_before.is_empty(), "no container for {boxed}");
    let pid_file = site.sandbox(&plain).join("pid");
    let pid = pid_in(&pid_file).await;

    site.agent.as_mut().unwrap().kill9();
    // The master notices (2 s in the ci preset), so the agent's return is
    // visible: its tasks come back from TASK_UNREACHABLE.
    site.task_in(&boxed, "TASK_UNREACHABLE").await;
    site.task_in(&plain, "TASK_UNREACHABLE").await;
    site.restart_agent("agent-2.log");
    for id in [&boxed, &plain] {
        let back = site.task_in(id, "TASK_RUNNING").await;
        assert_eq!(
            last_status(&back)["reason"],
            "REASON_SLAVE_REREGISTERED",
            "{back}"
        );
    }

    assert_eq!(
        inspect(&container(&boxed), "{{.Id}} {{.State.StartedAt}}"),
        id_before,
        "the same container, never restarted"
    );
    assert_eq!(
        inspect(&container(&boxed), "{{.State.Running}} {{.RestartCount}}"),
        "true 0"
    );
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the process task was not restarted: its shell still runs"
    );
    assert_eq!(read_text(&pid_file).trim(), pid.to_string());
    // The new agent copies the container's output again.
    let stdout = site.sandbox(&boxed).join("stdout");
    let seen = read_text(&stdout).len();
    wait_for(
        "the docker task's output to grow after re-adoption",
        Duration::from_secs(10),
        || {
            let now = read_text(&stdout).len();
            async move { (now > seen).then_some(()) }
        },
    )
    .await;

    site.kill(&boxed).await;
    site.kill(&plain).await;
    site.task_in(&boxed, "TASK_KILLED").await;
    site.task_in(&plain, "TASK_KILLED").await;
    wait_for(
        "the container and the process gone",
        Duration::from_secs(10),
        || async {
            let gone = inspect(&container(&boxed), "{{.State.Running}}") != "true"
                && task_pids(&plain).is_empty();
            gone.then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_image_fails_the_task_naming_the_image() {
    docker_ready();
    let site = Site::start(&[]).await;
    let id = unique("no-image");
    // A registry that refuses at once: no pull reaches the network.
    let image = format!("127.0.0.1:1/meso-test/{}", unique("no-such-image"));
    let mut task = docker_task(&site, &id, "true");
    task["container"]["docker"]["image"] = json!(image);
    site.launch(task).await;
    let failed = site.task_in(&id, "TASK_FAILED").await;
    let status = last_status(&failed);
    assert_eq!(
        status["reason"], "REASON_CONTAINER_PREPARATION_FAILED",
        "{failed}"
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains(&image), "{failed}");
    assert_eq!(inspect(&container(&id), "{{.Id}}"), "", "no container made");
    // The agent is still well.
    let after = unique("after");
    site.launch(docker_task(&site, &after, "echo fine")).await;
    site.task_in(&after, "TASK_FINISHED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_parameters_reach_the_container_and_unknown_ones_fail_the_launch() {
    docker_ready();
    let site = Site::start(&[]).await;
    let id = unique("params");
    let mut task = docker_task(
        &site,
        &id,
        "id -u; echo extra=$EXTRA; grep myhost /etc/hosts; ulimit -n; \
         (touch /rootfile 2>/dev/null && echo root-writable) || echo root-read-only; \
         touch /scratch/x && echo tmpfs-ok; echo done; sleep 1000",
    );
    task["container"]["docker"]["parameters"] = json!([
        {"key": "user", "value": "1234:1234"},
        {"key": "label", "value": "team=web"},
        {"key": "env", "value": "EXTRA=yes"},
        {"key": "add-host", "value": "myhost:10.1.2.3"},
        {"key": "ulimit", "value": "nofile=123:456"},
        {"key": "read-only", "value": "true"},
        {"key": "tmpfs", "value": "/scratch:rw,size=1m"},
    ]);
    site.launch(task).await;
    site.task_in(&id, "TASK_RUNNING").await;
    let stdout = site.sandbox(&id).join("stdout");
    let out = wait_for(
        "the container's output",
        Duration::from_secs(20),
        || async {
            let out = std::fs::read_to_string(&stdout).unwrap_or_default();
            out.contains("done").then_some(out)
        },
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1234", "{out}");
    assert_eq!(lines[1], "extra=yes", "{out}");
    assert!(
        lines[2].starts_with("10.1.2.3") && lines[2].contains("myhost"),
        "{out}"
    );
    assert_eq!(&lines[3..6], ["123", "root-read-only", "tmpfs-ok"], "{out}");
    assert_eq!(
        inspect(&container(&id), "{{index .Config.Labels \"team\"}}"),
        "web"
    );
    let r = operator(
        &site.master.http,
        json!({"type": "KILL_TASK", "kill_task": {"task_id": id}}),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());

    // One the engine has no field for is refused before anything is made.
    let refused = unique("log-driver");
    let mut task = docker_task(&site, &refused, "true");
    task["container"]["docker"]["parameters"] = json!([{"key": "log-driver", "value": "syslog"}]);
    let r = launch_tasks(&site.master.http, json!([task])).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("container.docker.parameters[0]: 'log-driver'"),
        "{body}"
    );
    site.task_in(&id, "TASK_KILLED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_docker_engine_docker_tasks_fail_and_the_rest_runs() {
    let nowhere = format!("unix:///tmp/{}.sock", unique("no-docker"));
    let site = Site::start_with(SITE_RESOURCES, None, &[], &[("DOCKER_HOST", &nowhere)]).await;
    let docker_id = unique("nodocker");
    site.launch(
        json!({"task_id": docker_id, "agent_id": site.agent_id, "cpus": 0.1, "mem": 16,
                       "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
                       "command": {"value": "true"}}),
    )
    .await;
    site.launch(site.shell_task("plain", "true")).await;
    let failed = site.task_in(&docker_id, "TASK_FAILED").await;
    let msg = last_status(&failed)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("docker containerizer is disabled"), "{msg}");
    assert!(
        msg.contains("no-docker"),
        "the message names the engine: {msg}"
    );
    site.task_in("plain", "TASK_FINISHED").await;
    let text = read_text(&site.dir.path().join("agent-1.log"));
    assert_eq!(
        text.matches("docker containerizer disabled").count(),
        1,
        "one warning at start: {text}"
    );
}
