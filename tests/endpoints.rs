//! The HTTP surface of a three-master cluster, in Mesos's and Marathon's shapes:
//! redirect, health, state, leader, metrics, forwarding of writes, the operator
//! API and the errors for bad input.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_awareness_and_mesos_shapes() {
    let mut c = Cluster::start(&[]).await;
    let cl = client();
    let leader = c.leader().await;
    let lh = c.http[&leader].clone();
    let followers: Vec<u64> = c.live().into_iter().filter(|id| *id != leader).collect();
    let fh = c.http[&followers[0]].clone();

    // /master/redirect: 307 to the leader, from anyone.
    for id in 1..=3 {
        for path in ["/master/redirect", "/redirect"] {
            let r = get(&c.http[&id], path).await.unwrap();
            assert_eq!(r.status(), 307, "{path} on master {id}");
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            assert_eq!(loc, format!("//{lh}"), "{path} on master {id}");
        }
        // /master/health and /ping.
        let r = get(&c.http[&id], "/master/health").await.unwrap();
        assert_eq!(r.status(), 200);
        let r = get(&c.http[&id], "/ping").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap().trim(), "pong");
        // /v2/leader.
        let v = get_json(&c.http[&id], "/v2/leader").await.unwrap();
        assert_eq!(v, json!({"leader": lh}));
    }

    // /master/state: elected_time on the leader only.
    let ls = get_json(&lh, "/master/state").await.unwrap();
    let fs = get_json(&fh, "/master/state").await.unwrap();
    for (who, s) in [("leader", &ls), ("follower", &fs)] {
        for key in [
            "id",
            "hostname",
            "cluster",
            "leader",
            "start_time",
            "slaves",
            "frameworks",
        ] {
            assert!(
                s.get(key).is_some(),
                "{who}'s /master/state lacks {key}: {s}"
            );
        }
        assert_eq!(s["leader"], format!("master@{lh}"), "{who}: {s}");
        assert_eq!(s["cluster"], "meso-ci", "{who}: {s}");
        assert!(
            s["start_time"].as_f64().unwrap() > 1.0e9,
            "seconds since the epoch: {s}"
        );
        assert!(s["slaves"].is_array() && s["frameworks"].is_array(), "{s}");
        assert!(s["id"].as_str().is_some_and(|i| !i.is_empty()), "{s}");
    }
    assert!(
        ls["elected_time"].as_f64().is_some(),
        "the leader has elected_time: {ls}"
    );
    assert!(
        fs.get("elected_time").is_none(),
        "a follower has no elected_time: {fs}"
    );
    assert_ne!(ls["id"], fs["id"], "each master process has its own id");
    assert_eq!(ls["cluster_id"], fs["cluster_id"], "one cluster");
    assert_eq!(ls["pid"], format!("master@{lh}"));

    // A follower forwards a write; it is committed and applied on the leader
    // by the time the 200 arrives.
    assert_eq!(put_weights(&cl, &fh, &[("fwd", 2.5)]).await.unwrap(), 200);
    let w = read_weights(&lh).await.unwrap();
    assert_eq!(w.get("fwd"), Some(&2.5), "{w:?}");
    for id in 1..=3 {
        let want = [("fwd".to_string(), 2.5)].into_iter().collect();
        assert_eq!(wait_until_weights(&c.http[&id], &want).await, want);
    }
    // The operator API too, through a follower.
    let r = cl
        .post(url(&fh, "/api/v1"))
        .json(&json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "op", "weight": 1.25}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(read_weights(&lh).await.unwrap().get("op"), Some(&1.25));

    // /metrics on the leader (which proposed the writes).
    let text = get(&lh, "/metrics").await.unwrap().text().await.unwrap();
    for name in [
        "meso_raft_term",
        "meso_raft_commit_index",
        "meso_raft_applied_index",
        "meso_raft_leader_changes_total",
        "meso_raft_proposal_duration_seconds_bucket",
        "meso_raft_proposal_duration_seconds_count",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "/metrics lacks {name}:\n{text}"
        );
    }
    let commit = metric(&text, "meso_raft_commit_index").expect("a commit index value");
    assert!(commit >= 3.0, "entries were committed: {commit}");
    let term = metric(&text, "meso_raft_term").unwrap();
    assert!(
        term >= 2.0,
        "a leader was elected after the bootstrap term: {term}"
    );
    let ftext = get(&fh, "/metrics").await.unwrap().text().await.unwrap();
    assert!(ftext.contains("meso_raft_applied_index"), "{ftext}");
    // Mesos's registrar figures come from the Raft status, whose progress
    // wakes no watcher: they must still be current when read.
    let snap: Value = get(&lh, "/metrics/snapshot")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let applied = snap["registrar/raft/applied_index"].as_f64().unwrap_or(0.0);
    assert!(
        applied >= commit,
        "/metrics/snapshot applied {applied} < the commit {commit} read before it"
    );

    // The operator API's reads.
    let call = |kind: &'static str| {
        let (cl, fh) = (cl.clone(), fh.clone());
        async move {
            let r = cl
                .post(url(&fh, "/api/v1"))
                .json(&json!({"type": kind}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{kind}");
            r.json::<Value>().await.unwrap()
        }
    };
    for (kind, key) in [
        ("GET_HEALTH", "get_health"),
        ("GET_VERSION", "get_version"),
        ("GET_MASTER", "get_master"),
        ("GET_WEIGHTS", "get_weights"),
    ] {
        let v = call(kind).await;
        assert_eq!(v["type"], kind, "{v}");
        assert!(v.get(key).is_some(), "{kind} answers {key}: {v}");
    }
    let v = call("GET_HEALTH").await;
    assert_eq!(v["get_health"]["healthy"], true);
    let v = call("GET_MASTER").await;
    assert!(
        v["get_master"]["elected_time"].is_object(),
        "GET_MASTER is answered by the leader (calls are forwarded): {v}"
    );

    // No leader: two of three masters gone, the survivor says so.
    let survivor = followers[1];
    let sh = c.http[&survivor].clone();
    for id in [leader, followers[0]] {
        c.kill9(id);
    }
    wait_for(
        "the survivor to see no leader",
        CONVERGE_TIMEOUT,
        || async {
            let r = get(&sh, "/master/health").await?;
            (r.status() == 503).then_some(())
        },
    )
    .await;
    let r = get(&sh, "/master/redirect").await.unwrap();
    assert_eq!(r.status(), 503);
    let r = get(&sh, "/v2/leader").await.unwrap();
    assert_eq!(
        r.status(),
        404,
        "Marathon answers 404 when there is no leader"
    );
    let r = put_weights(&cl, &sh, &[("nope", 1.0)]).await.unwrap();
    assert_eq!(r, 503, "a write without a leader is refused with 503");
    let s = get_json(&sh, "/master/state").await.unwrap();
    assert!(
        s.get("leader").is_none() && s.get("elected_time").is_none(),
        "{s}"
    );
    // Like Mesos, /api/v1 is the leader's: 503 when none can be found.
    let r = cl
        .post(url(&sh, "/api/v1"))
        .json(&json!({"type": "GET_HEALTH"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // Reads still answer from the local state.
    assert_eq!(read_weights(&sh).await.unwrap().get("fwd"), Some(&2.5));
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_400_with_the_field_path() {
    let c = Cluster::start(&[]).await;
    let cl = client();
    let leader = c.leader().await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    for via in [leader, follower] {
        let h = &c.http[&via];
        for (body, path) in [
            (r#"[{"role":"r","weight":"x"}]"#, "[0].weight"),
            (r#"[{"role":"r","weight":-1}]"#, "[0].weight"),
            (r#"[{"role":"r","weight":0}]"#, "[0].weight"),
            (r#"[{"role":"","weight":1}]"#, "[0].role"),
            (
                r#"[{"role":"ok","weight":1},{"role":"a b","weight":1}]"#,
                "[1].role",
            ),
            (r#"[{"role":"ok","weight":1},{"role":"b"}]"#, "[1]"),
            (r#"{"role":"r","weight":1}"#, ""),
            ("not json", ""),
        ] {
            let r = cl
                .put(url(h, "/master/weights"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{body} via master {via}");
            let v: Value = r.json().await.expect("a JSON error body");
            let msg = v["message"].as_str().expect("{\"message\": ...}");
            assert!(
                msg.contains(path),
                "{body}: message {msg:?} should name {path}"
            );
        }
        let r = cl
            .post(url(h, "/api/v1"))
            .json(&json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "r", "weight": -2}]}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("update_weights.weight_infos[0].weight"),
            "{v}"
        );
        let r = cl
            .post(url(h, "/api/v1"))
            .json(&json!({"type": "NO_SUCH_CALL"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = cl
            .post(url(h, "/api/v1"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains("type"), "{v}");
    }
    // None of it reached the registry.
    for id in 1..=3 {
        assert_eq!(
            read_weights(&c.http[&id]).await.unwrap(),
            Default::default()
        );
    }
}

#[test]
fn version_command() {
    let out = run(&["version"], Duration::from_secs(10));
    assert_eq!(out.code(), Some(0));
    assert!(out.stdout.starts_with("meso "), "{}", out.stdout);
    let out = run(&["version", "--json"], Duration::from_secs(10));
    assert_eq!(out.code(), Some(0));
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        v["version"].is_string() && v["mesos_api"].is_string(),
        "{v}"
    );
}

#[test]
fn members_cli_without_a_cluster_fails_in_one_line() {
    let ip = loopback_ip();
    let out = run(
        &["members", "list", "--master", &format!("{ip}:1")],
        Duration::from_secs(20),
    );
    // 3: no cluster answering, as for every client command (README).
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
}
