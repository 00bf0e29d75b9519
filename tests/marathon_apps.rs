//! The Marathon API's apps through real HTTP against a real master and agent
//! running real processes: scaling, the deployment lock, versions and
//! rollback, validation errors, deletes.

use crate::common;

use std::time::Duration;

use common::marathon::{create_app, send, update_app};
use common::{Site, get_json, wait_for};
use serde_json::{Value, json};

/// Waits until the app has `n` running tasks and no deployment; returns it.
async fn settled(http: &str, id: &str, n: u64) -> Value {
    wait_for(
        &format!("{id} settled at {n} running"),
        Duration::from_secs(60),
        || async move {
            let app = get_json(http, &format!("/v2/apps{id}")).await?["app"].clone();
            (app["tasksRunning"] == n
                && app["tasks"].as_array().map(Vec::len) == Some(n as usize)
                && app["deployments"].as_array().is_some_and(Vec::is_empty))
            .then_some(app)
        },
    )
    .await
}

fn task_ids(app: &Value) -> Vec<String> {
    let mut ids: Vec<String> = app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn five_sleeps_scale_to_ten_and_back_keeping_the_oldest() {
    let site = Site::start(&[]).await;
    let http = &site.master.http;
    let (status, created) = send(
        reqwest::Method::POST,
        http,
        "/v2/apps",
        Some(json!({"id": "sleepy", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 5})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], "/sleepy");
    assert_eq!(
        created["deployments"].as_array().map(Vec::len),
        Some(1),
        "{created}"
    );
    let first = settled(http, "/sleepy", 5).await;
    let first_ids = task_ids(&first);
    for t in first["tasks"].as_array().unwrap() {
        assert_eq!(t["appId"], "/sleepy");
        assert_eq!(t["state"], "TASK_RUNNING");
        assert!(
            t["id"].as_str().unwrap().starts_with("sleepy.instance-"),
            "{t}"
        );
        assert_eq!(t["ports"].as_array().map(Vec::len), Some(1), "{t}");
    }

    let (status, body) = send(
        reqwest::Method::PUT,
        http,
        "/v2/apps//sleepy?force=False",
        Some(json!({"instances": 10})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["deploymentId"].is_string() && body["version"].is_string(),
        "{body}"
    );
    let ten = settled(http, "/sleepy", 10).await;
    assert_eq!(ten["instances"], 10);
    // A scale is not a restart: the first five still run.
    assert!(first_ids.iter().all(|id| task_ids(&ten).contains(id)));

    let (status, body) = send(
        reqwest::Method::PUT,
        http,
        "/v2/apps/sleepy",
        Some(json!({"instances": 5})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let back = settled(http, "/sleepy", 5).await;
    // YOUNGEST_FIRST: the five started last are the ones killed.
    assert_eq!(task_ids(&back), first_ids);
    assert_eq!(
        back["versionInfo"]["lastConfigChangeAt"], first["versionInfo"]["lastConfigChangeAt"],
        "scaling changes no configuration"
    );
    let versions = get_json(http, "/v2/apps/sleepy/versions").await.unwrap();
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(3),
        "{versions}"
    );
}

#[tokio::test]
async fn bad_apps_get_their_field_paths_and_locks_answer_409() {
    let site = Site::start(&[]).await;
    let http = &site.master.http;
    let (status, body) = send(
        reqwest::Method::POST,
        http,
        "/v2/apps",
        Some(json!({"id": "bad", "cmd": "true", "cpus": -1})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let paths: Vec<&str> = body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["path"].as_str())
        .collect();
    assert!(paths.iter().any(|p| p.contains("cpus")), "{body}");
    let (status, body) = send(
        reqwest::Method::POST,
        http,
        "/v2/apps",
        Some(json!({"id": "x", "cmd": 3})),
    )
    .await;
    assert!(status == 400 || status == 422, "{status} {body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("cmd"),
        "{body}"
    );
    let (status, body) = send(reqwest::Method::GET, http, "/v2/apps/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], "App '/nope' does not exist");

    // An app that would close a dependency cycle is refused.
    let post = |id: &str, dependency: &str| {
        let app = json!({"id": id, "cmd": "true", "instances": 0, "dependencies": [dependency]});
        send(reqwest::Method::POST, http, "/v2/apps", Some(app))
    };
    let (status, body) = post("/dep/a", "/dep/b").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post("/dep/b", "/dep/a").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("dependency cycle"),
        "{body}"
    );

    // An app too big for the agent: its deployment cannot finish and holds the app.
    let (status, body) = send(
        reqwest::Method::POST,
        http,
        "/v2/apps",
        Some(json!({"id": "/big", "cmd": "sleep 600", "cpus": 100, "mem": 16})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        reqwest::Method::POST,
        http,
        "/v2/apps",
        Some(json!({"id": "/big", "cmd": "true"})),
    )
    .await;
    assert_eq!(status, 409, "duplicate id: {body}");
    let (status, body) = send(
        reqwest::Method::PUT,
        http,
        "/v2/apps/big",
        Some(json!({"cpus": 0.01})),
    )
    .await;
    assert_eq!(status, 409, "locked: {body}");
    assert!(body["deployments"][0]["id"].is_string(), "{body}");
    let queue = get_json(http, "/v2/queue").await.unwrap();
    assert_eq!(queue["queue"][0]["app"]["id"], "/big", "{queue}");
    assert_eq!(queue["queue"][0]["count"], 1, "{queue}");

    let (status, body) = send(
        reqwest::Method::PUT,
        http,
        "/v2/apps/big?force=true",
        Some(json!({"cpus": 0.01})),
    )
    .await;
    assert_eq!(status, 200, "forced: {body}");
    let running = settled(http, "/big", 1).await;
    let v1 = get_json(http, "/v2/apps/big/versions").await.unwrap()["versions"][1].clone();
    // Roll back to the first version: too big again, so nothing runs new, and
    // the app says cpus 100 again.
    let (status, body) = send(
        reqwest::Method::PUT,
        http,
        "/v2/apps/big?force=true",
        Some(json!({"version": v1})),
    )
    .await;
    assert_eq!(status, 200, "rollback: {body}");
    let app = get_json(http, "/v2/apps/big").await.unwrap()["app"].clone();
    assert_eq!(app["cpus"], 100.0, "{app}");
    // DELETE takes the app and its tasks away.
    let (status, body) = send(reqwest::Method::DELETE, http, "/v2/apps/big", None).await;
    assert_eq!(status, 200, "{body}");
    let old_task = running["tasks"][0]["id"].as_str().unwrap().to_string();
    wait_for("the app's task killed", Duration::from_secs(30), || {
        let old_task = old_task.clone();
        async move {
            let tasks = get_json(http, "/master/tasks").await?;
            tasks["tasks"]
                .as_array()?
                .iter()
                .any(|t| t["id"] == old_task.as_str() && t["state"] == "TASK_KILLED")
                .then_some(())
        }
    })
    .await;
    let (status, _) = send(reqwest::Method::GET, http, "/v2/apps/big", None).await;
    assert_eq!(status, 404);
}

/// The app's queue entry's `delay.timeLeftSeconds`, if it is queued.
async fn time_left(http: &str, id: &str) -> Option<u64> {
    let queue = get_json(http, "/v2/queue").await?;
    queue["queue"]
        .as_array()?
        .iter()
        .find(|q| q["app"]["id"] == id)?["delay"]["timeLeftSeconds"]
        .as_u64()
}

/// The task id of the app's `lastTaskFailure`, if any.
async fn last_failure(http: &str, id: &str) -> Option<Value> {
    let app = get_json(http, &format!("/v2/apps{id}")).await?;
    let failure = app["app"]["lastTaskFailure"].clone();
    failure.is_object().then_some(failure)
}

#[tokio::test]
async fn a_crashing_app_backs_off_until_the_delay_is_reset() {
    let site = Site::start(&[]).await;
    let http = &site.master.http;
    create_app(
        http,
        json!({
            "id": "/crash", "cmd": "echo bad config >&2; exit 1", "cpus": 0.01, "mem": 16,
            "backoffSeconds": 2, "backoffFactor": 2, "maxLaunchDelaySeconds": 16
        }),
    )
    .await;
    // Delays of 2, 4, 8 and 16 s after each failure: each failure shows a
    // longer wait in the queue, never more than the maximum.
    let mut peaks: Vec<u64> = Vec::new();
    let mut last = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let left = time_left(http, "/crash").await.unwrap_or(0);
        assert!(left <= 16, "{left} s is past maxLaunchDelaySeconds");
        if left > last {
            peaks.push(left);
        }
        last = left;
        if left >= 15 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delay never reached its maximum: {peaks:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        peaks.windows(2).all(|w| w[0] < w[1]) && peaks.iter().any(|p| (3..=4).contains(p)),
        "each failure waits longer: {peaks:?}"
    );
    let failure = last_failure(http, "/crash")
        .await
        .expect("a lastTaskFailure");
    assert_eq!(failure["state"], "TASK_FAILED", "{failure}");
    assert_eq!(failure["appId"], "/crash", "{failure}");
    assert!(
        failure["timestamp"].is_string() && failure["version"].is_string(),
        "{failure}"
    );
    assert!(
        failure["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{failure}"
    );

    // Reset: the next launch comes at once, not in the 15 s still left, and
    // the next failure waits the first delay again.
    let (status, body) = send(
        reqwest::Method::DELETE,
        http,
        "/v2/queue//crash/delay",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let before = failure["taskId"].clone();
    wait_for(
        "a launch right after the reset",
        Duration::from_secs(12),
        || {
            let before = before.clone();
            async move {
                let failure = last_failure(http, "/crash").await?;
                (failure["taskId"] != before).then_some(())
            }
        },
    )
    .await;
    let left = time_left(http, "/crash").await.unwrap_or(0);
    assert!(left <= 2, "the delay started over: {left} s left");
    let (status, _) = send(reqwest::Method::DELETE, http, "/v2/queue/nope/delay", None).await;
    assert_eq!(status, 404);
}

/// Each app's port definitions, by app id.
async fn service_ports(http: &str) -> std::collections::BTreeMap<String, Vec<u64>> {
    get_json(http, "/v2/apps").await.expect("GET /v2/apps")["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .map(|app| {
            let ports = app["portDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["port"].as_u64())
                .collect();
            (app["id"].as_str().unwrap_or_default().to_string(), ports)
        })
        .collect()
}

#[tokio::test]
async fn service_ports_are_unique_across_apps_and_kept_by_an_update() {
    let site = Site::start(&[]).await;
    let http = &site.master.http;
    let app = |id: &str, cmd: &str, ports: usize| {
        json!({"id": id, "cmd": cmd, "instances": 0,
               "portDefinitions": vec![json!({"port": 0}); ports]})
    };
    // One PUT of three apps, then one POST: every port its own.
    let (status, body) = send(
        reqwest::Method::PUT,
        http,
        "/v2/apps",
        Some(json!([
            app("/p/a", "sleep 1", 1),
            app("/p/b", "sleep 1", 1),
            app("/p/c", "sleep 1", 1)
        ])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    create_app(http, app("/p/d", "sleep 1", 2)).await;
    // A bridged app's service ports are its port mappings'.
    let bridged = create_app(
        http,
        json!({"id": "/p/bridged", "instances": 0,
            "container": {"type": "DOCKER", "docker": {"image": "web"},
                          "portMappings": [{"containerPort": 80, "servicePort": 0}]},
            "networks": [{"mode": "container/bridge"}]}),
    )
    .await;
    let mapped = bridged["container"]["portMappings"][0]["servicePort"].as_u64();
    let before = service_ports(http).await;
    let mut all: Vec<u64> = before.values().flatten().copied().chain(mapped).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        6,
        "six distinct ports: {before:?} and {mapped:?}"
    );
    assert!(all.iter().all(|p| (10000..20000).contains(p)), "{before:?}");

    // A new version that asks for port 0 again keeps the app's ports.
    update_app(http, "/p/d?force=true", app("/p/d", "sleep 2", 2)).await;
    let after = service_ports(http).await;
    assert_eq!(after["/p/d"], before["/p/d"], "{after:?}");

    // A deleted app's port is free again: the lowest free goes to the next app.
    let path = "/v2/apps/p/a?force=true";
    let (status, body) = send(reqwest::Method::DELETE, http, path, None).await;
    assert_eq!(status, 200, "{body}");
    create_app(http, app("/p/e", "sleep 1", 1)).await;
    assert_eq!(service_ports(http).await["/p/e"], before["/p/a"]);
}
