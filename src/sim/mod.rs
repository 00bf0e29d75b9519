//! Simulated agents: many agents in one process that speak the real agent
//! protocol and run nothing, as kwok does for Kubernetes, so that masters
//! and the scheduler carry the load of a large cluster on one machine
//! (`meso sim`, `scripts/bench/scale.sh`).
//!
//! ```text
//!  meso sim --agents N ──▶ Fleet::start ──▶ N × agent::run  (sim-1 … sim-N)
//!     each agent:  session task ── SUBSCRIBE ─▶ leader ◀─ LAUNCH/KILL/HEARTBEAT stream
//!                                 └ HEARTBEAT an interval after the last accepted call
//!                  updates task ── UPDATE (STARTING, RUNNING, … KILLED) ─▶ 202
//!                  end timers   ── fate.rs: `true` ends at once, `sleep 5` after 5 s
//!     every agent ─▶ stats.rs (atomics) ─▶ the progress line, `--json` lines
//! ```
//!
//! To the masters each simulated agent is an agent like any other: its own
//! key (`meso-sim-<prefix>-<n>`, so a restarted fleet gets its agent ids
//! back), hostname (`<prefix>-<n>`), address (`--first-ip` onwards, port
//! 5051; nothing listens there, so `/files` of a simulated task fails) and
//! the resources and attributes given.
//!
//! **Connections: one HTTP/1.1 stream per agent.** The master serves the
//! agent protocol over HTTP/1.1 only (axum without its `http2` feature), and
//! an event stream holds its connection for as long as it lives, so N agents
//! hold N connections to the leader; HEARTBEAT and UPDATE calls share a pool
//! of kept-alive connections beside them (its size is the number of calls in
//! flight at once, a few dozen). Multiplexing the streams over HTTP/2 would
//! save the sockets but not the per-stream work, would make the simulation
//! speak something no real agent speaks, and hides the cost a real cluster of
//! that size puts on its leader. So 10,000 agents are ~10,000 sockets on each
//! side of loopback: every meso command raises its soft open-file limit to
//! the hard one at start (`cli::raise_open_file_limit`), and against masters
//! on loopback every thousand agents connect from a source address of their
//! own, so that no source address runs short of ephemeral ports
//! (sources.rs). A SUBSCRIBE waits for a slot (`--subscribe-concurrency`,
//! 256 by default), so a fleet starting or finding a new leader does not
//! overflow the leader's accept queue.
//!
//! **Cheap by construction.** An agent is two tokio tasks (session and
//! updates), a small map of its tasks and its queue of statuses; a LAUNCH is
//! parsed into the few fields the simulation reads (`task_id`, the command,
//! whether there are checks), not into a `TaskSpec`; a heartbeat's body is
//! made once per subscription; statuses go out batched (up to 512 per
//! UPDATE, as the real agent sends them). Ended tasks are forgotten once
//! their end is committed.

mod agent;
pub mod fate;
mod sources;
mod stats;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use stats::Snapshot;

use crate::api::base_url;
use crate::model::Resources;

/// What to simulate, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// Master addresses (`host:port` or URLs); agents spread their first
    /// subscriptions over them and follow the 307s to the leader.
    pub masters: Vec<String>,
    pub agents: usize,
    /// Hostnames are `<prefix>-1` … `<prefix>-N`; keys `meso-sim-<prefix>-<n>`.
    pub prefix: String,
    /// Agent n (from 1) advertises `first_ip + n - 1`, port 5051.
    pub first_ip: Ipv4Addr,
    pub resources: Resources,
    pub attributes: BTreeMap<String, String>,
    /// How long tasks whose command would not end run before TASK_FINISHED;
    /// `None`: until killed.
    pub task_duration: Option<Duration>,
    /// SUBSCRIBE calls in flight at once.
    pub subscribe_concurrency: usize,
}

/// Resources a simulated agent offers by default: a large machine.
pub const DEFAULT_RESOURCES: &str = "cpus:32;mem:131072;disk:1048576;ports:[31000-32000]";

/// A running fleet of simulated agents.
pub struct Fleet {
    shared: Arc<agent::Shared>,
    agents: JoinSet<()>,
    count: usize,
}

impl Fleet {
    /// Starts every agent (within a tokio runtime); they subscribe on their own.
    pub fn start(options: Options) -> anyhow::Result<Fleet> {
        if options.masters.is_empty() {
            bail!("no master address given");
        }
        if options.agents == 0 {
            bail!("agents: must be at least 1");
        }
        if options.prefix.is_empty() || options.prefix.contains(char::is_whitespace) {
            bail!("prefix: must be a non-empty word");
        }
        let first = u32::from(options.first_ip);
        u32::try_from(options.agents)
            .ok()
            .and_then(|n| first.checked_add(n))
            .with_context(|| {
                format!(
                    "first-ip: {} + {} agents runs past 255.255.255.255",
                    options.first_ip, options.agents
                )
            })?;
        let clients = sources::clients(&options.masters, options.agents)?;
        let shared = Arc::new(agent::Shared {
            masters: options
                .masters
                .iter()
                .map(|m| format!("{}/api/v1/agent", base_url(m)))
                .collect(),
            resources: options.resources,
            attributes: options.attributes,
            task_duration: options.task_duration,
            stats: stats::Stats::default(),
            subscribe_slots: Semaphore::new(options.subscribe_concurrency.max(1)),
            shutdown: CancellationToken::new(),
        });
        let mut agents = JoinSet::new();
        for n in 1..=options.agents {
            let ip = Ipv4Addr::from(first + (n as u32 - 1));
            let me = agent::Identity {
                key: format!("meso-sim-{}-{n}", options.prefix),
                hostname: format!("{}-{n}", options.prefix),
                addr: format!("{ip}:5051"),
            };
            // Agent n calls through the n-th client, round the list (sources.rs).
            let client = clients[(n - 1) % clients.len()].clone();
            agents.spawn(agent::run(shared.clone(), me, n - 1, client));
        }
        Ok(Fleet {
            shared,
            agents,
            count: options.agents,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn stats(&self) -> Snapshot {
        self.shared.stats.snapshot()
    }

    /// Stops every agent. Their streams close; the masters mark them
    /// unreachable once their timeout passes, as for agents that died.
    pub async fn stop(mut self) {
        self.shared.shutdown.cancel();
        while self.agents.join_next().await.is_some() {}
    }
}
