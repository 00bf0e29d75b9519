//! Three masters as three OS processes on loopback: `kill -9` the leader, a new
//! one takes over and accepts writes, the killed one restarts and catches up;
//! and under 1,000 concurrent writes with the leader killed mid-way, every
//! acknowledged write is on all three masters afterwards.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;

/// Every master lists the three of them as voters and names `leader`.
async fn assert_membership(c: &Cluster, leader: u64) {
    for id in c.live() {
        let h = c.http[&id].clone();
        let members = wait_for(
            "three voters with the leader marked",
            CONVERGE_TIMEOUT,
            || {
                let h = h.clone();
                async move {
                    let v = get_json(&h, "/master/members").await?;
                    let ok = v.as_array()?.len() == 3
                        && v.as_array()?.iter().all(|m| m["voter"] == true)
                        && v.as_array()?
                            .iter()
                            .any(|m| m["leader"] == true && m["id"] == leader);
                    ok.then_some(v)
                }
            },
        )
        .await;
        for m in members.as_array().unwrap() {
            let mid = m["id"].as_u64().unwrap();
            assert_eq!(m["raft_addr"], c.raft[&mid].as_str(), "{members}");
            assert_eq!(m["http_addr"], c.http[&mid].as_str(), "{members}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leader_then_new_leader_writes_and_restarted_node_catches_up() {
    let mut c = Cluster::new(&[]);
    // Small snapshots, so the restarted node must catch up from a snapshot: the
    // leader will have compacted the log past where it stopped.
    c.config("raft:\n  snapshot_every: 40\n");
    c.start_all().await;
    let cl = client();
    let mut want = BTreeMap::new();

    let old = c.leader().await;
    assert_membership(&c, old).await;
    for i in 0..20 {
        let role = format!("before-{i}");
        // Through every member: followers forward to the leader.
        let via = &c.http[&(1 + i % 3)];
        assert_eq!(
            put_weights(&cl, via, &[(&role, 1.0 + i as f64)])
                .await
                .unwrap(),
            200
        );
        want.insert(role, 1.0 + i as f64);
    }
    c.converge(&want).await;

    c.kill9(old);
    let new = c.leader().await;
    assert_ne!(new, old, "the killed master cannot be the leader");
    let status = put_weights(&cl, &c.http[&new], &[("after-kill", 7.0)])
        .await
        .unwrap();
    assert_eq!(status, 200, "the new leader accepts a write");
    want.insert("after-kill".into(), 7.0);
    let live = c.live_http();
    for i in 0..120 {
        let role = format!("during-{i}");
        write_retry(&cl, &live, &[(&role, 0.5 + i as f64)]).await;
        want.insert(role, 0.5 + i as f64);
    }
    c.converge(&want).await;

    c.start_node(old);
    let h = c.http[&old].clone();
    let got = wait_until_weights(&h, &want).await;
    assert_eq!(got, want, "the restarted master {old} caught up");
    assert_eq!(
        c.leader().await,
        new,
        "a returning master does not disrupt the leader (pre-vote)"
    );
    assert_membership(&c, new).await;

    // And it keeps up with new writes, not just the snapshot.
    assert_eq!(put_weights(&cl, &h, &[("last", 9.0)]).await.unwrap(), 200);
    want.insert("last".into(), 9.0);
    c.converge(&want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_leader_kill9_under_load() {
    const WRITES: usize = 1000;
    const CLIENTS: usize = 16;
    const KILL_AFTER: usize = 400;

    let mut c = Cluster::new(&[]);
    // Compaction happens during the run as well.
    c.config("raft:\n  snapshot_every: 300\n");
    c.start_all().await;
    let addrs: Vec<String> = c.http.values().cloned().collect();
    let acked: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
    let acks = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicU32::new(0));

    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let (addrs, acked, acks, retries) =
            (addrs.clone(), acked.clone(), acks.clone(), retries.clone());
        tasks.push(tokio::spawn(async move {
            let cl = client();
            for i in (t..WRITES).step_by(CLIENTS) {
                let role = format!("w{i:04}");
                let weight = i as f64 + 0.5;
                let failed = write_retry(&cl, &addrs, &[(&role, weight)]).await;
                retries.fetch_add(failed, Ordering::Relaxed);
                acked.lock().unwrap().insert(role, weight);
                acks.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    wait_for(
        "the first writes to be acknowledged",
        CONVERGE_TIMEOUT,
        || {
            let acks = acks.clone();
            async move { (acks.load(Ordering::Relaxed) >= KILL_AFTER).then_some(()) }
        },
    )
    .await;
    let old = c.leader().await;
    let at = acks.load(Ordering::Relaxed);
    c.kill9(old);
    eprintln!("killed leader {old} after {at} acknowledged writes");

    for t in tasks {
        t.await.expect("a client task panicked");
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        WRITES,
        "every write was eventually acknowledged"
    );
    let after_kill = acks.load(Ordering::Relaxed) - at;
    assert!(after_kill > 0, "writes went on after the kill");
    eprintln!(
        "{} failed attempts (503/504/connection errors) were retried",
        retries.load(Ordering::Relaxed)
    );

    let new = c.leader().await;
    assert_ne!(new, old);
    c.converge(&acked).await;
    c.start_node(old);
    c.converge(&acked).await;
    for id in 1..=3 {
        let w = read_weights(&c.http[&id]).await.unwrap();
        let missing: Vec<&String> = acked.keys().filter(|r| !w.contains_key(*r)).collect();
        assert!(
            missing.is_empty(),
            "master {id} lacks acknowledged writes {missing:?}"
        );
        assert_eq!(w, acked, "master {id}");
    }
}

/// A hung leader (SIGSTOP): the others elect a new leader and take writes; when
/// it resumes it steps down and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_leader_then_new_leader_and_resumed_one_steps_down() {
    let c = Cluster::start(&[]).await;
    let cl = client();
    let mut want = BTreeMap::new();
    assert_eq!(
        put_weights(&cl, &c.http[&1], &[("a", 1.0)]).await.unwrap(),
        200
    );
    want.insert("a".to_string(), 1.0);

    let old = c.leader().await;
    c.procs[&old].freeze();
    let others: Vec<String> = c
        .live()
        .into_iter()
        .filter(|id| *id != old)
        .map(|id| c.http[&id].clone())
        .collect();
    let new_http = wait_for(
        "a new leader while the old one hangs",
        CONVERGE_TIMEOUT,
        || {
            let others = others.clone();
            async move {
                let a = leader_of(&others[0]).await?;
                let b = leader_of(&others[1]).await?;
                (a == b && others.contains(&a)).then_some(a)
            }
        },
    )
    .await;
    let new = c.id_of_http(&new_http).unwrap();
    assert_ne!(new, old);
    for i in 0..10 {
        let role = format!("hung-{i}");
        write_retry(&cl, &others, &[(&role, 2.0)]).await;
        want.insert(role, 2.0);
    }

    c.procs[&old].signal(libc::SIGCONT);
    c.converge(&want).await;
    let leader = c.leader().await;
    assert_ne!(leader, old, "the resumed master stepped down");
    let state = get_json(&c.http[&old], "/master/state").await.unwrap();
    assert!(
        state.get("elected_time").is_none(),
        "a follower has no elected_time: {state}"
    );
}

/// Tasks ride through a failover: a task launched before the leader dies ends
/// in the new leader's registry, and a launch committed on the new leader
/// reaches the agent, which resubscribed there on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_survive_a_leader_failover() {
    use serde_json::json;
    let mut c = Cluster::start(&[]).await;
    let masters = c.http.values().cloned().collect::<Vec<_>>().join(",");
    let work = c.dir.path().join("agent");
    let _agent = spawn_agent(
        "agent",
        &agent_args(&masters, &c.ip, &work, &[]),
        &c.dir.path().join("agent.log"),
    );
    let _reaper = {
        let any = c.http[&1].clone();
        state_where(&any, "the agent registered", |s| s["activated_slaves"] == 1).await;
        TaskReaper::new(&work)
    };
    let launch = |http: String, id: &'static str, cmd: &'static str| async move {
        let state = get_json(&http, "/master/state").await.unwrap();
        let agent = state["slaves"][0]["id"].clone();
        let task = json!({"task_id": id, "agent_id": agent, "cpus": 0.1, "mem": 16,
                          "command": {"value": cmd}});
        let r = launch_tasks(&http, json!([task])).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    };
    let state_of = |http: String, id: &'static str| async move {
        let tasks = get_json(&http, "/master/tasks").await?;
        let task = tasks["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["id"] == id)?
            .clone();
        task["state"].as_str().map(String::from)
    };
    let leader = c.leader().await;
    // Long enough to be seen running on a slow machine, short enough to end
    // under the next leader.
    launch(c.http[&leader].clone(), "before", "sleep 8").await;
    let h = c.http[&leader].clone();
    wait_for("the first task running", CONVERGE_TIMEOUT, || {
        let h = h.clone();
        async move { (state_of(h, "before").await? == "TASK_RUNNING").then_some(()) }
    })
    .await;

    c.kill9(leader);
    let new_leader = c.leader().await;
    let h = c.http[&new_leader].clone();
    launch(h.clone(), "after", "true").await;
    for (id, end) in [("before", "TASK_FINISHED"), ("after", "TASK_FINISHED")] {
        wait_for(
            &format!("{id} ended on the new leader"),
            CONVERGE_TIMEOUT,
            || {
                let h = h.clone();
                async move { (state_of(h, id).await? == end).then_some(()) }
            },
        )
        .await;
    }
}
