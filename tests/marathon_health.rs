//! Health through the Marathon API: apps declare checks, agents run them,
//! and what a client reads back (`/v2/apps`, task JSON, `/v2/events`) says
//! how the tasks are; a task that fails its checks is killed and replaced.
//! Real master, agent, processes, containers and probes.

use crate::common;

use std::time::Duration;

use common::marathon::{EventStream, create_app, resources_with_free_ports};
use common::{Site, TEST_IMAGE, docker_ready, get_json, wait_for};
use serde_json::{Value, json};

/// A site whose agent has `ports` ports free on the machine.
async fn site(ports: usize) -> Site {
    Site::start_with(&resources_with_free_ports(ports), None, &[], &[]).await
}

/// Waits until the app has one running task reported healthy; returns the app.
async fn one_healthy(http: &str, id: &str) -> Value {
    wait_for(
        &format!("{id} healthy"),
        Duration::from_secs(60),
        || async move {
            let app = get_json(http, &format!("/v2/apps{id}")).await?["app"].clone();
            (app["tasksHealthy"] == 1 && app["tasksRunning"] == 1).then_some(app)
        },
    )
    .await
}

// ---------------------------------------------------------------- docker

/// busybox's httpd in a BRIDGE container, its port 8080 mapped to a host
/// port the agent picks, checked over HTTP on that host port.
fn bridged(id: &str, container: Value, networks: Option<Value>) -> Value {
    let mut app = json!({
        "id": id,
        "cmd": "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www",
        "cpus": 0.1,
        "mem": 64,
        "container": container,
        "healthChecks": [{
            "protocol": "MESOS_HTTP", "path": "/index.html", "portIndex": 0,
            "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 2, "delaySeconds": 0
        }],
        "taskKillGracePeriodSeconds": 1,
    });
    if let Some(networks) = networks {
        app["networks"] = networks;
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_containers_are_healthy_on_their_mapped_host_ports() {
    docker_ready();
    let site = site(2).await;
    let http = &site.master.http;
    // The deprecated form (docker.network, docker.portMappings) and the
    // Marathon 1.5+ one (networks, container.portMappings).
    let old_form = bridged(
        "/bridged-old",
        json!({"type": "DOCKER", "docker": {
            "image": TEST_IMAGE, "network": "BRIDGE",
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        }}),
        None,
    );
    let new_form = bridged(
        "/bridged-new",
        json!({"type": "DOCKER", "docker": {"image": TEST_IMAGE},
               "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"}]}),
        Some(json!([{"mode": "container/bridge"}])),
    );
    for app in [old_form, new_form] {
        create_app(http, app).await;
    }
    for id in ["/bridged-old", "/bridged-new"] {
        let app = one_healthy(http, id).await;
        // Served in the canonical form whichever form came in.
        assert_eq!(
            app["networks"],
            json!([{"mode": "container/bridge"}]),
            "{app}"
        );
        assert_eq!(
            app["container"]["portMappings"][0]["containerPort"], 8080,
            "{app}"
        );
        assert!(
            app["container"]["docker"].get("portMappings").is_none(),
            "{app}"
        );
        let task = &app["tasks"][0];
        // The mapping's service port is assigned, and is the task's.
        let service = &app["container"]["portMappings"][0]["servicePort"];
        assert!(
            service
                .as_u64()
                .is_some_and(|p| (10000..20000).contains(&p)),
            "{app}"
        );
        assert_eq!(task["servicePorts"], json!([service]), "{task}");
        let results = &task["healthCheckResults"];
        assert_eq!(results.as_array().map(Vec::len), Some(1), "{task}");
        assert_eq!(results[0]["alive"], true, "{task}");
        assert_eq!(results[0]["consecutiveFailures"], 0, "{task}");
        assert!(results[0]["lastSuccess"].is_string(), "{task}");
        let port = task["ports"][0].as_u64().expect("a host port");
        let page = common::client()
            .get(format!("http://127.0.0.1:{port}/index.html"))
            .send()
            .await
            .expect("the host port answers");
        assert_eq!(page.status(), 200, "{id} on {port}");
        assert_eq!(page.text().await.unwrap().trim(), "ok");
    }
}

// ---------------------------------------------------------------- replacing

/// A task that fails its checks after it started is killed by its agent and
/// replaced by the scheduler, after the backoff the kill earned; the events
/// tell each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_turns_unhealthy_is_killed_and_replaced() {
    let site = Site::start(&[]).await;
    let http = &site.master.http;
    let mut events = EventStream::open(http).await;
    let check = json!({
        "protocol": "COMMAND", "command": {"value": "test -f healthy"},
        "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 5,
        "maxConsecutiveFailures": 2, "delaySeconds": 0
    });
    let app = json!({
        "id": "/flaky", "cmd": "touch healthy && exec sleep 1000", "cpus": 0.05, "mem": 16,
        "healthChecks": [check],
        "backoffSeconds": 2,
        "taskKillGracePeriodSeconds": 1,
    });
    create_app(http, app).await;
    let alive = events
        .until("a task healthy", Duration::from_secs(60), |e| {
            e["eventType"] == "health_status_changed_event" && e["alive"] == true
        })
        .await;
    let first = alive["taskId"].as_str().unwrap().to_string();
    assert_eq!(alive["appId"], "/flaky", "{alive}");
    assert_eq!(alive["instanceId"], first.as_str(), "{alive}");
    assert!(alive["version"].is_string(), "{alive}");
    let instance = events
        .until("the instance healthy", Duration::from_secs(10), |e| {
            e["eventType"] == "instance_health_changed_event"
        })
        .await;
    assert_eq!(instance["instanceId"], first.as_str(), "{instance}");
    assert_eq!(instance["healthy"], true, "{instance}");
    assert_eq!(instance["runSpecId"], "/flaky", "{instance}");
    assert_eq!(instance["runSpecVersion"], alive["version"], "{instance}");
    one_healthy(http, "/flaky").await;

    std::fs::remove_file(site.sandbox(&first).join("healthy")).unwrap();
    let killed = events
        .until("the unhealthy task killed", Duration::from_secs(30), |e| {
            e["eventType"] == "unhealthy_instance_kill_event"
        })
        .await;
    assert_eq!(killed["taskId"], first.as_str(), "{killed}");
    assert_eq!(killed["appId"], "/flaky", "{killed}");
    let reason = killed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("test -f healthy"), "{killed}");
    // It was reported unhealthy first, naming the app's check.
    let failed = events.of_type("failed_health_check_event");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["taskId"], first.as_str());
    assert_eq!(
        failed[0]["healthCheck"]["protocol"], "COMMAND",
        "{}",
        failed[0]
    );
    assert_eq!(
        failed[0]["healthCheck"]["command"]["value"],
        "test -f healthy"
    );
    assert!(
        events
            .of_type("health_status_changed_event")
            .iter()
            .any(|e| e["taskId"] == first.as_str() && e["alive"] == false),
        "{:?}",
        events.seen
    );

    let replacement = events
        .until("a replacement launched", Duration::from_secs(30), |e| {
            e["eventType"] == "status_update_event"
                && e["taskId"] != first.as_str()
                && e["appId"] == "/flaky"
        })
        .await;
    let second = replacement["taskId"].as_str().unwrap().to_string();
    // Not before the backoff (2 s) the failed check earned.
    let at = |e: &Value| {
        humantime::parse_rfc3339(e["timestamp"].as_str().unwrap()).expect("a Marathon timestamp")
    };
    let waited = at(&replacement)
        .duration_since(at(&killed))
        .unwrap_or_default();
    assert!(
        waited >= Duration::from_millis(1500),
        "replaced after {waited:?}"
    );
    events
        .until("the replacement healthy", Duration::from_secs(60), |e| {
            e["eventType"] == "health_status_changed_event"
                && e["taskId"] == second.as_str()
                && e["alive"] == true
        })
        .await;
    let app = one_healthy(http, "/flaky").await;
    assert_eq!(app["tasks"][0]["id"], second.as_str(), "{app}");
    let old = site
        .task(&first)
        .await
        .expect("the killed task is remembered");
    let last = common::last_status(&old);
    assert_eq!(old["state"], "TASK_KILLED", "{old}");
    assert_eq!(
        last["reason"], "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
        "{old}"
    );
}
