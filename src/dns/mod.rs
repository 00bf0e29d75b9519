//! The DNS role: Mesos-DNS's names, answered on every master from its own
//! applied registry and changed the moment the registry changes.
//!
//! ```text
//!  registry.apply ─▶ Change bus ─▶ updater (this file): the task's records
//!  raft status watch (leader) ─┘     rebuilt (records.rs), or the cluster's
//!                                    (masters, agents, leader); a lagging
//!                                    bus: everything rebuilt
//!                                        │ write lock, per owner (zone.rs)
//!                                        ▼
//!  client ─UDP─▶ a thread per socket (udp.rs) ─┐
//!         ─TCP─▶ hickory Server (DNS runtime) ──┴▶ handler.rs: read lock,
//!                                                 answer, or forward (forward.rs)
//! ```
//!
//! Mesos-DNS's HTTP API (`/v1/...`, http.rs) reads the same zone, on the
//! node's HTTP port.
//!
//! UDP is answered on threads of its own, one per socket sharing the port
//! (SO_REUSEPORT: the kernel spreads clients over them), TCP and forwarding
//! on a runtime of their own, so a flood of queries competes with the other
//! roles for CPU only, never for their tasks' turn on the main runtime; the
//! zone is separate from the registry, so queries never hold the registry's
//! lock.

pub mod forward;
pub mod handler;
pub mod http;
pub mod names;
pub mod records;
pub mod settings;
pub mod udp;
pub mod zone;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use self::forward::Forwarder;
use self::records::{Hosts, Leader, Rules};
use self::zone::{Owner, Zone};
use crate::master::Master;
use crate::master::registry::Change;

pub use settings::DnsSettings;

/// A running DNS role.
#[derive(Clone)]
pub struct Dns {
    /// Where it answers (UDP and TCP on the same port).
    pub addr: SocketAddr,
    pub zone: Arc<RwLock<Zone>>,
    pub settings: DnsSettings,
    pub resolvers: Vec<SocketAddr>,
}

/// Upstream exchanges time out after this (Mesos-DNS's default `timeout`).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// A TCP client silent this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The role's sockets, bound before anything starts so that a port clash is
/// reported first.
pub struct Sockets {
    udp: Vec<UdpSocket>,
    tcp: TcpListener,
}

impl Sockets {
    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Binds the role's sockets, if it is on.
pub fn bind(settings: &DnsSettings) -> anyhow::Result<Option<Sockets>> {
    let Some(listen) = settings.listen.as_deref() else {
        return Ok(None);
    };
    let (udp, tcp) = bind_both(listen)?;
    Ok(Some(Sockets { udp, tcp }))
}

/// How many UDP sockets (and threads) share the DNS port: the kernel spreads
/// clients over them (SO_REUSEPORT), so answers use every core.
fn udp_sockets() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// A UDP socket on `addr` that shares its port with the role's others.
fn shared_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds UDP (several sockets on one port) and TCP on one port, a free one
/// when the port is 0.
fn bind_both(listen: &str) -> anyhow::Result<(Vec<UdpSocket>, TcpListener)> {
    let addr: SocketAddr = listen
        .to_socket_addrs()
        .with_context(|| format!("dns: '{listen}' is not HOST:PORT"))?
        .next()
        .with_context(|| format!("dns: '{listen}' resolves to no address"))?;
    // With port 0, UDP picks the port; TCP may find it taken: try again.
    let mut last = None;
    for _ in 0..20 {
        let first =
            shared_udp(addr).with_context(|| format!("cannot listen on {addr} (UDP) for DNS"))?;
        let port = first.local_addr()?.port();
        let at = SocketAddr::new(addr.ip(), port);
        let tcp = match TcpListener::bind(at) {
            Ok(tcp) => tcp,
            Err(e) if addr.port() == 0 => {
                last = Some(e);
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot listen on {addr} (TCP) for DNS"));
            }
        };
        let mut udp = vec![first];
        for _ in 1..udp_sockets() {
            udp.push(shared_udp(at).with_context(|| format!("cannot share {at} (UDP) for DNS"))?);
        }
        return Ok((udp, tcp));
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow::anyhow!("no port")))
    .with_context(|| {
        format!(
            "cannot find a port free for both UDP and TCP on {}",
            addr.ip()
        )
    })
}

/// Starts the role for `master`: the server on its own thread, the updater
/// on this runtime. Both stop with `shutdown`.
pub fn start(
    master: Arc<Master>,
    sockets: Sockets,
    settings: &DnsSettings,
    hostname: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<Dns> {
    let Sockets { udp, tcp } = sockets;
    let addr = tcp.local_addr()?;
    let resolvers = match &settings.resolvers {
        Some(list) => list.clone(),
        None => Forwarder::from_resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            Some(addr),
        ),
    };
    let zone = Arc::new(RwLock::new(Zone::new(&settings.domain, settings.ttl)));
    let handler = handler::Handler {
        zone: zone.clone(),
        forwarder: Forwarder {
            resolvers: resolvers.clone(),
            timeout: UPSTREAM_TIMEOUT,
        },
    };
    tcp.set_nonblocking(true)?;
    let generation = zone.read().unwrap_or_else(|e| e.into_inner()).generation();
    let stop = shutdown.clone();
    std::thread::Builder::new()
        .name("meso-dns".into())
        .spawn(move || serve(handler, udp, generation, tcp, stop))
        .context("cannot start the DNS thread")?;
    let ns_ips = if addr.ip().is_unspecified() {
        (hostname, 0)
            .to_socket_addrs()
            .map(|a| a.map(|a| a.ip()).collect())
            .unwrap_or_default()
    } else {
        vec![addr.ip()]
    };
    let updater = Updater {
        master,
        zone: zone.clone(),
        rules: Rules {
            domain: format!(
                "{}.",
                settings.domain.trim_end_matches('.').to_ascii_lowercase()
            ),
            ip_sources: settings.ip_sources.clone(),
            healthy_only: settings.healthy_only,
            marathon_framework: String::new(),
        },
        hosts: Hosts::new(),
        leader: None,
        ns_ips,
    };
    tokio::spawn(updater.run(shutdown));
    tracing::info!(%addr, domain = %settings.domain, upstreams = resolvers.len(), "DNS listening");
    Ok(Dns {
        addr,
        zone,
        settings: settings.clone(),
        resolvers,
    })
}

/// The DNS runtime (TCP, forwarding) on this thread, and a thread per UDP
/// socket.
fn serve(
    handler: handler::Handler,
    udp: Vec<UdpSocket>,
    generation: Arc<std::sync::atomic::AtomicU64>,
    tcp: TcpListener,
    stop: CancellationToken,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("meso-dns")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the DNS runtime");
            return;
        }
    };
    let shared = Arc::new(handler::Handler {
        zone: handler.zone.clone(),
        forwarder: handler.forwarder.clone(),
    });
    for socket in udp {
        let (handler, generation) = (shared.clone(), generation.clone());
        let (runtime, stop) = (runtime.handle().clone(), stop.clone());
        let started = std::thread::Builder::new()
            .name("meso-dns-udp".into())
            .spawn(move || udp::serve(socket, handler, generation, runtime, stop));
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start a DNS UDP thread");
        }
    }
    runtime.block_on(async move {
        let mut server = hickory_server::Server::new(handler);
        match tokio::net::TcpListener::from_std(tcp) {
            Ok(tcp) => server.register_listener(tcp, TCP_IDLE, 65_535),
            Err(e) => {
                tracing::error!(error = %e, "cannot register the DNS listener");
                return;
            }
        }
        stop.cancelled().await;
        let _ = server.shutdown_gracefully().await;
    });
}

/// Keeps the zone equal to what the registry says.
struct Updater {
    master: Arc<Master>,
    zone: Arc<RwLock<Zone>>,
    rules: Rules,
    hosts: Hosts,
    leader: Option<Leader>,
    ns_ips: Vec<IpAddr>,
}

/// What a run of changes asks to rebuild.
#[derive(Default)]
struct Work {
    tasks: BTreeSet<String>,
    agents: BTreeSet<String>,
    cluster: bool,
    everything: bool,
}

impl Work {
    fn add(&mut self, change: Result<Change, RecvError>) -> bool {
        match change {
            Ok(Change::TaskUpdated { task_id, .. } | Change::TaskHealthChanged { task_id, .. }) => {
                self.tasks.insert(task_id);
            }
            Ok(
                Change::AgentRegistered { id }
                | Change::AgentReregistered { id }
                | Change::AgentUnreachable { id }
                | Change::AgentGone { id },
            ) => {
                self.agents.insert(id);
                self.cluster = true;
            }
            Ok(Change::MemberChanged { .. } | Change::MemberRemoved { .. }) => self.cluster = true,
            Ok(Change::ClusterInitialized { .. }) => self.everything = true,
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "DNS updater lagged; rebuilding every record");
                self.everything = true;
            }
            Err(RecvError::Closed) => return false,
        }
        true
    }
}

impl Updater {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut changes = self.master.subscribe();
        let mut status = self.master.raft.watch();
        let mut leader = status.borrow_and_update().leader;
        self.apply(Work {
            everything: true,
            ..Work::default()
        })
        .await;
        loop {
            let mut work = Work::default();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = status.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // The status changes with every commit; of it, the
                    // records name only the leader. Rebuilding the cluster's
                    // records (every agent's) each Raft round was work that
                    // grows with the cluster and changed nothing.
                    let now = status.borrow_and_update().leader;
                    if now == leader {
                        continue;
                    }
                    leader = now;
                    work.cluster = true;
                }
                change = changes.recv() => {
                    if !work.add(change) {
                        return;
                    }
                    // Whatever else is queued goes in the same pass.
                    while let Ok(change) = changes.try_recv() {
                        work.add(Ok(change));
                    }
                }
            }
            self.apply(work).await;
        }
    }

    async fn apply(&mut self, work: Work) {
        if work.everything || work.cluster {
            self.resolve_hosts().await;
            self.leader = self.leader();
        }
        let registry = self.master.registry();
        self.rules.marathon_framework =
            crate::scheduler::driver::reconcile::framework_id(&registry);
        let mut updates: Vec<(Owner, Vec<zone::Entry>)> = Vec::new();
        if work.everything || work.cluster {
            let entries = records::cluster(
                &registry,
                self.leader.as_ref(),
                &self.ns_ips,
                &self.rules,
                &self.hosts,
            );
            updates.push((Owner::Cluster, entries));
        }
        let mut tasks = work.tasks;
        if work.everything {
            tasks.extend(registry.tasks.values().map(|t| t.spec.task_id.clone()));
        } else if !work.agents.is_empty() {
            tasks.extend(
                registry
                    .tasks
                    .values()
                    .filter(|t| work.agents.contains(&t.spec.agent_id))
                    .map(|t| t.spec.task_id.clone()),
            );
        }
        for id in tasks {
            let entries = registry
                .tasks
                .get(id.as_str())
                .map(|task| records::task_records(&registry, task, &self.rules, &self.hosts))
                .unwrap_or_default();
            updates.push((Owner::Task(id.into()), entries));
        }
        let stale: Vec<Owner> = if work.everything {
            let zone = self.zone.read().unwrap_or_else(|e| e.into_inner());
            zone.owners()
                .filter(|o| matches!(o, Owner::Task(id) if !registry.tasks.contains_key(&**id)))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        drop(registry);
        let mut zone = self.zone.write().unwrap_or_else(|e| e.into_inner());
        for owner in stale {
            zone.remove(&owner);
        }
        for (owner, entries) in updates {
            if entries.is_empty() {
                zone.remove(&owner);
            } else {
                zone.replace(&owner, entries);
            }
        }
    }

    /// The leader's HTTP address as IPs and port.
    fn leader(&self) -> Option<Leader> {
        let http = self.master.leader_http()?;
        let (host, port) = records::split_host_port(&http)?;
        let ips = records::ips_of(host, &self.hosts);
        (!ips.is_empty()).then_some(Leader { ips, port })
    }

    /// Looks up host names that masters and agents advertise instead of IPs.
    async fn resolve_hosts(&mut self) {
        let wanted: BTreeSet<String> = {
            let registry = self.master.registry();
            let members = registry
                .members
                .values()
                .filter_map(|m| m.http_addr.clone());
            let agents = registry.agents.values().map(|a| a.addr.clone());
            members
                .chain(agents)
                .chain(self.master.leader_http())
                .filter_map(|addr| records::split_host_port(&addr).map(|(h, _)| h.to_string()))
                .filter(|h| h.parse::<IpAddr>().is_err())
                .filter(|h| self.hosts.get(h).is_none_or(Vec::is_empty))
                .collect()
        };
        for host in wanted {
            let lookup = tokio::net::lookup_host((host.clone(), 0));
            let found = tokio::time::timeout(Duration::from_secs(2), lookup).await;
            let ips = match found {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                _ => {
                    tracing::warn!(%host, "cannot resolve a cluster host name for DNS records");
                    Vec::new()
                }
            };
            self.hosts.insert(host, ips);
        }
    }
}
