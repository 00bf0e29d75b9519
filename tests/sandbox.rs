//! A task's sandbox end to end, through a real master and a real agent (two
//! processes): its files read through the master's relay in Mesos's shapes,
//! and the relay's answer when the agent does not answer; artifacts fetched
//! over HTTP before the task starts; and the sandbox's removal once the task
//! has ended, while a running task's stays.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// GET `path` on the master with the query pairs: status and body.
async fn files(site: &Site, route: &str, query: &[(&str, &str)]) -> (u16, String) {
    let r = client()
        .get(url(&site.master.http, route))
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{route} {query:?}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_relays_sandbox_files_and_names_a_silent_agent() {
    let site = Site::start(&[]).await;
    site.launch(site.shell_task("chatty", "printf 0123456789; echo oops >&2; sleep 1000"))
        .await;
    site.task_in("chatty", "TASK_RUNNING").await;
    let stdout = "/tasks/chatty/stdout";
    wait_for("the output written", Duration::from_secs(10), || async {
        let (status, body) = files(&site, "/files/read", &[("path", stdout)]).await;
        (status == 200 && json_of(&body)["offset"] == 10).then_some(())
    })
    .await;

    // Mesos's read: a window of the file, and where it starts.
    let (status, body) = files(
        &site,
        "/files/read",
        &[("path", stdout), ("offset", "2"), ("length", "3")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body), json!({"data": "234", "offset": 2}));
    let (_, body) = files(&site, "/files/read", &[("path", stdout), ("offset", "7")]).await;
    assert_eq!(json_of(&body), json!({"data": "789", "offset": 7}));
    let (_, body) = files(&site, "/files/download", &[("path", stdout)]).await;
    assert_eq!(body, "0123456789");

    let (status, body) = files(&site, "/files/browse", &[("path", "/tasks/chatty")]).await;
    assert_eq!(status, 200, "{body}");
    let listing = json_of(&body);
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for name in ["stdout", "stderr"] {
        assert!(
            names.iter().any(|p| p.ends_with(&format!("/{name}"))),
            "{name} not in {listing}"
        );
    }
    let out = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("/stdout"))
        .unwrap();
    assert_eq!(out["size"], 10, "{out}");

    // The agent stops answering (its kernel still accepts connections): the
    // relay says so within seconds, naming the agent, before the client
    // gives up.
    let agent = site.agent.as_ref().unwrap();
    agent.freeze();
    let asked = Instant::now();
    let (status, body) = files(&site, "/files/read", &[("path", stdout), ("offset", "0")]).await;
    let took = asked.elapsed();
    assert_eq!(status, 503, "{body}");
    let message = json_of(&body)["message"].as_str().unwrap().to_string();
    assert!(message.contains(&site.agent_id), "{message}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    // Once the master has marked it unreachable, the relay does not try it.
    state_where(&site.master.http, "the agent marked unreachable", |s| {
        s["unreachable_slaves"] == 1
    })
    .await;
    let (status, body) = files(&site, "/files/read", &[("path", stdout), ("offset", "0")]).await;
    agent.signal(libc::SIGCONT);
    assert_eq!(status, 503, "{body}");
    let message = json_of(&body)["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(&site.agent_id) && message.ends_with("is unreachable"),
        "the master's own knowledge, not a timeout: {message}"
    );

    // Awake again: the relay works again.
    wait_for(
        "the relay to work again",
        Duration::from_secs(30),
        || async {
            let (status, body) =
                files(&site, "/files/read", &[("path", stdout), ("offset", "0")]).await;
            (status == 200 && json_of(&body)["data"] == "0123456789").then_some(())
        },
    )
    .await;
}

/// A .tar.gz holding `(name, bytes)`.
fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_fetches_its_uris_first_and_fails_naming_one_that_is_missing() {
    let base = serve_files(vec![
        (
            "/bundle.tar.gz",
            tar_gz(&[("bundle/greeting.txt", b"hello from the bundle\n")]),
        ),
        (
            "/run.sh",
            b"#!/bin/sh\necho script ran in $(pwd)\ncat bundle/greeting.txt\n".to_vec(),
        ),
    ])
    .await;
    let site = Site::start(&[]).await;

    let mut task = site.shell_task("fetched", "./run.sh");
    task["command"]["uris"] = json!([
        {"value": format!("{base}/bundle.tar.gz")},
        {"value": format!("{base}/run.sh"), "executable": true},
    ]);
    site.launch(task).await;
    let done = site.task_in("fetched", "TASK_FINISHED").await;
    assert_eq!(last_status(&done)["exit_code"], 0, "{done}");
    let sandbox = site.sandbox("fetched");
    let out = read_text(&sandbox.join("stdout"));
    assert_eq!(
        out,
        format!(
            "script ran in {}\nhello from the bundle\n",
            sandbox.display()
        )
    );
    assert!(
        sandbox.join("bundle.tar.gz").is_file(),
        "the archive is kept"
    );

    let missing = format!("{base}/nowhere.tar.gz");
    let mut task = site.shell_task("unfetched", "true");
    task["command"]["uris"] = json!([{"value": missing}]);
    site.launch(task).await;
    let failed = site.task_in("unfetched", "TASK_FAILED").await;
    let status = last_status(&failed);
    assert_eq!(
        status["reason"], "REASON_CONTAINER_PREPARATION_FAILED",
        "{failed}"
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains(&missing), "{failed}");
    assert!(message.contains("404"), "{failed}");
    assert!(
        !states(&failed).contains(&"TASK_RUNNING".to_string()),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_tasks_sandbox_is_collected_and_a_running_ones_stays() {
    // Long enough that the ended sandbox is still there when the test first
    // looks, on a slow machine too.
    let site = Site::start_with(SITE_RESOURCES, Some("gc_delay_secs: 5\n"), &[], &[]).await;
    site.launch(site.shell_task("lasting", "echo here; sleep 1000"))
        .await;
    site.launch(site.shell_task("brief", "echo done")).await;
    site.task_in("lasting", "TASK_RUNNING").await;
    site.task_in("brief", "TASK_FINISHED").await;
    let (brief, lasting) = (site.sandbox("brief"), site.sandbox("lasting"));
    assert!(brief.join("stdout").is_file());

    wait_for(
        "the ended task's sandbox removed",
        Duration::from_secs(30),
        || {
            let gone = !brief.exists();
            async move { gone.then_some(()) }
        },
    )
    .await;
    // Several more collection rounds (every 1.25 s with this delay).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(read_text(&lasting.join("stdout")), "here\n");
    site.task_in("lasting", "TASK_RUNNING").await;
}
