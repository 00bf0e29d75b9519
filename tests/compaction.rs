//! Snapshots and log compaction, in process: a master that compacts every few
//! entries restarts from its snapshot, a member that fell behind the
//! compaction point catches up by receiving the leader's snapshot, and a
//! snapshot file an earlier version wrote still loads.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use meso::config::{Extra, NodeFlags, Settings};
use meso::master::command::Command;
use meso::master::raft::storage::RaftStore;
use meso::model::WeightInfo;
use meso::node::{self, Node};
use raft::Storage;

fn settings(dir: &Path, id: u64) -> Settings {
    let cfg = dir.join(format!("meso-{id}.yaml"));
    std::fs::write(
        &cfg,
        "raft:\n  tick_ms: 10\n  snapshot_every: 5\nlog: warn\n",
    )
    .unwrap();
    let flags = NodeFlags {
        config: Some(cfg),
        data_dir: Some(dir.join(format!("master-{id}"))),
        http: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let mut s = Settings::resolve(&flags, Extra::default()).unwrap();
    s.id = Some(id);
    s.raft_addr = "127.0.0.1:0".into();
    s
}

fn weight(role: &str) -> Command {
    Command::UpdateWeights {
        weights: vec![WeightInfo {
            role: role.into(),
            weight: 1.0,
        }],
    }
}

/// Writes through whichever node leads (the in-process API has no forwarding).
async fn write(nodes: &[&Node], role: &str) {
    for _ in 0..200 {
        for node in nodes {
            let master = node.master.as_ref().unwrap();
            if master.status().is_leader && master.raft.propose(weight(role)).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("write {role} never committed");
}

async fn wait_for_roles(node: &Node, n: usize) {
    // Catching up by snapshot is several fsyncs: generous on a slow disk.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if node.master.as_ref().unwrap().registry().weights.len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let have = node.master.as_ref().unwrap().registry().weights.len();
    panic!("expected {n} roles, the node has {have}");
}

async fn start(s: Settings, peers: Option<BTreeMap<u64, String>>) -> Node {
    node::bind(s).await.unwrap().start(peers).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarts_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(settings(dir.path(), 1), None).await;
    let master = node.master.clone().unwrap();
    master.ready(Duration::from_secs(5)).await.unwrap();
    // Compaction runs beside the writes, one snapshot at a time, so on a slow
    // disk it lags them: write until a snapshot past index 10 is on disk.
    let data_dir = dir.path().join("master-1");
    let mut roles = 0;
    while roles < 23 || newest_snapshot(&data_dir) <= 10 {
        assert!(
            roles < 2_000,
            "no snapshot past index 10 after {roles} writes"
        );
        write(&[&node], &format!("role-{roles}")).await;
        roles += 1;
    }
    node.shutdown().await;
    drop(master);

    let store = RaftStore::open(&data_dir, None).unwrap();
    let first = store.first_index().unwrap();
    assert!(first > 10, "the log was compacted (first index {first})");
    // The snapshot is a file beside the store, the only one: older ones went.
    let files: Vec<String> = std::fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot-"))
        .collect();
    assert_eq!(
        files,
        vec![format!("snapshot-{:020}.bin", first - 1)],
        "snapshot files in {}",
        data_dir.display()
    );
    assert!(store.snapshot_ref().get_data().is_empty());
    let snapshot = store.read_snapshot().unwrap();
    let registry = meso::master::registry::Registry::from_snapshot(snapshot.get_data()).unwrap();
    assert_eq!(registry.applied_index, first - 1);
    drop(store);

    let node = start(settings(dir.path(), 1), None).await;
    wait_for_roles(&node, roles).await;
    node.shutdown().await;
}

/// The index of the newest snapshot file in a master's data dir, 0 for none.
fn newest_snapshot(data_dir: &Path) -> u64 {
    std::fs::read_dir(data_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_prefix("snapshot-")?
                        .strip_suffix(".bin")?
                        .parse()
                        .ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_member_catches_up_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut bound = Vec::new();
    for id in 1..=3 {
        bound.push(node::bind(settings(dir.path(), id)).await.unwrap());
    }
    let peers: BTreeMap<u64, String> = bound
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u64 + 1, b.raft_addr.unwrap().to_string()))
        .collect();
    let mut nodes = Vec::new();
    for b in bound {
        nodes.push(b.start(Some(peers.clone())).await.unwrap());
    }
    let first = nodes[0].master.clone().unwrap();
    first.ready(Duration::from_secs(5)).await.unwrap();

    // Stop master 3, write until every live log is compacted past what it
    // has (compaction runs beside the writes and may lag them), then bring
    // it back: the entries it misses are gone, so only a snapshot helps.
    let third = nodes.pop().unwrap();
    let behind = third.master.as_ref().unwrap().status().commit;
    third.shutdown().await;
    let live: Vec<&Node> = nodes.iter().collect();
    let compacted_past = |index: u64| {
        (1..=2).all(|id| newest_snapshot(&dir.path().join(format!("master-{id}"))) > index)
    };
    let mut roles = 0;
    while roles < 40 || !compacted_past(behind + 10) {
        assert!(
            roles < 2_000,
            "the live logs were not compacted after {roles} writes"
        );
        write(&live, &format!("role-{roles}")).await;
        roles += 1;
    }
    let mut s3 = settings(dir.path(), 3);
    s3.raft_addr = peers[&3].clone();
    let third = start(s3, Some(peers.clone())).await;
    wait_for_roles(&third, roles).await;
    third.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

/// `tests/fixtures/snapshot-9da1848.bin` is a snapshot file as `meso up` at
/// 9da1848 wrote it: weights, one agent, a Marathon app of two running
/// instances with a health check and a port, and an app whose tasks
/// finished. A master upgraded in place starts from such a file: a change to
/// the registry's shape must still read it (new fields take defaults), and
/// rebuild what is derived from it.
#[test]
fn a_snapshot_file_of_an_earlier_version_still_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-9da1848.bin");
    let snapshot = meso::master::raft::snapshot_file::read(&path).unwrap();
    assert_eq!(snapshot.get_metadata().index, 31);
    let registry = meso::master::registry::Registry::from_snapshot(snapshot.get_data())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(registry.applied_index, 31);

    let roles: Vec<&str> = registry.weights.keys().map(String::as_str).collect();
    assert_eq!(roles, ["r1", "r2", "r3", "r4", "r5", "r6", "web"]);
    assert_eq!(registry.weights["web"], 2.0);

    let agent = registry.agents.keys().next().expect("the agent");
    let cluster = registry.cluster_id.as_deref().expect("a cluster id");
    assert_eq!(agent, &format!("{cluster}-S0"));

    let sleeper = registry.marathon.app("/fixture/sleeper").expect("the app");
    assert_eq!(sleeper.instances, 2);
    assert_eq!(sleeper.health_checks.len(), 1);
    assert!(registry.marathon.app("/fixture/done").is_some());

    // The running tasks, and the index of an agent's live tasks rebuilt.
    let running: Vec<&str> = registry
        .tasks
        .values()
        .filter(|t| t.state == meso::model::TaskState::Running)
        .map(|t| t.spec.task_id.as_str())
        .collect();
    let sleepers = running
        .iter()
        .filter(|id| id.starts_with("fixture_sleeper."));
    assert_eq!(sleepers.count(), 2, "{running:?}");
    let mut on_agent: Vec<&str> = registry
        .agent_tasks(agent)
        .map(|t| t.spec.task_id.as_str())
        .collect();
    on_agent.sort_unstable();
    let mut live: Vec<&str> = registry.tasks.keys().map(|id| &**id).collect();
    live.sort_unstable();
    assert_eq!(on_agent, live);
    let finished = registry
        .completed_tasks
        .iter()
        .filter(|t| t.state == meso::model::TaskState::Finished)
        .count();
    assert_eq!(finished, 2, "the done app's runs before the snapshot");

    // What loads writes again and loads the same.
    let again = meso::master::registry::Registry::from_snapshot(&registry.to_snapshot()).unwrap();
    assert_eq!(again, registry);
}
