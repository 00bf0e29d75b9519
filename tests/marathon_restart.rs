//! Rolling restarts as a Marathon client sees them: an app of HTTP servers
//! with a health check (and a readiness check) changes its configuration,
//! and the event stream (`/v2/events`) alone must show that the app never
//! dropped below `minimumHealthCapacity` healthy instances nor ran more than
//! `maximumOverCapacity` allows, and that the deployment ended with every
//! instance new and healthy. Real master, agent, processes and probes.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::marathon::{EventStream, create_app, resources_with_free_ports, update_app};
use common::{Site, get_json};
use serde_json::{Value, json};

const N: usize = 4;

/// A process that answers HTTP on its port, its sandbox as the document root.
const SERVE: &str = "exec python3 -m http.server $PORT0 --bind 127.0.0.1";

/// A site whose agent has `ports` ports free on the machine.
async fn site(ports: usize) -> Site {
    Site::start_with(&resources_with_free_ports(ports), None, &[], &[]).await
}

/// `instances` HTTP servers with a quick HTTP health check.
fn web_app(id: &str, cmd: &str, instances: usize, mhc: f64, moc: f64) -> Value {
    json!({
        "id": id,
        "cmd": cmd,
        "cpus": 0.05,
        "mem": 32,
        "instances": instances,
        "env": {"GENERATION": "1"},
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{
            "protocol": "MESOS_HTTP", "path": "/", "portIndex": 0,
            "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 2,
            "maxConsecutiveFailures": 3, "delaySeconds": 0
        }],
        "upgradeStrategy": {"minimumHealthCapacity": mhc, "maximumOverCapacity": moc},
        "taskKillGracePeriodSeconds": 1,
    })
}

/// What the event stream has said of one task.
#[derive(Debug, Default)]
struct Seen {
    state: String,
    version: String,
    healthy: bool,
}

/// The app's tasks as the event stream tells them: status updates for their
/// states, health events for their health.
#[derive(Debug, Default)]
struct Fleet {
    app: String,
    tasks: BTreeMap<String, Seen>,
}

impl Fleet {
    fn new(app: &str) -> Fleet {
        Fleet {
            app: app.into(),
            tasks: BTreeMap::new(),
        }
    }

    fn apply(&mut self, e: &Value) {
        let task = |key: &str| e[key].as_str().unwrap_or_default().to_string();
        match e["eventType"].as_str().unwrap_or_default() {
            "status_update_event" if e["appId"] == self.app.as_str() => {
                let seen = self.tasks.entry(task("taskId")).or_default();
                seen.state = task("taskStatus");
                seen.version = task("version");
            }
            "health_status_changed_event" if e["appId"] == self.app.as_str() => {
                self.tasks.entry(task("taskId")).or_default().healthy = e["alive"] == true;
            }
            "instance_health_changed_event" if e["runSpecId"] == self.app.as_str() => {
                self.tasks.entry(task("instanceId")).or_default().healthy = e["healthy"] == true;
            }
            _ => {}
        }
    }

    /// Tasks not ended.
    fn live(&self) -> BTreeSet<&str> {
        self.tasks
            .iter()
            .filter(|(_, t)| {
                matches!(
                    t.state.as_str(),
                    "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING"
                )
            })
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// Tasks running and reported healthy.
    fn healthy(&self) -> BTreeSet<&str> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.state == "TASK_RUNNING" && t.healthy)
            .map(|(id, _)| id.as_str())
            .collect()
    }
}

/// Creates the app and follows its first deployment to its end; returns the
/// stream, what it says of the app's tasks, and the app as deployed.
async fn deployed(site: &Site, app: Value) -> (EventStream, Fleet, Value) {
    let http = &site.master.http;
    let id = app["id"].as_str().unwrap().to_string();
    let mut events = EventStream::open(http).await;
    let created = create_app(http, app).await;
    let deployment = created["deployments"][0]["id"].clone();
    let mut fleet = Fleet::new(&id);
    events
        .until(
            "the first deployment's success",
            Duration::from_secs(60),
            |e| {
                fleet.apply(e);
                e["eventType"] == "deployment_success" && e["id"] == deployment
            },
        )
        .await;
    let app = get_json(http, &format!("/v2/apps{id}")).await.unwrap()["app"].clone();
    (events, fleet, app)
}

/// The ids of the fleet's tasks, which must be `n`, all live and healthy.
fn all_healthy(fleet: &Fleet, n: usize) -> BTreeSet<String> {
    let healthy: BTreeSet<String> = fleet.healthy().iter().map(|s| s.to_string()).collect();
    assert_eq!(healthy.len(), n, "{fleet:#?}");
    assert_eq!(fleet.live().len(), n, "{fleet:#?}");
    healthy
}

/// Changes the app's configuration and follows the restart to its end,
/// checking Marathon's bounds at every event; returns the fewest healthy and
/// the most live tasks seen.
async fn restart_within_bounds(mhc: f64, moc: f64) -> (usize, usize) {
    let site = site(8).await;
    let http = &site.master.http;
    let (mut events, mut fleet, before) =
        deployed(&site, web_app("/web", SERVE, N, mhc, moc)).await;
    let old = all_healthy(&fleet, N);
    let deployment = update_app(http, "/web", json!({"env": {"GENERATION": "2"}})).await;
    let min = (N as f64 * mhc).ceil() as usize;
    let max = (N as f64 * (1.0 + moc)).floor() as usize;
    let allowed = if min == max { max + 1 } else { max };
    let (mut fewest, mut most) = (N, N);
    events
        .until("the restart's success", Duration::from_secs(120), |e| {
            fleet.apply(e);
            let (healthy, live) = (fleet.healthy().len(), fleet.live().len());
            assert!(
                healthy >= min,
                "{healthy} healthy, fewer than {min}, after {e}: {fleet:#?}"
            );
            assert!(
                live <= allowed,
                "{live} live, more than {allowed}, after {e}: {fleet:#?}"
            );
            fewest = fewest.min(healthy);
            most = most.max(live);
            e["eventType"] == "deployment_success" && e["id"] == deployment
        })
        .await;

    let after = get_json(http, "/v2/apps/web").await.unwrap()["app"].clone();
    let version = after["version"].as_str().unwrap();
    assert_ne!(after["version"], before["version"]);
    let healthy = fleet.healthy();
    assert_eq!(healthy.len(), N, "{fleet:#?}");
    assert_eq!(fleet.live(), healthy, "nothing else runs: {fleet:#?}");
    for id in &healthy {
        assert!(!old.contains(*id), "{id} is an old task: {fleet:#?}");
        assert_eq!(fleet.tasks[*id].version, version, "{fleet:#?}");
    }
    // The API says the same.
    assert_eq!(
        (after["tasksHealthy"].clone(), after["tasksRunning"].clone()),
        (json!(N), json!(N)),
        "{after}"
    );
    let tasks = after["tasks"].as_array().unwrap();
    let ids: BTreeSet<&str> = tasks.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, healthy, "{after}");
    for t in tasks {
        assert_eq!(t["version"], version, "{t}");
        assert_eq!(t["healthCheckResults"][0]["alive"], true, "{t}");
    }
    (fewest, most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_keeps_half_healthy_and_uses_half_again_on_top() {
    let (fewest, most) = restart_within_bounds(0.5, 0.5).await;
    // Bounds a stop-everything restart or a one-at-a-time one would also
    // keep: this one used what the strategy gives.
    assert_eq!(fewest, 2, "old instances beyond the minimum go at once");
    assert_eq!(most, 6, "new ones start beside the old, up to the maximum");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_must_keep_all_healthy_goes_one_over() {
    let (fewest, most) = restart_within_bounds(1.0, 0.0).await;
    assert_eq!(fewest, N, "never one healthy fewer");
    assert_eq!(most, N + 1, "one over at a time, as Marathon allows");
}

// ---------------------------------------------------------------- readiness

/// The new tasks of a restart count only once their readiness check passes:
/// here `GET /ready`, which answers 200 once the test puts a file `ready` in
/// the task's sandbox (the server's document root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_tasks_replace_old_ones_only_once_ready() {
    let site = site(6).await;
    let http = &site.master.http;
    // The first generation is ready at once; the second waits for the test.
    let cmd = format!("if [ \"$GENERATION\" = 1 ]; then touch ready; fi; {SERVE}");
    let mut app = web_app("/gate", &cmd, 2, 1.0, 0.0);
    app["readinessChecks"] = json!([{
        "name": "ready-file", "protocol": "HTTP", "path": "/ready", "portName": "http",
        "intervalSeconds": 2, "timeoutSeconds": 1, "httpStatusCodesForReady": [200]
    }]);
    let (mut events, mut fleet, _) = deployed(&site, app).await;
    let old = all_healthy(&fleet, 2);
    let deployment = update_app(http, "/gate", json!({"env": {"GENERATION": "2"}})).await;
    let mut ready_ones = BTreeSet::new();
    for round in 0..2 {
        // A new task turns healthy: not ready, it frees no old one.
        let new_healthy = |fleet: &Fleet| {
            fleet
                .healthy()
                .into_iter()
                .find(|id| !old.contains(*id) && !ready_ones.contains(*id))
                .map(str::to_string)
        };
        events
            .until("a new task healthy", Duration::from_secs(60), |e| {
                fleet.apply(e);
                new_healthy(&fleet).is_some()
            })
            .await;
        let fresh = new_healthy(&fleet).unwrap();
        // Readiness is asked every 2 s: 5 quiet seconds, and nothing is killed.
        while let Some(e) = events.next(Duration::from_secs(5)).await {
            fleet.apply(&e);
            assert!(fleet.healthy().len() >= 2, "after {e}: {fleet:#?}");
        }
        let live_old = fleet.live().iter().filter(|id| old.contains(**id)).count();
        assert_eq!(
            live_old,
            2 - round,
            "an unready task freed an old one: {fleet:#?}"
        );
        let results = readiness_results(http, "/gate").await;
        assert!(
            results.iter().any(|r| r["taskId"] == fresh.as_str()
                && r["ready"] == false
                && r["name"] == "ready-file"),
            "{results:?}"
        );
        let deployments = get_json(http, "/v2/deployments").await.unwrap();
        assert_eq!(deployments[0]["id"], deployment, "{deployments}");
        assert!(
            deployments[0]["currentActions"][0]["readinessCheckResults"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["taskId"] == fresh.as_str())),
            "{deployments}"
        );
        // Ready: an old one goes.
        std::fs::write(site.sandbox(&fresh).join("ready"), "").unwrap();
        ready_ones.insert(fresh);
        let gone = events
            .until("an old task killed", Duration::from_secs(30), |e| {
                fleet.apply(e);
                assert!(fleet.healthy().len() >= 2, "after {e}: {fleet:#?}");
                e["eventType"] == "status_update_event"
                    && e["taskId"].as_str().is_some_and(|id| old.contains(id))
                    && matches!(
                        e["taskStatus"].as_str(),
                        Some("TASK_KILLING" | "TASK_KILLED")
                    )
            })
            .await;
        assert!(fleet.live().len() <= 3, "after {gone}: {fleet:#?}");
    }
    events
        .until("the restart's success", Duration::from_secs(60), |e| {
            fleet.apply(e);
            assert!(fleet.healthy().len() >= 2, "after {e}: {fleet:#?}");
            e["eventType"] == "deployment_success" && e["id"] == deployment
        })
        .await;
    let live: BTreeSet<String> = fleet.live().iter().map(|s| s.to_string()).collect();
    assert_eq!(live, ready_ones, "{fleet:#?}");
    let results = readiness_results(http, "/gate").await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|r| r["ready"] == true), "{results:?}");
}

/// The app's `readinessCheckResults` (`embed=app.readiness`).
async fn readiness_results(http: &str, id: &str) -> Vec<Value> {
    let app = get_json(http, &format!("/v2/apps{id}?embed=app.readiness"))
        .await
        .expect("the app");
    app["app"]["readinessCheckResults"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
