//! The master role: the Raft-replicated registry that replaces ZooKeeper and the
//! Mesos master's own registrar.
//!
//! ```text
//!   HTTP (api/) ──write──▶ leader? ──no──▶ forwarded to the leader's HTTP address
//!                              │yes
//!                              ▼
//!                   RaftHandle::propose(Command)
//!                              │
//!   raft/ driver ── Ready ─▶ storage (one durable write) ─▶ peers (raft/transport)
//!                              │ committed on a quorum
//!                              ▼
//!                  Registry::apply (every master) ─▶ Change bus ─▶ roles, events
//! ```
//!
//! Boot ([`Master::start`]): open the store, then bootstrap a new cluster from
//! `--peers`, join a running one (`--join`: the leader adds us with ConfChangeV2
//! and catches us up by snapshot), or resume what the store holds. Once a leader
//! is known, every member announces its addresses through the log, so any node
//! can name (and forward to) the leader.

mod agents;
pub mod command;
mod endpoints;
pub mod files;
mod join;
mod members;
mod operator;
pub mod raft;
pub mod registry;
mod status_batch;
mod tasks;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::model::Member;
use command::Command;
use raft::storage::{RaftStore, STORE_FILE};
use raft::transport::{self, Transport};
use raft::{Driver, DriverParts, RaftHandle, RaftOptions, RaftStatus};
use registry::{Change, PublishedRegistry, Registry};

pub use agents::{AgentTimers, now_secs};
pub use endpoints::{MESOS_API_VERSION, read_router, write_router};
pub use tasks::task_json;

/// What a master needs to start; the node fills it from the configuration.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    /// None: read back from the store (a restart) or assigned by the leader (a join).
    pub id: Option<u64>,
    pub data_dir: PathBuf,
    /// Raft addresses by id, from `--peers`; empty means "as the store knows".
    pub peers: BTreeMap<u64, String>,
    /// HTTP address of any member of a running cluster to join.
    pub join: Option<String>,
    pub raft: RaftOptions,
    pub cluster_name: String,
    pub hostname: String,
    /// Where peers and clients reach this master.
    pub advertise_raft: String,
    pub advertise_http: String,
    /// Campaign at start (`meso up` asks it of its first master).
    pub campaign_now: bool,
    pub agent_timers: AgentTimers,
}

pub struct Master {
    pub id: u64,
    pub raft: RaftHandle,
    registry: PublishedRegistry,
    changes: broadcast::Sender<Change>,
    pub cluster_name: String,
    pub hostname: String,
    pub advertise_http: String,
    pub advertise_raft: String,
    /// Mesos gives every master process a fresh id; so do we.
    pub run_id: String,
    pub start_time: SystemTime,
    driver: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    pub agent_timers: AgentTimers,
    liveness: agents::Liveness,
    streams: agents::Streams,
    statuses: status_batch::StatusBatcher,
    shutdown: CancellationToken,
}

impl Master {
    /// Opens storage, forms or joins the cluster and starts the Raft driver. The
    /// raft listener is bound by the caller, so a port clash is reported before
    /// anything else happens.
    pub async fn start(
        opts: MasterOptions,
        raft_listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let store_exists = opts.data_dir.join(STORE_FILE).exists();
        let (store, join_peers) = match (&opts.join, store_exists) {
            (Some(seed), false) => {
                let me = Member {
                    id: opts.id.unwrap_or(0),
                    raft_addr: opts.advertise_raft.clone(),
                    http_addr: Some(opts.advertise_http.clone()),
                    hostname: Some(opts.hostname.clone()),
                };
                // Check the data dir before asking the cluster to count us in.
                join::check_data_dir(&opts.data_dir)?;
                let answer = join::request(seed, &me).await?;
                let store = RaftStore::open(&opts.data_dir, Some(answer.id))?;
                (store, answer.members)
            }
            _ => {
                // Everything that can refuse the start is checked before the
                // store is opened for writing, so a refused start changes nothing.
                // (A store left unclean by kill -9 can be read only once
                // repaired; then the id comes from it and the checks follow.)
                let info = raft::storage::inspect(&opts.data_dir)?;
                let id = match (opts.id, &info) {
                    (Some(id), _) => Some(id),
                    (None, Some(info)) => Some(info.node_id),
                    (None, None) if store_exists => None,
                    (None, None) => Some(1),
                };
                if let Some(id) = id {
                    check_peers(&opts, id, info.as_ref().map(|i| i.voters.as_slice()))?;
                }
                let mut store = RaftStore::open(&opts.data_dir, id)?;
                prepare_static(&mut store, &opts)?;
                // A joined master restarting (perhaps on new ports, perhaps
                // before its first snapshot arrived, so knowing no peer) greets
                // the members its seed lists: their transports learn our new
                // address from the hello, and the leader can reach us again.
                let peers = match &opts.join {
                    Some(seed) => join::members(seed).await.unwrap_or_else(|e| {
                        tracing::warn!(%seed, error = %format!("{e:#}"), "cannot list the members; waiting for the leader");
                        Vec::new()
                    }),
                    None => Vec::new(),
                };
                (store, peers)
            }
        };
        let id = store.node_id();

        let registry = PublishedRegistry::default();
        let (changes, _) = broadcast::channel(4096);
        let (reports_tx, snapshot_reports) = mpsc::unbounded_channel();
        let transport = Transport::new(
            transport::spawn_runtime(id, shutdown.clone())?,
            id,
            opts.advertise_raft.clone(),
            reports_tx,
            shutdown.clone(),
        );
        let (inbox_tx, inbox_rx) = mpsc::channel(8192);
        let (driver, handle) = Driver::new(DriverParts {
            id,
            store,
            registry: registry.clone(),
            changes: changes.clone(),
            transport: transport.clone(),
            inbox: inbox_rx,
            options: opts.raft.clone(),
            snapshot_reports,
            campaign_now: opts.campaign_now || opts.peers.len() <= 1 && opts.join.is_none(),
        })?;
        for (peer, addr) in &opts.peers {
            transport.pin_peer(*peer, addr);
        }
        for m in &join_peers {
            transport.set_peer(m.id, &m.raft_addr);
        }
        transport::serve(transport.clone(), raft_listener, inbox_tx, shutdown.clone())?;
        let driver = spawn_driver(id, driver, shutdown.clone())?;

        let master = Arc::new(Self {
            id,
            raft: handle.clone(),
            registry,
            changes,
            cluster_name: opts.cluster_name.clone(),
            hostname: opts.hostname.clone(),
            advertise_http: opts.advertise_http.clone(),
            advertise_raft: opts.advertise_raft.clone(),
            run_id: uuid::Uuid::new_v4().to_string(),
            start_time: SystemTime::now(),
            driver: std::sync::Mutex::new(Some(driver)),
            agent_timers: opts.agent_timers,
            liveness: agents::Liveness::default(),
            streams: agents::Streams::default(),
            statuses: status_batch::StatusBatcher::start(handle.clone()),
            shutdown: shutdown.clone(),
        });
        tokio::spawn(agents::liveness_loop(master.clone(), shutdown.clone()));
        tokio::spawn(tasks::relaunch_loop(master.clone(), shutdown.clone()));
        tokio::spawn(announce_loop(master.clone(), shutdown));
        Ok(master)
    }

    /// Waits for the Raft driver to finish after shutdown, so the store is
    /// closed cleanly before the process exits.
    pub async fn stopped(&self) {
        let task = self.driver.lock().expect("driver lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The registry as last applied; holding it blocks nobody.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.current()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    pub fn status(&self) -> RaftStatus {
        self.raft.status()
    }

    /// The leader's HTTP address, once the leader has announced it.
    pub fn leader_http(&self) -> Option<String> {
        let leader = self.status().leader?;
        if leader == self.id {
            return Some(self.advertise_http.clone());
        }
        self.registry().members.get(&leader)?.http_addr.clone()
    }

    fn me(&self) -> Member {
        Member {
            id: self.id,
            raft_addr: self.advertise_raft.clone(),
            http_addr: Some(self.advertise_http.clone()),
            hostname: Some(self.hostname.clone()),
        }
    }

    /// Waits until a leader is elected, the cluster has its id and the leader's
    /// address is known: the moment clients can use the cluster.
    pub async fn ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let mut status = self.raft.watch();
        let mut changes = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.leader_http().is_some() && self.registry().cluster_id.is_some() {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    let s = self.status();
                    match s.leader {
                        None => bail!("master {} saw no leader within {timeout:?} (voters {:?})", self.id, s.voters),
                        Some(l) => bail!("master {} sees leader {l} but not its address within {timeout:?}", self.id),
                    }
                }
                _ = status.changed() => {}
                _ = changes.recv() => {}
            }
        }
    }
}

/// The driver runs on a thread of its own (a one-thread runtime): it blocks on
/// an fsync every Ready, and on its own thread that costs no other task
/// anything, where `block_in_place` on the node's runtime handed the worker's
/// queue to another thread at every write (the profile showed the switches).
fn spawn_driver(
    id: u64,
    driver: Driver,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("raft-{id}"))
        .spawn(move || {
            runtime.block_on(driver.run(shutdown));
            let _ = done_tx.send(());
        })?;
    Ok(done_rx)
}

/// Checks a static (`--peers`) start: the peers must name this master, and, on
/// a store that holds a membership, name exactly its voters.
fn check_peers(opts: &MasterOptions, id: u64, stored: Option<&[u64]>) -> anyhow::Result<()> {
    if opts.peers.is_empty() || opts.join.is_some() {
        return Ok(());
    }
    let given: Vec<u64> = opts.peers.keys().copied().collect();
    match stored {
        Some(stored) if !stored.is_empty() && given != stored => bail!(
            "--peers names masters {} but the store in {} holds membership {}; pass the stored membership or omit --peers",
            list(&given),
            opts.data_dir.display(),
            list(stored)
        ),
        Some(stored) if !stored.is_empty() => Ok(()),
        _ if !given.contains(&id) => bail!(
            "--peers names masters {} but not this master's id {id}",
            list(&given)
        ),
        _ => Ok(()),
    }
}

/// Bootstraps a new store from `--peers` (or as a lone master), and checks a
/// store that could only be read once repaired against them.
fn prepare_static(store: &mut RaftStore, opts: &MasterOptions) -> anyhow::Result<()> {
    let id = store.node_id();
    if !raft::is_new(store) {
        return check_peers(opts, id, Some(&raft::stored_voters(store)));
    }
    if opts.join.is_some() {
        return Ok(());
    }
    let mut voters: Vec<u64> = opts.peers.keys().copied().collect();
    if voters.is_empty() {
        voters.push(id);
    }
    check_peers(opts, id, None)?;
    store.bootstrap(voters)
}

fn list(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Keeps the registry's record of this master and of the cluster's identity
/// true: after every leader change, announce ourselves if the record is stale,
/// and, as the first leader of a new cluster, give it its id.
///
/// Looked at again on every change of leader or voters, and once a second
/// for a record gone stale otherwise (a snapshot installed, a proposal
/// lost). It listened to the registry's changes before: every task's change
/// woke it for nothing, a few percent of each master's CPU in a
/// 10,000-agent deployment.
async fn announce_loop(master: Arc<Master>, shutdown: CancellationToken) {
    let mut status = master.raft.watch();
    loop {
        let s = master.status();
        if s.leader.is_some() && !s.removed {
            if s.is_leader && master.registry().cluster_id.is_none() {
                let cluster_id = uuid::Uuid::new_v4().to_string();
                if let Err(e) = master
                    .raft
                    .propose(Command::InitCluster { cluster_id })
                    .await
                {
                    tracing::debug!(error = %e, "cluster id not recorded yet");
                }
            }
            let me = master.me();
            let known = master.registry().members.get(&master.id) == Some(&me);
            let voter = s.voters.contains(&master.id);
            if !known
                && voter
                && let Err(e) = master
                    .raft
                    .propose(Command::AnnounceMember { member: me })
                    .await
            {
                tracing::debug!(error = %e, "address not announced yet");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                continue;
            }
        }
        // Until leadership or the voters move (commits alone change nothing
        // here), or the recheck is due.
        let recheck = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(recheck);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                () = &mut recheck => break,
                r = status.changed() => {
                    if r.is_err() { return }
                    let now = status.borrow_and_update();
                    if (now.leader, now.is_leader, &now.voters) != (s.leader, s.is_leader, &s.voters) {
                        break;
                    }
                }
            }
        }
    }
}
