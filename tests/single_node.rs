//! One node: start, write through the API, stop, restart on the same data dir:
//! the state is intact. For `meso master` and for `meso up`.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::json;

fn expected(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(r, w)| (r.to_string(), *w)).collect()
}

async fn wait_healthy(addr: &str) {
    wait_for("GET /master/health = 200", CONVERGE_TIMEOUT, || async {
        let r = get(addr, "/master/health").await?;
        (r.status() == 200).then_some(())
    })
    .await;
}

async fn cluster_id(addr: &str) -> String {
    wait_for(
        "a cluster id in /master/state",
        CONVERGE_TIMEOUT,
        || async {
            let s = get_json(addr, "/master/state").await?;
            s["cluster_id"].as_str().map(str::to_string)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_restart_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback_ip();
    let data = dir.path().join("data");
    let args = single_master_args(&ip, &data);
    let c = client();

    let mut m = spawn_master("master", &args, &dir.path().join("log-1.txt"));
    assert_eq!(m.id, Some(1), "a master without --peers is master 1");
    assert!(
        m.http.starts_with(&format!("{ip}:")) && !m.http.ends_with(":0"),
        "{}",
        m.http
    );
    wait_healthy(&m.http).await;

    for pairs in [
        &[("analytics", 2.0), ("web", 1.5)][..],
        &[("batch", 0.25)][..],
        &[("web", 3.0)][..], // overwrites
    ] {
        let status = put_weights(&c, &m.http, pairs).await.unwrap();
        assert_eq!(status, 200, "PUT {pairs:?}");
    }
    // The operator API writes the same registry.
    let r = c
        .post(url(&m.http, "/api/v1"))
        .json(&json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "ops", "weight": 4.0}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let want = expected(&[
        ("analytics", 2.0),
        ("web", 3.0),
        ("batch", 0.25),
        ("ops", 4.0),
    ]);
    assert_eq!(
        read_weights(&m.http).await.unwrap(),
        want,
        "a write is applied once acknowledged"
    );
    let r = c
        .post(url(&m.http, "/api/v1"))
        .json(&json!({"type": "GET_WEIGHTS"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "GET_WEIGHTS");
    assert_eq!(
        body["get_weights"]["weight_infos"].as_array().map(Vec::len),
        Some(4),
        "{body}"
    );
    let id_before = cluster_id(&m.http).await;

    // A clean stop exits 0 ...
    let status = m.terminate(Duration::from_secs(15));
    assert!(
        status.success(),
        "SIGTERM should stop the master cleanly, got {status:?}"
    );
    assert!(data.join("registry.redb").is_file());

    // ... and a restart on the same data dir has everything.
    let m = spawn_master("master (restarted)", &args, &dir.path().join("log-2.txt"));
    assert_eq!(m.id, Some(1), "the id is read back from the store");
    wait_healthy(&m.http).await;
    assert_eq!(
        wait_until_weights(&m.http, &want).await,
        want,
        "state after a clean restart"
    );
    assert_eq!(
        cluster_id(&m.http).await,
        id_before,
        "the cluster keeps its id"
    );
    let status = put_weights(&c, &m.http, &[("after", 1.0)]).await.unwrap();
    assert_eq!(status, 200, "the restarted master takes writes");
    let mut want = want;
    want.insert("after".into(), 1.0);

    // kill -9 loses nothing that was acknowledged.
    let mut m = m;
    m.kill9();
    let m = spawn_master(
        "master (after kill -9)",
        &args,
        &dir.path().join("log-3.txt"),
    );
    wait_healthy(&m.http).await;
    assert_eq!(
        wait_until_weights(&m.http, &want).await,
        want,
        "state after kill -9"
    );
    assert_eq!(cluster_id(&m.http).await, id_before);
}

/// With `raft.snapshot_every` small, most of the state lives in the snapshot:
/// a restart restores snapshot + log tail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_restart_after_compaction_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback_ip();
    let data = dir.path().join("data");
    let config = dir.path().join("fast-snapshots.yaml");
    std::fs::write(&config, "raft:\n  snapshot_every: 10\n").unwrap();
    let mut args = single_master_args(&ip, &data);
    args.extend(["--config".into(), config.display().to_string()]);
    let c = client();

    let mut m = spawn_master("master", &args, &dir.path().join("log-1.txt"));
    wait_healthy(&m.http).await;
    let mut want = BTreeMap::new();
    for i in 0..57 {
        let role = format!("role-{i}");
        let w = 1.0 + i as f64 / 4.0;
        assert_eq!(put_weights(&c, &m.http, &[(&role, w)]).await.unwrap(), 200);
        want.insert(role, w);
    }
    assert_eq!(read_weights(&m.http).await.unwrap(), want);
    assert!(m.terminate(Duration::from_secs(15)).success());

    let m = spawn_master("master (restarted)", &args, &dir.path().join("log-2.txt"));
    wait_healthy(&m.http).await;
    assert_eq!(
        wait_until_weights(&m.http, &want).await,
        want,
        "state from snapshot + log"
    );
    // And once more after more compactions and a kill -9.
    for i in 57..80 {
        let role = format!("role-{i}");
        assert_eq!(
            put_weights(&c, &m.http, &[(&role, 2.0)]).await.unwrap(),
            200
        );
        want.insert(role, 2.0);
    }
    let mut m = m;
    m.kill9();
    let m = spawn_master(
        "master (after kill -9)",
        &args,
        &dir.path().join("log-3.txt"),
    );
    wait_healthy(&m.http).await;
    assert_eq!(wait_until_weights(&m.http, &want).await, want);
}

fn up_args(ip: &str, data: &std::path::Path, masters: u32) -> Vec<String> {
    vec![
        "up".into(),
        "--preset".into(),
        "ci".into(),
        "--masters".into(),
        masters.to_string(),
        "--http".into(),
        format!("{ip}:0"),
        "--data-dir".into(),
        data.display().to_string(),
    ]
}

async fn up_restart_keeps_state(masters: u32) {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback_ip();
    let data = dir.path().join("cluster");
    let args = up_args(&ip, &data, masters);
    let c = client();

    let mut up = Proc::spawn(
        "meso up",
        &args,
        &dir.path().join("log-1.txt"),
        "MARATHON_URL",
    );
    let api = up.http.clone();
    assert!(
        api.starts_with(&format!("{ip}:")) && !api.ends_with(":0"),
        "{api}"
    );
    assert_eq!(up.exports["MARATHON_URL"], format!("http://{api}"));
    // Ready means usable: a leader is known as soon as the lines are printed.
    let r = get(&api, "/master/health")
        .await
        .expect("API answers once ready");
    assert_eq!(r.status(), 200);
    let state = get_json(&api, "/master/state").await.unwrap();
    assert_eq!(
        state["cluster"], "meso-ci",
        "the ci preset names the cluster"
    );

    let want = expected(&[("dev", 2.0), ("ci", 0.5)]);
    assert_eq!(
        put_weights(&c, &api, &[("dev", 2.0), ("ci", 0.5)])
            .await
            .unwrap(),
        200
    );
    assert_eq!(read_weights(&api).await.unwrap(), want);
    let members = get_json(&api, "/master/members").await.unwrap();
    assert_eq!(
        members.as_array().unwrap().len(),
        masters as usize,
        "{members}"
    );

    let status = up.terminate(Duration::from_secs(15));
    assert!(
        status.success(),
        "meso up stops cleanly on SIGTERM, got {status:?}"
    );
    for n in 1..=masters {
        assert!(
            data.join(format!("master-{n}"))
                .join("registry.redb")
                .is_file()
        );
    }

    let up = Proc::spawn(
        "meso up (again)",
        &args,
        &dir.path().join("log-2.txt"),
        "MARATHON_URL",
    );
    assert_eq!(
        wait_until_weights(&up.http, &want).await,
        want,
        "meso up restores the state"
    );
    assert_eq!(
        put_weights(&c, &up.http, &[("more", 1.0)]).await.unwrap(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_restart_keeps_state_one_master() {
    up_restart_keeps_state(1).await;
}

/// `meso up --masters 3` with port 0: the restarted members get new ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_restart_keeps_state_three_masters() {
    up_restart_keeps_state(3).await;
}
