//! Growing and shrinking a running cluster: join a fourth master with
//! `meso master --join`, then remove it with `meso members remove`, while a
//! client keeps writing; every acknowledged write is on every member after.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A client writing `bg-N` roles one after another until told to stop.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, f64>>>,
    failures: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(addrs: Vec<String>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let failures = Arc::new(AtomicU32::new(0));
        let (s, a, f) = (stop.clone(), acked.clone(), failures.clone());
        let task = tokio::spawn(async move {
            let cl = client();
            let mut n = 0u32;
            while !s.load(Ordering::Relaxed) {
                let role = format!("bg-{n:05}");
                let w = 1.0 + n as f64;
                f.fetch_add(
                    write_retry(&cl, &addrs, &[(&role, w)]).await,
                    Ordering::Relaxed,
                );
                a.lock().unwrap().insert(role, w);
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Writer {
            stop,
            acked,
            failures,
            task,
        }
    }

    fn acked(&self) -> BTreeMap<String, f64> {
        self.acked.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    async fn wait_more(&self, n: usize) {
        let target = self.count() + n;
        wait_for(
            "the background writer to make progress",
            CONVERGE_TIMEOUT,
            || async { (self.count() >= target).then_some(()) },
        )
        .await;
    }

    async fn finish(self) -> (BTreeMap<String, f64>, u32) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the writer panicked");
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.failures.load(Ordering::Relaxed))
    }
}

fn join_args(ip: &str, seed: &str, data: &Path) -> Vec<String> {
    join_args_on(&format!("{ip}:0"), &format!("{ip}:0"), seed, data)
}

fn join_args_on(http: &str, raft: &str, seed: &str, data: &Path) -> Vec<String> {
    vec![
        "master".into(),
        "--preset".into(),
        "ci".into(),
        "--join".into(),
        seed.into(),
        "--http".into(),
        http.into(),
        "--raft".into(),
        raft.into(),
        "--data-dir".into(),
        data.display().to_string(),
    ]
}

async fn members(addr: &str) -> Vec<Value> {
    get_json(addr, "/master/members")
        .await
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Waits until `addr` lists exactly the voters `ids`.
async fn wait_voters(addr: &str, ids: &[u64]) -> Vec<Value> {
    let mut want = ids.to_vec();
    want.sort_unstable();
    let last = Mutex::new(Vec::new());
    let found = tokio::time::timeout(CONVERGE_TIMEOUT, async {
        loop {
            let ms = members(addr).await;
            let mut voters: Vec<u64> = ms
                .iter()
                .filter(|m| m["voter"] == true)
                .filter_map(|m| m["id"].as_u64())
                .collect();
            voters.sort_unstable();
            if voters == want && ms.len() == want.len() {
                return ms;
            }
            *last.lock().unwrap() = ms;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match found {
        Ok(ms) => ms,
        Err(_) => panic!(
            "{addr} did not list exactly the voters {ids:?}; last /master/members: {}",
            serde_json::to_string(&*last.lock().unwrap()).unwrap()
        ),
    }
}

/// Waits until `addr` holds at least every weight in `want`.
async fn wait_superset(addr: &str, want: &BTreeMap<String, f64>) {
    let mut last = BTreeMap::new();
    let ok = tokio::time::timeout(CONVERGE_TIMEOUT, async {
        loop {
            if let Some(w) = read_weights(addr).await {
                if want.iter().all(|(r, v)| w.get(r) == Some(v)) {
                    return;
                }
                last = w;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if ok.is_err() {
        let missing: Vec<_> = want
            .keys()
            .filter(|r| !last.contains_key(*r))
            .take(10)
            .collect();
        panic!("{addr} lacks replicated weights, e.g. {missing:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_a_fourth_master_then_remove_it_while_serving() {
    let mut c = Cluster::start(&[]).await;
    let cl = client();
    let originals: Vec<String> = c.http.values().cloned().collect();
    let writer = Writer::start(originals.clone());
    writer.wait_more(20).await;

    // Join through a follower: the join request is forwarded to the leader.
    let leader = c.leader().await;
    let seed_id = (1..=3).find(|id| *id != leader).unwrap();
    let dir4 = c.dir.path().join("master-4");
    let args4 = join_args_on(
        &format!("{}:{}", c.ip, c.base + 6),
        &format!("{}:{}", c.ip, c.base + 7),
        &c.http[&seed_id],
        &dir4,
    );
    let mut four = spawn_master("master 4 (joined)", &args4, &c.dir.path().join("log-4.txt"));
    let id4 = four.id.expect("the joiner prints its id");
    assert!(id4 > 3, "the leader assigns a new id, got {id4}");
    assert_ne!(four.http, originals[0]);

    for h in originals.iter().chain([&four.http]) {
        let ms = wait_voters(h, &[1, 2, 3, id4]).await;
        let m4 = ms.iter().find(|m| m["id"] == id4).unwrap();
        assert_eq!(m4["http_addr"], four.http.as_str(), "{ms:?}");
        assert_eq!(m4["raft_addr"], four.raft.as_deref().unwrap(), "{ms:?}");
    }
    // It serves the replicated state, and knows the leader.
    writer.wait_more(20).await;
    wait_superset(&four.http, &writer.acked()).await;
    assert_eq!(
        leader_of(&four.http).await.as_deref(),
        Some(c.http[&leader].as_str())
    );
    let health = get(&four.http, "/master/health").await.unwrap();
    assert_eq!(health.status(), 200);
    // A write sent to it is forwarded to the leader.
    assert_eq!(
        put_weights(&cl, &four.http, &[("via-four", 4.0)])
            .await
            .unwrap(),
        200
    );

    // A joined master restarts from its own store (the --join flag is moot then).
    four.kill9();
    writer.wait_more(10).await;
    let mut four = spawn_master(
        "master 4 (restarted)",
        &args4,
        &c.dir.path().join("log-4b.txt"),
    );
    assert_eq!(four.id, Some(id4), "the restarted joiner keeps its id");
    writer.wait_more(10).await;
    wait_superset(&four.http, &writer.acked()).await;
    wait_voters(&four.http, &[1, 2, 3, id4]).await;

    // The CLI sees four masters.
    let list = run(
        &["members", "list", "--master", &c.http[&1], "--json"],
        Duration::from_secs(20),
    );
    assert_eq!(list.code(), Some(0), "{list:?}");
    let listed: Value =
        serde_json::from_str(&list.stdout).expect("members list --json prints JSON");
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
    let table = run(
        &["members", "list", "--master", &c.http[&1]],
        Duration::from_secs(20),
    );
    assert_eq!(table.code(), Some(0), "{table:?}");
    assert_eq!(
        table.stdout.lines().count(),
        5,
        "a header and four masters:\n{}",
        table.stdout
    );
    assert_eq!(
        table.stdout.matches("leader").count(),
        1,
        "{}",
        table.stdout
    );

    // Remove it (still running) through the CLI, asking a follower.
    writer.wait_more(10).await;
    let out = run(
        &[
            "members",
            "remove",
            &id4.to_string(),
            "--master",
            &c.http[&seed_id],
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), Some(0), "members remove: {out:?}");
    assert!(
        out.stdout.contains(&format!("removed master {id4}")),
        "{out:?}"
    );
    for h in &originals {
        wait_voters(h, &[1, 2, 3]).await;
    }
    writer.wait_more(20).await;
    four.kill9();
    writer.wait_more(20).await;

    // Removing it again is refused (it is no member), and so is a bad id.
    let again = run(
        &[
            "members",
            "remove",
            &id4.to_string(),
            "--master",
            &c.http[&1],
        ],
        Duration::from_secs(20),
    );
    assert_ne!(again.code(), Some(0), "{again:?}");
    assert!(again.stderr.starts_with("error:"), "{again:?}");
    let r = cl
        .delete(url(&c.http[&1], "/master/members/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let (acked, failures) = writer.finish().await;
    eprintln!(
        "{} writes acknowledged, {failures} attempts retried",
        acked.len()
    );
    let mut want = acked;
    want.insert("via-four".into(), 4.0);
    c.converge(&want).await;
    // Still a working three-master cluster: a leader kill is survived.
    let l = c.leader().await;
    c.kill9(l);
    let live = c.live_http();
    write_retry(&cl, &live, &[("end", 1.0)]).await;
}

/// The main use of removal: a master that died for good is removed, and the
/// cluster goes on; another master can join after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_a_dead_master_and_join_another() {
    let (id4, id5) = remove_dead_then_join().await;
    eprintln!("removed master {id4}, then a new master joined as {id5}");
}

/// Raft ids are never reused (etcd/raft: "a node ID must not be reused"): a
/// removed master that still runs, or its messages still in flight, would
/// otherwise pass for the newcomer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_masters_id_is_not_given_to_a_new_master() {
    let (id4, id5) = remove_dead_then_join().await;
    assert_ne!(
        id5, id4,
        "the id of removed master {id4} was given to a new master"
    );
}

async fn remove_dead_then_join() -> (u64, u64) {
    let c = Cluster::start(&[]).await;
    let originals: Vec<String> = c.http.values().cloned().collect();
    let writer = Writer::start(originals.clone());

    let dir4 = c.dir.path().join("master-4");
    let mut four = spawn_master(
        "master 4 (joined)",
        &join_args(&c.ip, &c.http[&1], &dir4),
        &c.dir.path().join("log-4.txt"),
    );
    let id4 = four.id.unwrap();
    wait_voters(&c.http[&1], &[1, 2, 3, id4]).await;
    writer.wait_more(10).await;
    four.kill9();
    // Four voters, one dead: a quorum of three still commits.
    writer.wait_more(20).await;
    let out = run(
        &[
            "members",
            "remove",
            &id4.to_string(),
            "--master",
            &c.http[&2],
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        out.code(),
        Some(0),
        "members remove of a dead master: {out:?}"
    );
    for h in &originals {
        wait_voters(h, &[1, 2, 3]).await;
    }
    writer.wait_more(20).await;

    let dir5 = c.dir.path().join("master-5");
    let five = spawn_master(
        "master 5 (joined)",
        &join_args(&c.ip, &c.http[&3], &dir5),
        &c.dir.path().join("log-5.txt"),
    );
    let id5 = five.id.unwrap();
    wait_voters(&c.http[&1], &[1, 2, 3, id5]).await;
    writer.wait_more(20).await;
    let (acked, _) = writer.finish().await;
    wait_superset(&five.http, &acked).await;
    c.converge(&acked).await;
    (id4, id5)
}

/// A joined master on free ports that is killed and restarted gets new ports;
/// its peers learn the new Raft address from its hello, it hears from the
/// leader again, and it announces the new addresses through the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_master_restarted_on_new_ports_rejoins() {
    let c = Cluster::start(&[]).await;
    let originals: Vec<String> = c.http.values().cloned().collect();
    let writer = Writer::start(originals.clone());
    let dir4 = c.dir.path().join("master-4");
    let args = join_args(&c.ip, &c.http[&1], &dir4);
    let mut four = spawn_master("master 4", &args, &c.dir.path().join("log-4a.txt"));
    let id4 = four.id.unwrap();
    let old_raft = four.raft.clone().unwrap();
    wait_voters(&c.http[&1], &[1, 2, 3, id4]).await;
    four.kill9();
    writer.wait_more(10).await;

    let four = spawn_master("master 4 again", &args, &c.dir.path().join("log-4b.txt"));
    assert_eq!(four.id, Some(id4), "the restart keeps its id");
    let new_raft = four.raft.clone().unwrap();
    assert_ne!(new_raft, old_raft, "port 0 gave a new Raft port");
    wait_for(
        "the cluster to record master 4's new address",
        CONVERGE_TIMEOUT,
        || {
            let (seed, new_raft) = (c.http[&2].clone(), new_raft.clone());
            async move {
                let ms = members(&seed).await;
                ms.iter()
                    .any(|m| m["id"].as_u64() == Some(id4) && m["raft_addr"] == new_raft.as_str())
                    .then_some(())
            }
        },
    )
    .await;
    writer.wait_more(10).await;
    let (acked, _) = writer.finish().await;
    wait_superset(&four.http, &acked).await;
}
