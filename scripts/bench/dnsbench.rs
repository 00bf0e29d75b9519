//! DNS benchmark for `scripts/bench/dns.sh`: simulated agents that hold
//! thousands of RUNNING tasks without running anything, the query and zone
//! files for `dnsperf` and NSD, and how soon a RUNNING task resolves.
//!
//! ```text
//! dnsbench agents --master ADDR --count 10 --first-ip 127.0.1.1 --pool fill
//!     simulated agents (module `sim`) until SIGINT or SIGTERM; prints
//!     `export DNSBENCH_AGENTS=N` once every one is subscribed
//! dnsbench deploy --master ADDR --group /bench --apps 1000 --instances 10 --pool fill
//!     one PUT /v2/apps of every app; waits until all their tasks are RUNNING
//! dnsbench prepare --master ADDR --dns IP:PORT --group /bench --queries FILE --zone FILE
//!     the dnsperf query file, from the running tasks and Mesos-DNS's naming
//!     rules (`meso::dns::names`); the zone file for NSD, made of meso's own
//!     answers (over TCP) to every name of those tasks
//! dnsbench freshness --master ADDR --dns IP:PORT --count 1000 --ip 127.0.2.1
//!     a simulated agent of its own (attribute pool=fresh) and N apps of one
//!     instance on it, one after another: for each, from the moment the agent
//!     sends TASK_RUNNING until the first DNS answer with the task's record,
//!     and until the UPDATE's 202
//! dnsbench free-port
//!     a loopback port free for both UDP and TCP right now (for NSD)
//! ```
//!
//! Each mode but `agents` and `free-port` prints one JSON line on stdout.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use meso::dns::names::{canonical, label};
use meso::model::{PortRange, Resources};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;
use common::{ms, pct};

#[derive(Parser)]
#[command(about = "DNS benchmark for scripts/bench/dns.sh")]
struct Cli {
    /// The master's HTTP address (host:port or URL)
    #[arg(long, global = true, default_value = "127.0.0.1:5050")]
    master: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Simulated agents, until SIGINT or SIGTERM
    Agents {
        #[arg(long, default_value_t = 10)]
        count: u8,
        /// The first agent's IP (its records' address); the next get the next ones
        #[arg(long, default_value = "127.0.1.1")]
        first_ip: std::net::Ipv4Addr,
        /// The agents' `pool` attribute, for the apps' constraints
        #[arg(long, default_value = "fill")]
        pool: String,
    },
    /// Deploy N apps of M instances in one PUT /v2/apps; wait until all run
    Deploy {
        #[arg(long, default_value = "/bench")]
        group: String,
        #[arg(long, default_value_t = 1000)]
        apps: usize,
        #[arg(long, default_value_t = 10)]
        instances: usize,
        #[arg(long, default_value = "fill")]
        pool: String,
        #[arg(long, default_value_t = 300.0)]
        timeout: f64,
    },
    /// Write the dnsperf query file and the NSD zone file
    Prepare {
        /// meso's DNS address (IP:PORT)
        #[arg(long)]
        dns: SocketAddr,
        #[arg(long, default_value = "/bench")]
        group: String,
        #[arg(long)]
        queries: std::path::PathBuf,
        #[arg(long)]
        zone: std::path::PathBuf,
        /// How many RUNNING tasks there must be under the group
        #[arg(long)]
        expect: usize,
    },
    /// Time from TASK_RUNNING sent until DNS answers with the task's record
    Freshness {
        #[arg(long)]
        dns: SocketAddr,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// The simulated agent's IP
        #[arg(long, default_value = "127.0.2.1")]
        ip: std::net::Ipv4Addr,
        #[arg(long, default_value = "/fresh")]
        group: String,
        /// One JSON line per task is appended here
        #[arg(long)]
        raw: Option<std::path::PathBuf>,
        /// Give up on a task's answer after this many seconds
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// Print a loopback port free for UDP and TCP
    FreePort,
}

/// The Mesos-DNS domain and the built-in scheduler's framework name.
const DOMAIN: &str = "mesos.";
const FRAMEWORK: &str = "marathon";
/// Resources every simulated agent offers: far more than the tasks take.
fn ample() -> Resources {
    Resources {
        cpus: 10_000.0,
        mem: 10_000_000.0,
        disk: 10_000_000.0,
        ports: vec![PortRange {
            begin: 20_000,
            end: 30_000,
        }],
    }
}

fn main() -> anyhow::Result<()> {
    // One thread: the machine's other core is the master's and dnsperf's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cli = Cli::parse();
    if let Some(out) = runtime.block_on(run(cli))? {
        println!("{out}");
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<Option<Value>> {
    let api = Api::new(&cli.master)?;
    match cli.mode {
        Mode::Agents {
            count,
            first_ip,
            pool,
        } => {
            agents(&api, count, first_ip, &pool).await?;
            Ok(None)
        }
        Mode::Deploy {
            group,
            apps,
            instances,
            pool,
            timeout,
        } => deploy(&api, &group, apps, instances, &pool, timeout)
            .await
            .map(Some),
        Mode::Prepare {
            dns,
            group,
            queries,
            zone,
            expect,
        } => prepare(&api, dns, &group, &queries, &zone, expect)
            .await
            .map(Some),
        Mode::Freshness {
            dns,
            count,
            ip,
            group,
            raw,
            timeout,
        } => freshness(&api, dns, count, ip, &group, raw.as_deref(), timeout)
            .await
            .map(Some),
        Mode::FreePort => {
            let (udp, _tcp) = free_port()?;
            println!("{}", udp.local_addr()?.port());
            Ok(None)
        }
    }
}

fn free_port() -> anyhow::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return Ok((udp, tcp));
        }
    }
    bail!("no loopback port free for both UDP and TCP")
}

// ---------------------------------------------------------------- simulated agents

/// A simulated agent: the real agent protocol (as `src/agent/session.rs` and
/// `src/agent/updates.rs` speak it to `src/master/agents.rs`) with nothing
/// run. It subscribes (reporting the tasks it holds, so a resubscription
/// keeps them), answers every LAUNCH with TASK_RUNNING and every KILL with
/// TASK_KILLED, sends the statuses in UPDATE calls (one in flight, up to 512
/// each, again until a 202 says they are committed), and heartbeats.
mod sim {
    use std::collections::{BTreeMap, HashMap, VecDeque};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use meso::api::base_url;
    use meso::api::recordio::Decoder;
    use meso::model::{Resources, TaskSpec, TaskState, TaskStatus};
    use serde_json::{Value, json};
    use tokio::sync::{Notify, mpsc, watch};
    use tokio_util::sync::CancellationToken;

    /// What the agent says about itself when it subscribes.
    pub struct Identity {
        pub key: String,
        pub hostname: String,
        /// `IP:PORT`: the IP is what its tasks' DNS records hold.
        pub addr: String,
        pub resources: Resources,
        pub attributes: BTreeMap<String, String>,
    }

    /// What the agent tells whoever watches it.
    #[derive(Debug)]
    pub enum Note {
        Subscribed {
            agent_id: String,
        },
        Launched(Box<TaskSpec>),
        /// An UPDATE with these tasks' statuses is about to go out.
        Sending {
            task_ids: Vec<String>,
            at: Instant,
        },
        /// ... and its 202 came back: committed.
        Acked {
            task_ids: Vec<String>,
            at: Instant,
        },
    }

    /// Statuses per UPDATE, as the real agent batches them.
    const BATCH: usize = 512;
    const SOURCE: &str = "SOURCE_EXECUTOR";

    struct Shared {
        /// Every task it was given, by id, and where each stands.
        tasks: Mutex<HashMap<String, TaskState>>,
        /// Statuses not yet acknowledged, in order.
        pending: Mutex<VecDeque<TaskStatus>>,
        queued: Notify,
        /// The leader's agent API URL and this agent's id, while subscribed.
        link: watch::Sender<Option<(String, String)>>,
        notes: Option<mpsc::UnboundedSender<Note>>,
    }

    impl Shared {
        fn note(&self, note: Note) {
            if let Some(tx) = &self.notes {
                let _ = tx.send(note);
            }
        }

        fn queue(&self, task_id: &str, state: TaskState) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let mut status = TaskStatus::new(task_id, "", state, now).source(SOURCE);
            status.uuid = Some(uuid::Uuid::new_v4().to_string());
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(status);
            self.queued.notify_one();
        }
    }

    /// Runs the agent until `shutdown`.
    pub async fn run(
        client: reqwest::Client,
        master: String,
        me: Identity,
        notes: Option<mpsc::UnboundedSender<Note>>,
        shutdown: CancellationToken,
    ) {
        let shared = Arc::new(Shared {
            tasks: Mutex::default(),
            pending: Mutex::default(),
            queued: Notify::new(),
            link: watch::Sender::new(None),
            notes,
        });
        let updates = tokio::spawn(send_updates(
            client.clone(),
            shared.clone(),
            shutdown.clone(),
        ));
        let mut backoff = Duration::from_millis(50);
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = session(&client, &master, &me, &shared) => r,
            };
            shared.link.send_replace(None);
            match outcome {
                Ok(()) => backoff = Duration::from_millis(50),
                Err(e) => eprintln!("sim agent {}: not subscribed ({e}); retrying", me.key),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        let _ = updates.await;
    }

    /// One subscription, until it breaks; Ok when it was established first.
    async fn session(
        client: &reqwest::Client,
        master: &str,
        me: &Identity,
        shared: &Shared,
    ) -> Result<(), String> {
        let url = format!("{}/api/v1/agent", base_url(master));
        let held: Vec<Value> = shared
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, state)| !state.is_terminal())
            .map(|(id, state)| json!({"task_id": id, "state": state}))
            .collect();
        let subscribe = json!({"type": "SUBSCRIBE", "subscribe": {
            "key": me.key,
            "hostname": me.hostname,
            "addr": me.addr,
            "resources": me.resources,
            "attributes": me.attributes,
            "tasks": held,
        }});
        let response = client
            .post(&url)
            .header("Accept", "application/recordio")
            .json(&subscribe)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("subscribe answered {}", response.status()));
        }
        let leader_url = response.url().to_string();
        let mut response = response;
        let mut decoder = Decoder::default();
        let mut interval = Duration::from_secs(5);
        let mut beat = tokio::time::interval(interval);
        let mut id: Option<String> = None;
        loop {
            let silence = interval * 3;
            tokio::select! {
                chunk = tokio::time::timeout(silence, response.chunk()) => {
                    let chunk = match chunk {
                        Err(_) => return Err(format!("no event for {silence:?}")),
                        Ok(Err(e)) => return Err(e.to_string()),
                        Ok(Ok(None)) => return if id.is_some() { Ok(()) } else { Err("stream closed".into()) },
                        Ok(Ok(Some(c))) => c,
                    };
                    decoder.push(&chunk);
                    while let Some(record) = decoder.next_record()? {
                        let event: Value = serde_json::from_slice(&record).map_err(|e| e.to_string())?;
                        if event["type"] == "SUBSCRIBED" {
                            let sub = &event["subscribed"];
                            let new_id = sub["agent_id"].as_str().ok_or("SUBSCRIBED without agent_id")?.to_string();
                            if let Some(secs) = sub["heartbeat_interval_seconds"].as_f64().filter(|s| *s > 0.0 && s.is_finite()) {
                                interval = Duration::from_secs_f64(secs.min(3600.0));
                                beat = tokio::time::interval(interval);
                            }
                            shared.link.send_replace(Some((leader_url.clone(), new_id.clone())));
                            shared.note(Note::Subscribed { agent_id: new_id.clone() });
                            id = Some(new_id);
                        } else {
                            dispatch(&event, shared);
                        }
                    }
                }
                _ = beat.tick(), if id.is_some() => {
                    let call = json!({"type": "HEARTBEAT", "agent_id": id});
                    let r = client.post(&leader_url).timeout(interval).json(&call).send().await
                        .map_err(|e| e.to_string())?;
                    if !r.status().is_success() {
                        return Err(format!("heartbeat refused: {}", r.status()));
                    }
                }
            }
        }
    }

    /// LAUNCH: RUNNING at once (a task it has is left alone); KILL: KILLED,
    /// unless the task has already ended.
    fn dispatch(event: &Value, shared: &Shared) {
        match event["type"].as_str() {
            Some("LAUNCH") => {
                let Ok(spec) = serde_json::from_value::<TaskSpec>(event["launch"]["task"].clone())
                else {
                    eprintln!("sim agent: a LAUNCH it cannot read");
                    return;
                };
                let id = spec.task_id.clone();
                let fresh = shared
                    .tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone(), TaskState::Running)
                    .is_none();
                if fresh {
                    shared.note(Note::Launched(Box::new(spec)));
                    shared.queue(&id, TaskState::Running);
                }
            }
            Some("KILL") => {
                let Some(id) = event["kill"]["task_id"].as_str() else {
                    return;
                };
                let ended = {
                    let mut tasks = shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
                    let ended = tasks.get(id).is_some_and(|s| s.is_terminal());
                    tasks.insert(id.to_string(), TaskState::Killed);
                    ended
                };
                if !ended {
                    shared.queue(id, TaskState::Killed);
                }
            }
            _ => {}
        }
    }

    /// Sends the queued statuses to the leader until each is acknowledged.
    async fn send_updates(
        client: reqwest::Client,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) {
        let mut link = shared.link.subscribe();
        let mut backoff = Duration::from_millis(20);
        loop {
            let mut batch: Vec<TaskStatus> = shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .take(BATCH)
                .cloned()
                .collect();
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = shared.queued.notified() => {}
                }
                continue;
            }
            let current = link.borrow_and_update().clone();
            let Some((url, agent_id)) = current else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = link.changed() => {}
                }
                continue;
            };
            for status in &mut batch {
                status.agent_id = agent_id.clone();
            }
            let task_ids: Vec<String> = batch.iter().map(|s| s.task_id.clone()).collect();
            let call =
                json!({"type": "UPDATE", "agent_id": agent_id, "update": {"statuses": batch}});
            shared.note(Note::Sending {
                task_ids: task_ids.clone(),
                at: Instant::now(),
            });
            let sent = client
                .post(&url)
                .timeout(Duration::from_secs(10))
                .json(&call)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    let at = Instant::now();
                    shared
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .drain(..task_ids.len());
                    shared.note(Note::Acked { task_ids, at });
                    backoff = Duration::from_millis(20);
                    continue;
                }
                Ok(r) => eprintln!("sim agent: UPDATE answered {}; retrying", r.status()),
                Err(e) => eprintln!("sim agent: UPDATE not sent ({e}); retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

// ---------------------------------------------------------------- HTTP

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(addr: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base: meso::api::base_url(addr),
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        common::get_json(&self.http, &self.base, path).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> anyhow::Result<()> {
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .timeout(Duration::from_secs(60))
            .json(body)
            .send()
            .await?;
        let status = r.status();
        if !status.is_success() {
            let text = r.text().await.unwrap_or_default();
            bail!("{method} {path} answered {status}: {}", text.trim());
        }
        Ok(())
    }

    /// RUNNING tasks of the apps under `group`, per `/v2/apps` (counts only).
    async fn running(&self, group: &str) -> anyhow::Result<usize> {
        let apps = self.get(&format!("/v2/apps?id={group}/")).await?;
        Ok(apps["apps"]
            .as_array()
            .context("/v2/apps without apps")?
            .iter()
            .map(|a| a["tasksRunning"].as_u64().unwrap_or(0) as usize)
            .sum())
    }
}

/// A tiny app with one host port, placed on agents of `pool`.
fn app_json(id: &str, instances: usize, pool: &str) -> Value {
    json!({
        "id": id,
        "cmd": "sleep 600",
        "cpus": 0.001,
        "mem": 1,
        "instances": instances,
        "portDefinitions": [{"port": 0, "protocol": "tcp"}],
        "constraints": [["pool", "IS", pool]],
    })
}

// ---------------------------------------------------------------- modes

async fn agents(
    api: &Api,
    count: u8,
    first_ip: std::net::Ipv4Addr,
    pool: &str,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut handles = Vec::new();
    for n in 0..count {
        let ip = std::net::Ipv4Addr::from(u32::from(first_ip) + u32::from(n));
        let me = sim::Identity {
            key: format!("dnsbench-{pool}-{n}-{}", std::process::id()),
            hostname: ip.to_string(),
            addr: format!("{ip}:5051"),
            resources: ample(),
            attributes: BTreeMap::from([("pool".to_string(), pool.to_string())]),
        };
        // Only the subscriptions are watched: a fill agent's launches are
        // many and nobody times them.
        let (notes, mut mine) = mpsc::unbounded_channel();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(note) = mine.recv().await {
                if let sim::Note::Subscribed { agent_id } = note {
                    let _ = tx.send(agent_id);
                }
            }
        });
        handles.push(tokio::spawn(sim::run(
            api.http.clone(),
            api.base.clone(),
            me,
            Some(notes),
            shutdown.clone(),
        )));
    }
    let mut subscribed = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while subscribed.len() < usize::from(count) {
        let id = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .context("the simulated agents did not all subscribe within 30 s")?
            .context("no agent left")?;
        subscribed.insert(id);
    }
    println!("export DNSBENCH_AGENTS={}", subscribed.len());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
    for h in handles {
        let _ = h.await;
    }
    Ok(())
}

async fn deploy(
    api: &Api,
    group: &str,
    apps: usize,
    instances: usize,
    pool: &str,
    timeout: f64,
) -> anyhow::Result<Value> {
    let group = group.trim_end_matches('/');
    let all: Vec<Value> = (0..apps)
        .map(|n| app_json(&format!("{group}/a{n:04}"), instances, pool))
        .collect();
    let want = apps * instances;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(timeout);
    api.send(reqwest::Method::PUT, "/v2/apps", &Value::Array(all))
        .await?;
    let put = t0.elapsed();
    loop {
        let running = api.running(group).await?;
        if running >= want {
            break;
        }
        if Instant::now() > deadline {
            bail!("{running} of {want} tasks RUNNING after {timeout} s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(json!({
        "mode": "deploy",
        "apps": apps,
        "instances": instances,
        "put_ms": ms(put),
        "all_running_ms": ms(t0.elapsed()),
    }))
}

/// The names of one Marathon task, as Mesos-DNS makes them.
struct TaskNames {
    /// `<app>-<group>`: the task label, shared by the app's instances.
    task: String,
    /// `<task>-<hash>-<agent>`
    canonical: String,
}

fn names_of(task: &Value) -> Option<TaskNames> {
    let id = task["id"].as_str()?;
    let name = task["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or(id);
    let agent = task["slave_id"].as_str()?;
    let t = label(name);
    let c = canonical(&t, id, agent);
    Some(TaskNames {
        task: t,
        canonical: c,
    })
}

async fn prepare(
    api: &Api,
    dns: SocketAddr,
    group: &str,
    queries: &std::path::Path,
    zone_path: &std::path::Path,
    expect: usize,
) -> anyhow::Result<Value> {
    let t0 = Instant::now();
    // Marathon's task ids start with the app id, slashes as underscores.
    let task_prefix = format!("{}_", group.trim_matches('/').replace('/', "_"));
    let tasks = api.get("/master/tasks").await?;
    let ours: Vec<TaskNames> = tasks["tasks"]
        .as_array()
        .context("/master/tasks without tasks")?
        .iter()
        .filter(|t| {
            t["state"] == "TASK_RUNNING"
                && t["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(&task_prefix))
        })
        .filter_map(names_of)
        .collect();
    if ours.len() != expect {
        bail!("{} RUNNING tasks under {group}, not {expect}", ours.len());
    }
    let f = FRAMEWORK;
    let d = DOMAIN;
    // What dnsperf asks: every canonical name, and each app's name (A) and
    // its SRV name once; in a fixed shuffled order.
    let mut asked: Vec<(String, RecordType)> = Vec::new();
    let labels: BTreeSet<&str> = ours.iter().map(|t| t.task.as_str()).collect();
    for t in &ours {
        asked.push((format!("{}.{f}.{d}", t.canonical), RecordType::A));
    }
    for t in &labels {
        asked.push((format!("{t}.{f}.{d}"), RecordType::A));
        asked.push((format!("_{t}._tcp.{f}.{d}"), RecordType::SRV));
    }
    asked.shuffle(&mut rand::rngs::StdRng::seed_from_u64(5));
    let mut file = String::new();
    for (name, rtype) in &asked {
        file.push_str(&format!("{} {rtype}\n", name.trim_end_matches('.')));
    }
    std::fs::write(queries, file).with_context(|| format!("cannot write {}", queries.display()))?;

    // What the zone holds: meso's answers to every name its tasks have, the
    // ones not asked too (the .slave.mesos names, _udp), with its SOA and NS.
    let mut every: Vec<(String, RecordType)> = Vec::new();
    for t in &ours {
        every.push((format!("{}.{f}.{d}", t.canonical), RecordType::A));
        every.push((format!("{}.{f}.slave.{d}", t.canonical), RecordType::A));
    }
    for t in &labels {
        every.push((format!("{t}.{f}.{d}"), RecordType::A));
        every.push((format!("{t}.{f}.slave.{d}"), RecordType::A));
        for proto in ["_tcp", "_udp"] {
            every.push((format!("_{t}.{proto}.{f}.{d}"), RecordType::SRV));
            every.push((format!("_{t}.{proto}.{f}.slave.{d}"), RecordType::SRV));
        }
    }
    every.push((format!("ns1.{d}"), RecordType::A));
    let mut client = TcpDns::connect(dns).await?;
    let mut lines = BTreeSet::new();
    let mut missing = Vec::new();
    for (name, rtype) in &every {
        let answer = client.ask(name, *rtype).await?;
        if answer.answers.is_empty() {
            missing.push(format!("{name} {rtype}"));
        }
        lines.extend(answer.answers.iter().map(Record::to_string));
    }
    if !missing.is_empty() {
        bail!(
            "meso has no answer for {} names, e.g. {}",
            missing.len(),
            missing[0]
        );
    }
    let soa = client.ask(d, RecordType::SOA).await?;
    let ns = client.ask(d, RecordType::NS).await?;
    let head: Vec<String> = soa
        .authorities
        .iter()
        .chain(&ns.authorities)
        .filter(|r| matches!(r.data, RData::SOA(_) | RData::NS(_)))
        .map(Record::to_string)
        .collect();
    if !head.iter().any(|l| l.contains(" SOA ")) {
        bail!("meso answered no SOA for {d}");
    }
    let mut zone = String::from("; made by dnsbench prepare from meso's answers\n");
    for line in head.iter().chain(&lines) {
        zone.push_str(line);
        zone.push('\n');
    }
    std::fs::write(zone_path, zone)
        .with_context(|| format!("cannot write {}", zone_path.display()))?;
    Ok(json!({
        "mode": "prepare",
        "tasks": ours.len(),
        "apps": labels.len(),
        "queries": asked.len(),
        "zone_names": every.len() + 1,
        "zone_records": lines.len() + head.len(),
        "ms": ms(t0.elapsed()),
    }))
}

/// A DNS client over one TCP connection (no truncation), built on hickory_proto.
struct TcpDns {
    stream: tokio::net::TcpStream,
    id: u16,
}

impl TcpDns {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot reach DNS at {addr} over TCP"))?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, id: 0 })
    }

    async fn ask(&mut self, name: &str, rtype: RecordType) -> anyhow::Result<Message> {
        self.id = self.id.wrapping_add(1);
        let query = query(self.id, name, rtype)?;
        let len = u16::try_from(query.len())?;
        self.stream.write_all(&len.to_be_bytes()).await?;
        self.stream.write_all(&query).await?;
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut buf).await?;
        let answer = Message::from_vec(&buf).with_context(|| format!("{name}: bad answer"))?;
        if answer.metadata.id != self.id {
            bail!("{name}: answer to another query");
        }
        Ok(answer)
    }
}

/// One query's wire bytes.
fn query(id: u16, name: &str, rtype: RecordType) -> anyhow::Result<Vec<u8>> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(hickory_proto::op::Query::query(
        Name::from_ascii(name).with_context(|| format!("'{name}' is not a DNS name"))?,
        rtype,
    ));
    Ok(m.to_vec()?)
}

/// One task's freshness, as measured.
struct Fresh {
    /// RUNNING sent → first answer with the task's A record.
    dns: Duration,
    /// RUNNING sent → the UPDATE's 202.
    ack: Duration,
    /// The app's POST sent → the LAUNCH at the agent.
    launch: Duration,
    probes: u32,
}

async fn freshness(
    api: &Api,
    dns: SocketAddr,
    count: usize,
    ip: std::net::Ipv4Addr,
    group: &str,
    raw: Option<&std::path::Path>,
    timeout: f64,
) -> anyhow::Result<Value> {
    let group = group.trim_end_matches('/');
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let (tx, mut notes) = mpsc::unbounded_channel();
    let me = sim::Identity {
        key: format!("dnsbench-fresh-{}", std::process::id()),
        hostname: ip.to_string(),
        addr: format!("{ip}:5051"),
        resources: ample(),
        attributes: BTreeMap::from([("pool".to_string(), "fresh".to_string())]),
    };
    tokio::spawn(sim::run(
        api.http.clone(),
        api.base.clone(),
        me,
        Some(tx),
        shutdown.clone(),
    ));
    let agent_id = loop {
        match tokio::time::timeout(Duration::from_secs(30), notes.recv()).await {
            Ok(Some(sim::Note::Subscribed { agent_id })) => break agent_id,
            Ok(Some(_)) => {}
            _ => bail!("the freshness agent did not subscribe within 30 s"),
        }
    };
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(dns).await?;
    let timeout = Duration::from_secs_f64(timeout);
    let mut raw_lines = String::new();
    let mut all = Vec::with_capacity(count);
    let t0 = Instant::now();
    for n in 0..count {
        let app = format!("{group}/f{n:04}");
        let posted = Instant::now();
        api.send(
            reqwest::Method::POST,
            "/v2/apps",
            &app_json(&app, 1, "fresh"),
        )
        .await?;
        let fresh = one_fresh(&socket, &mut notes, posted, IpAddr::V4(ip), timeout)
            .await
            .with_context(|| format!("app {app}"))?;
        raw_lines.push_str(&format!(
            "{}\n",
            json!({"mode": "freshness-task", "app": app, "agent_id": agent_id,
                   "dns_ms": ms(fresh.dns), "ack_ms": ms(fresh.ack),
                   "launch_ms": ms(fresh.launch), "probes": fresh.probes})
        ));
        all.push(fresh);
    }
    let elapsed = t0.elapsed();
    if let Some(path) = raw {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(raw_lines.as_bytes())?;
    }
    let sorted = |f: fn(&Fresh) -> Duration| {
        let mut v: Vec<f64> = all.iter().map(|x| ms(f(x))).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let dns_ms = sorted(|f| f.dns);
    let ack_ms = sorted(|f| f.ack);
    let launch_ms = sorted(|f| f.launch);
    let probes: u32 = all.iter().map(|f| f.probes).sum();
    let before_ack = all.iter().filter(|f| f.dns < f.ack).count();
    Ok(json!({
        "mode": "freshness",
        "count": count,
        "dns_p50_ms": pct(&dns_ms, 0.5),
        "dns_p99_ms": pct(&dns_ms, 0.99),
        "dns_max_ms": dns_ms.last().copied().unwrap_or(f64::NAN),
        "ack_p50_ms": pct(&ack_ms, 0.5),
        "ack_p99_ms": pct(&ack_ms, 0.99),
        "ack_max_ms": ack_ms.last().copied().unwrap_or(f64::NAN),
        "launch_p50_ms": pct(&launch_ms, 0.5),
        "dns_before_ack": before_ack,
        "probes_per_task": f64::from(probes) / count.max(1) as f64,
        "probe_interval_ms": ms(all.iter().map(|f| f.dns).sum::<Duration>()) / f64::from(probes.max(1)),
        "total_ms": ms(elapsed),
    }))
}

/// Waits for the next task's LAUNCH and its RUNNING going out, then asks DNS
/// for the task's canonical name every millisecond until an answer holds
/// `ip`, and waits for the UPDATE's 202.
async fn one_fresh(
    socket: &tokio::net::UdpSocket,
    notes: &mut mpsc::UnboundedReceiver<sim::Note>,
    posted: Instant,
    ip: IpAddr,
    timeout: Duration,
) -> anyhow::Result<Fresh> {
    let deadline = tokio::time::Instant::now() + timeout;
    async fn next(
        notes: &mut mpsc::UnboundedReceiver<sim::Note>,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<sim::Note> {
        let note = tokio::time::timeout_at(deadline, notes.recv()).await;
        note.ok()
            .flatten()
            .context("no word from the agent in time")
    }
    let spec = loop {
        if let sim::Note::Launched(spec) = next(notes, deadline).await? {
            break spec;
        }
    };
    let launch = posted.elapsed();
    let name = format!(
        "{}.{FRAMEWORK}.{DOMAIN}",
        canonical(&label(&spec.name), &spec.task_id, &spec.agent_id)
    );
    let qname = Name::from_ascii(&name)?;
    let sent = loop {
        match next(notes, deadline).await? {
            sim::Note::Sending { task_ids, at } if task_ids.contains(&spec.task_id) => break at,
            _ => {}
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 4096];
    let (mut found, mut acked) = (None, None);
    let mut probes = 0u32;
    let mut id = 0u16;
    while found.is_none() || acked.is_none() {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                bail!("{name}: answered {}, acknowledged {} after {timeout:?}",
                      found.is_some(), acked.is_some());
            }
            _ = tick.tick(), if found.is_none() => {
                id = id.wrapping_add(1);
                socket.send(&query(id, &name, RecordType::A)?).await?;
                probes += 1;
            }
            got = socket.recv(&mut buf), if found.is_none() => {
                let n = got?;
                let at = Instant::now();
                // Late answers to an earlier task's probes name another task.
                let Ok(answer) = Message::from_vec(&buf[..n]) else { continue };
                let ours = answer.queries.first().is_some_and(|q| *q.name() == qname);
                let right = answer.answers.iter().any(|r| match &r.data {
                    RData::A(a) => IpAddr::V4(a.0) == ip,
                    _ => false,
                });
                if ours && right {
                    found = Some(at);
                }
            }
            note = notes.recv() => match note {
                Some(sim::Note::Acked { task_ids, at }) if task_ids.contains(&spec.task_id) => acked = Some(at),
                Some(_) => {}
                None => bail!("the freshness agent stopped"),
            }
        }
    }
    let (Some(found), Some(acked)) = (found, acked) else {
        bail!("unreachable: the loop ends with both");
    };
    Ok(Fresh {
        dns: found - sent,
        ack: acked - sent,
        launch,
        probes,
    })
}
