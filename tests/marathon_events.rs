//! Marathon's event bus over real HTTP: `/v2/events` (server-sent events,
//! filtered by `event_type`, refused without `Accept: text/event-stream`)
//! and HTTP callbacks (`/v2/eventSubscriptions`) POSTed to a receiver the
//! test runs.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Site, client, url, wait_for};
use serde_json::{Value, json};

/// Reads SSE `data:` lines from a response into `seen` until the body ends.
fn collect(mut resp: reqwest::Response, seen: Arc<Mutex<Vec<Value>>>) {
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find('\n') {
                let line: String = buf.drain(..=end).collect();
                if let Some(data) = line.trim_end().strip_prefix("data:") {
                    let event: Value = serde_json::from_str(data.trim()).expect("one line of JSON");
                    seen.lock().unwrap().push(event);
                }
            }
        }
    });
}

fn types(seen: &Arc<Mutex<Vec<Value>>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|e| e["eventType"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn event_stream_filters_and_callbacks_receive_events() {
    let site = Site::start(&[]).await;
    let http = site.master.http.clone();

    let refused = client().get(url(&http, "/v2/events")).send().await.unwrap();
    assert_eq!(refused.status(), 405);

    let all = attach(&http, "").await;
    let only_status = attach(&http, "?event_type=status_update_event").await;

    // A callback receiver: every POST body is kept.
    let received: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let sink = sink.clone();
        async move {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                sink.lock().unwrap().push(v);
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let r = client()
        .post(url(
            &http,
            &format!("/v2/eventSubscriptions?callbackUrl={callback}"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = client()
        .get(url(&http, "/v2/eventSubscriptions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["callbackUrls"], json!([callback]));

    let r = client()
        .post(url(&http, "/v2/apps"))
        .json(&json!({"id": "/evented", "cmd": "sleep 600", "cpus": 0.01, "mem": 16}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    wait_for(
        "the whole deployment in the stream",
        Duration::from_secs(30),
        || {
            let all = all.clone();
            async move {
                let t = types(&all);
                (t.first().map(String::as_str) == Some("event_stream_attached")
                    && t.iter().any(|e| e == "deployment_success"))
                .then_some(())
            }
        },
    )
    .await;
    assert_has(
        &all,
        &[
            "api_post_event",
            "deployment_info",
            "status_update_event",
            "instance_changed_event",
            "deployment_step_success",
            "deployment_success",
        ],
    );
    let running = all
        .lock()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "status_update_event" && e["taskStatus"] == "TASK_RUNNING")
        .cloned()
        .expect("a TASK_RUNNING status update");
    assert_eq!(running["appId"], "/evented");
    assert!(
        running["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{running}"
    );
    // The filtered stream is another connection: it may lag the first.
    some_event_on(&only_status, "status updates on the filtered stream").await;
    assert_only(&only_status, "status_update_event");

    // A deployment that can never finish (no agent has the cpus), stopped
    // with force: its step fails, then the deployment, as Marathon tells it.
    let r = client()
        .post(url(&http, "/v2/apps"))
        .json(&json!({"id": "/too-big", "cmd": "sleep 600", "cpus": 100000, "mem": 16}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let deployment = r.json::<Value>().await.unwrap()["deployments"][0]["id"]
        .as_str()
        .expect("the POST names its deployment")
        .to_string();
    let r = client()
        .delete(url(
            &http,
            &format!("/v2/deployments/{deployment}?force=true"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let of_it =
        |e: &Value| e["plan"]["id"] == deployment.as_str() || e["id"] == deployment.as_str();
    let ends = wait_for(
        "the stopped deployment's end",
        Duration::from_secs(30),
        || {
            let all = all.clone();
            async move {
                let ends: Vec<String> = all
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|e| of_it(e))
                    .filter_map(|e| e["eventType"].as_str().map(String::from))
                    .filter(|t| t.contains("fail"))
                    .collect();
                (ends.len() >= 2).then_some(ends)
            }
        },
    )
    .await;
    assert_eq!(ends, ["deployment_step_failure", "deployment_failed"]);

    wait_for(
        "the callback got the deployment",
        Duration::from_secs(30),
        || {
            let received = received.clone();
            async move {
                let got = received.lock().unwrap();
                got.iter()
                    .any(|e| e["eventType"] == "deployment_success")
                    .then_some(())
            }
        },
    )
    .await;
}

/// Attaches to `/v2/events{query}`; what it reads goes to the returned list.
async fn attach(http: &str, query: &str) -> Arc<Mutex<Vec<Value>>> {
    // No overall timeout (common::client has one): it would cut the stream.
    let streaming = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = streaming
        .get(url(http, &format!("/v2/events{query}")))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = Arc::new(Mutex::new(Vec::new()));
    collect(resp, seen.clone());
    seen
}

/// Waits until `seen` holds an event (`what` names the wait).
async fn some_event_on(seen: &Arc<Mutex<Vec<Value>>>, what: &str) {
    wait_for(what, Duration::from_secs(30), || {
        let seen = seen.clone();
        async move { (!types(&seen).is_empty()).then_some(()) }
    })
    .await;
}

/// `seen` holds an event of each of `event_types`.
fn assert_has(seen: &Arc<Mutex<Vec<Value>>>, event_types: &[&str]) {
    let got = types(seen);
    for wanted in event_types {
        assert!(
            got.iter().any(|e| e == wanted),
            "{wanted} missing from {got:?}"
        );
    }
}

/// Every event in `seen` is of `event_type`.
fn assert_only(seen: &Arc<Mutex<Vec<Value>>>, event_type: &str) {
    let got = types(seen);
    assert!(got.iter().all(|e| e == event_type), "{got:?}");
}

/// Whether `seen` holds a TASK_RUNNING status update of `app`.
fn is_running(seen: &Arc<Mutex<Vec<Value>>>, app: &str) -> bool {
    seen.lock()
        .unwrap()
        .iter()
        .any(|e| e["appId"] == app && e["taskStatus"] == "TASK_RUNNING")
}

/// Waits until `seen` holds a TASK_RUNNING status update of `app`.
async fn running_on(seen: &Arc<Mutex<Vec<Value>>>, app: &str) {
    wait_for(&format!("{app} RUNNING"), Duration::from_secs(30), || {
        let seen = seen.clone();
        let app = app.to_string();
        async move { is_running(&seen, &app).then_some(()) }
    })
    .await;
}

/// The master renders only the event types some stream asks for: a
/// filtered stream alone still gets its own, and one attached later without
/// a filter gets every type from then on.
#[tokio::test]
async fn a_filtered_stream_alone_gets_its_events_and_a_later_one_gets_all() {
    let site = Site::start(&[]).await;
    let http = site.master.http.clone();
    let only_status = attach(&http, "?event_type=status_update_event").await;
    let post = |id: &'static str| {
        let http = http.clone();
        async move {
            let r = client()
                .post(url(&http, "/v2/apps"))
                .json(&json!({"id": id, "cmd": "sleep 600", "cpus": 0.01, "mem": 16}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    };
    post("/first").await;
    running_on(&only_status, "/first").await;

    let all = attach(&http, "").await;
    some_event_on(&all, "the unfiltered stream attached").await;
    post("/second").await;
    wait_for(
        "/second's deployment on the unfiltered stream",
        Duration::from_secs(30),
        || {
            let all = all.clone();
            async move {
                let t = types(&all);
                (t.iter().any(|e| e == "deployment_success") && is_running(&all, "/second"))
                    .then_some(())
            }
        },
    )
    .await;
    assert_has(
        &all,
        &[
            "api_post_event",
            "deployment_info",
            "instance_changed_event",
        ],
    );
    running_on(&only_status, "/second").await;
    assert_only(&only_status, "status_update_event");
}
