//! Where the scheduler puts instances and what it does when an agent is
//! lost: constraints over agents with attributes, and unreachableStrategy,
//! with real agents, real processes and a real `kill -9`.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Site, client, get_json, url, wait_for};
use serde_json::{Value, json};

async fn post_app(http: &str, app: Value) {
    let r = client()
        .post(url(http, "/v2/apps"))
        .json(&app)
        .send()
        .await
        .expect("the master answers");
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 201, "{body}");
}

/// The app's running tasks per agent, once `n` run.
async fn running_by_agent(http: &str, id: &str, n: usize) -> BTreeMap<String, usize> {
    wait_for(
        &format!("{n} running tasks of {id}"),
        Duration::from_secs(60),
        || async move {
            let tasks = get_json(http, &format!("/v2/apps{id}/tasks")).await?["tasks"].clone();
            let tasks = tasks.as_array()?;
            let running: Vec<&Value> = tasks
                .iter()
                .filter(|t| t["state"] == "TASK_RUNNING")
                .collect();
            if running.len() != n || tasks.len() != n {
                return None;
            }
            let mut by = BTreeMap::new();
            for t in running {
                *by.entry(t["slaveId"].as_str()?.to_string()).or_insert(0) += 1;
            }
            Some(by)
        },
    )
    .await
}

#[tokio::test]
async fn constraints_spread_instances_over_agents_by_attribute() {
    let mut site = Site::start(&["--attributes", "rack:r1"]).await;
    let r2 = site.add_agent(&["--attributes", "rack:r2"]).await;
    let r3 = site.add_agent(&["--attributes", "rack:r3"]).await;
    let http = site.master.http.clone();

    // UNIQUE rack: one per rack, and a fourth has nowhere to go.
    post_app(
        &http,
        json!({"id": "/uniq", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 3,
               "constraints": [["rack", "UNIQUE"]]}),
    )
    .await;
    let by = running_by_agent(&http, "/uniq", 3).await;
    assert_eq!(by.len(), 3, "{by:?}");
    let r = client()
        .put(url(&http, "/v2/apps/uniq"))
        .json(&json!({"instances": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The queue shows the instance as soon as the scale is committed, and
    // its reasons once a scheduler round has tried to place it.
    let queue = wait_for(
        "the fourth queued, with why",
        Duration::from_secs(30),
        || {
            let http = http.clone();
            async move {
                let q = get_json(&http, "/v2/queue").await?;
                q["queue"]
                    .as_array()?
                    .iter()
                    .find(|i| {
                        i["app"]["id"] == "/uniq"
                            && i["count"] == 1
                            && i["processedOffersSummary"]["rejectSummaryLastOffers"]
                                .as_array()
                                .is_some_and(|r| !r.is_empty())
                    })
                    .cloned()
            }
        },
    )
    .await;
    let reasons = queue["processedOffersSummary"]["rejectSummaryLastOffers"].to_string();
    assert!(reasons.contains("UnfulfilledConstraint"), "{queue}");

    // GROUP_BY rack: six instances, two per rack.
    post_app(
        &http,
        json!({"id": "/grouped", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 6,
               "constraints": [["rack", "GROUP_BY"]]}),
    )
    .await;
    let by = running_by_agent(&http, "/grouped", 6).await;
    assert_eq!(
        by.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{by:?}"
    );

    // LIKE: only racks r2 and r3.
    post_app(
        &http,
        json!({"id": "/liked", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 4,
               "constraints": [["rack", "LIKE", "r[23]"]]}),
    )
    .await;
    let by = running_by_agent(&http, "/liked", 4).await;
    assert!(by.keys().all(|a| *a == r2 || *a == r3), "{by:?}");
}

#[tokio::test]
async fn tasks_of_a_lost_agent_are_replaced_and_the_extra_killed_when_it_returns() {
    let mut site = Site::start(&[]).await;
    let http = site.master.http.clone();
    let first = site.agent_id.clone();
    post_app(
        &http,
        json!({"id": "/survivor", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 1,
               "unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 3600}}),
    )
    .await;
    let by = running_by_agent(&http, "/survivor", 1).await;
    assert!(by.contains_key(&first), "{by:?}");
    let second = site.add_agent(&[]).await;

    // The first agent dies; its task keeps running but the master cannot
    // know, marks it unreachable, and after inactiveAfterSeconds the
    // scheduler starts a replacement on the second agent.
    site.agent.as_mut().expect("the first agent").kill9();
    wait_for(
        "a replacement on the second agent",
        Duration::from_secs(60),
        || {
            let (http, second) = (http.clone(), second.clone());
            async move {
                let tasks = get_json(&http, "/v2/apps/survivor/tasks").await?["tasks"].clone();
                let tasks = tasks.as_array()?;
                let unreachable = tasks.iter().any(|t| t["state"] == "TASK_UNREACHABLE");
                let replaced = tasks
                    .iter()
                    .any(|t| t["state"] == "TASK_RUNNING" && t["slaveId"] == second.as_str());
                (unreachable && replaced).then_some(())
            }
        },
    )
    .await;

    // The agent comes back with its task: two run for one instance, and
    // the scheduler kills the extra.
    site.restart_agent("agent-1-again.log");
    let by = running_by_agent(&http, "/survivor", 1).await;
    assert_eq!(by.values().sum::<usize>(), 1, "{by:?}");
}
