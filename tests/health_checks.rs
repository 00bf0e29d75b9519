//! Health checks end to end, through a real master and a real agent: tasks
//! launched with checks in their spec, probed by the agent over real HTTP,
//! TCP and `/bin/sh`, their health read back from `/master/tasks` as Mesos
//! shows it (`healthy` on statuses), unhealthy ones killed with the reason.
//!
//! Tasks that listen get a port free on the machine (from the kernel's
//! ephemeral range) as their agent's only port, since checks probe
//! `127.0.0.1:<host port>`, shared by every test running in parallel.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const HEALTH_REASON: &str = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED";

/// A site whose agent offers exactly one port, free now.
async fn site_with_one_port() -> (Site, u16) {
    let port = free_port();
    let resources = format!("cpus:4;mem:4096;disk:1000;ports:[{port}-{port}]");
    (Site::start_with(&resources, None, &[], &[]).await, port)
}

/// A check with no delay and short times; `extra` overrides fields.
fn check(protocol: &str, extra: Value) -> Value {
    let mut check = json!({
        "protocol": protocol,
        "delay_seconds": 0,
        "interval_seconds": 0.3,
        "timeout_seconds": 5,
        "grace_period_seconds": 60,
        "max_consecutive_failures": 3,
    });
    for (k, v) in extra.as_object().unwrap() {
        check[k] = v.clone();
    }
    check
}

/// The `healthy` values of the task's statuses, oldest first.
fn verdicts(task: &Value) -> Vec<bool> {
    task["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["healthy"].as_bool())
        .collect()
}

/// Waits until the task's latest status says `healthy: want`.
async fn task_healthy(site: &Site, id: &str, want: bool) -> Value {
    wait_for(
        &format!("task {id} healthy: {want}"),
        Duration::from_secs(30),
        || async move {
            site.task(id)
                .await
                .filter(|t| last_status(t)["healthy"] == want)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_check_turns_a_serving_task_healthy() {
    let (site, port) = site_with_one_port().await;
    let mut task = site.shell_task("web", "exec python3 -m http.server $PORT0 --bind 127.0.0.1");
    task["ports"] = json!([{"number": 0}]);
    task["health_checks"] = json!([check("MESOS_HTTP", json!({"path": "/", "port_index": 0}))]);
    let launched = site.launch(task).await;
    assert_eq!(launched["discovery"]["ports"]["ports"][0]["number"], port);

    let healthy = task_healthy(&site, "web", true).await;
    let status = last_status(&healthy);
    assert_eq!(status["state"], "TASK_RUNNING", "{healthy}");
    assert_eq!(status["reason"], HEALTH_REASON, "{healthy}");
    // The server took a moment to listen: failures in the grace period were
    // never reported.
    assert_eq!(verdicts(&healthy), [true], "{healthy}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_check_passes_without_verifying_the_certificate() {
    // scripts/test.sh installs it: without it this test would prove nothing.
    let openssl = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status();
    assert!(
        openssl.is_ok_and(|s| s.success()),
        "openssl makes this test's certificate: install it (scripts/test.sh does)"
    );
    let (site, _) = site_with_one_port().await;
    let serve = "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=nobody -days 1 \
                 -keyout key.pem -out cert.pem 2>/dev/null && exec python3 -c '\
import http.server, os, ssl\n\
s = http.server.HTTPServer((\"127.0.0.1\", int(os.environ[\"PORT0\"])), http.server.SimpleHTTPRequestHandler)\n\
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(\"cert.pem\", \"key.pem\")\n\
s.socket = c.wrap_socket(s.socket, server_side=True)\n\
s.serve_forever()'";
    let mut task = site.shell_task("tls", serve);
    task["ports"] = json!([{"number": 0}]);
    task["health_checks"] = json!([check("HTTPS", json!({}))]);
    site.launch(task).await;
    let healthy = task_healthy(&site, "tls", true).await;
    assert_eq!(verdicts(&healthy), [true], "{healthy}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_check_on_a_silent_port_kills_the_task() {
    let (site, port) = site_with_one_port().await;
    let mut task = site.shell_task("silent", "sleep 1000");
    task["ports"] = json!([{"number": 0}]);
    task["kill_grace_period_seconds"] = json!(1);
    task["health_checks"] = json!([check(
        "TCP",
        json!({"grace_period_seconds": 0, "interval_seconds": 1, "max_consecutive_failures": 2})
    )]);
    site.launch(task).await;

    let killed = site.task_in("silent", "TASK_KILLED").await;
    let status = last_status(&killed);
    assert_eq!(status["healthy"], false, "{killed}");
    assert_eq!(status["reason"], HEALTH_REASON, "{killed}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("TCP check") && message.contains(&format!("127.0.0.1:{port}")),
        "the message names the check and the failure: {message}"
    );
    let states = states(&killed);
    assert!(states.contains(&"TASK_KILLING".to_string()), "{killed}");
    assert_eq!(
        verdicts(&killed),
        [false, false],
        "unhealthy once, then killed: {killed}"
    );
    wait_for(
        "the task's process gone",
        Duration::from_secs(10),
        || async { task_pids("silent").is_empty().then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_check_follows_a_file_in_the_sandbox() {
    let site = Site::start(&[]).await;
    let mut task = site.shell_task("watched", "sleep 1000");
    task["health_checks"] = json!([check(
        "COMMAND",
        json!({"command": "test -f healthy", "grace_period_seconds": 0,
               "max_consecutive_failures": 0})
    )]);
    site.launch(task).await;
    task_healthy(&site, "watched", false).await;

    let file = site.sandbox("watched").join("healthy");
    std::fs::write(&file, "").unwrap();
    task_healthy(&site, "watched", true).await;
    std::fs::remove_file(&file).unwrap();
    let unhealthy = task_healthy(&site, "watched", false).await;

    assert_eq!(
        unhealthy["state"], "TASK_RUNNING",
        "never killed: {unhealthy}"
    );
    assert_eq!(verdicts(&unhealthy), [false, true, false], "{unhealthy}");
    let message = last_status(&unhealthy)["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("test -f healthy") && message.contains("status 1"),
        "{message}"
    );
    assert!(!task_pids("watched").is_empty(), "still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_within_the_grace_period_do_not_kill_until_a_success_ends_it() {
    let site = Site::start(&[]).await;
    let mut task = site.shell_task("patient", "sleep 1000");
    // Each probe leaves a line, so the test sees failures happen; one
    // counted failure would kill the task.
    task["health_checks"] = json!([check(
        "COMMAND",
        json!({"command": "echo probe >> probes; test -f ok", "grace_period_seconds": 600,
               "max_consecutive_failures": 1})
    )]);
    site.launch(task).await;
    let probes = site.sandbox("patient").join("probes");
    wait_for("three failed probes", Duration::from_secs(30), || {
        let lines = read_text(&probes).lines().count();
        async move { (lines >= 3).then_some(()) }
    })
    .await;
    let patient = site.task("patient").await.unwrap();
    assert_eq!(patient["state"], "TASK_RUNNING", "{patient}");
    assert!(verdicts(&patient).is_empty(), "no verdict yet: {patient}");

    // A success ends the grace period: the next failure counts, and kills.
    std::fs::write(site.sandbox("patient").join("ok"), "").unwrap();
    task_healthy(&site, "patient", true).await;
    std::fs::remove_file(site.sandbox("patient").join("ok")).unwrap();
    let killed = site.task_in("patient", "TASK_KILLED").await;
    assert_eq!(last_status(&killed)["healthy"], false, "{killed}");
    assert_eq!(last_status(&killed)["reason"], HEALTH_REASON, "{killed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_start_again_after_the_agent_restarts() {
    let mut site = Site::start(&[]).await;
    let mut task = site.shell_task("survivor", "touch healthy; exec sleep 1000");
    task["health_checks"] = json!([check(
        "COMMAND",
        json!({"command": "echo probe >> probes; test -f healthy", "max_consecutive_failures": 0})
    )]);
    site.launch(task).await;
    task_healthy(&site, "survivor", true).await;

    site.agent.as_mut().unwrap().kill9();
    let probes = site.sandbox("survivor").join("probes");
    let before = read_text(&probes).lines().count();
    site.restart_agent("agent-2.log");
    // A probe of the old agent may still have been under way: two more lines
    // are the new agent's (it passed them: the file is there).
    wait_for("the new agent's probes", Duration::from_secs(30), || {
        let lines = read_text(&probes).lines().count();
        async move { (lines >= before + 2).then_some(()) }
    })
    .await;
    std::fs::remove_file(site.sandbox("survivor").join("healthy")).unwrap();
    let unhealthy = task_healthy(&site, "survivor", false).await;
    assert_eq!(unhealthy["state"], "TASK_RUNNING", "{unhealthy}");
    assert_eq!(
        verdicts(&unhealthy),
        [true, false],
        "an unchanged verdict is not sent again after the restart: {unhealthy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_checks_get_400s_with_the_field_path() {
    let site = Site::start(&[]).await;
    for (checks, says) in [
        (
            json!([{"protocol": "HTTP", "port_index": 1}]),
            "tasks[0].health_checks[0].port_index",
        ),
        (
            json!([{"protocol": "COMMAND", "command": "true"}, {"protocol": "TCP", "port_index": 2}]),
            "tasks[0].health_checks[1].port_index",
        ),
        (
            json!([{"protocol": "COMMAND"}]),
            "tasks[0].health_checks[0].command",
        ),
        (
            json!([{"protocol": "COMMAND", "command": "true"}, {"protocol": "UDP"}]),
            "health_checks[1].protocol",
        ),
        (
            json!([{"protocol": "COMMAND", "command": "true", "interval_seconds": 0}]),
            "tasks[0].health_checks[0].interval_seconds",
        ),
    ] {
        let mut task = site.shell_task("bad", "sleep 1");
        task["ports"] = json!([{"number": 0}]);
        task["health_checks"] = checks;
        let r = launch_tasks(&site.master.http, json!([task])).await;
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{text} should name {says}");
    }
    assert!(site.task("bad").await.is_none(), "nothing was launched");
}

// ---------------------------------------------------------------- docker

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_container_is_checked_on_its_host_port_and_inside() {
    docker_ready();
    let (site, port) = site_with_one_port().await;
    // Container names are shared by every test on the engine.
    let id = format!("checked-{}", uuid::Uuid::new_v4().simple());
    let task = json!({
        "task_id": id,
        "agent_id": site.agent_id,
        "cpus": 0.1,
        "mem": 64,
        "kill_grace_period_seconds": 1,
        "command": {"value": "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"},
        "container": {"type": "DOCKER", "docker": {
            "image": TEST_IMAGE,
            "network": "BRIDGE",
            "port_mappings": [{"host_port": 0, "container_port": 8080}],
        }},
        // /www exists only inside the container: the command runs there.
        "health_checks": [
            check("HTTP", json!({"path": "/index.html"})),
            check("COMMAND", json!({"command": "test -f /www/index.html"})),
        ],
    });
    site.launch(task).await;
    let healthy = task_healthy(&site, &id, true).await;
    assert_eq!(
        healthy["container"]["docker"]["port_mappings"][0]["host_port"], port,
        "{healthy}"
    );
    assert_eq!(verdicts(&healthy), [true], "{healthy}");
    let ips = &last_status(&healthy)["container_status"]["network_infos"][0]["ip_addresses"];
    assert!(
        ips[0]["ip_address"].is_string(),
        "a health status keeps the container's IP: {healthy}"
    );
    site.kill(&id).await;
    site.task_in(&id, "TASK_KILLED").await;
}
