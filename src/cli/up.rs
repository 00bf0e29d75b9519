//! `meso up`: a whole local cluster in this process.
//!
//! Master N keeps its state in `<data-dir>/master-N`, agent N its work in
//! `<data-dir>/agent-N` (each agent on a free HTTP port, subscribed to every
//! master; ready means every agent has its id). Master 1 listens on
//! `--http`, master N on the next ports up (or a free port when `--http` asks for
//! port 0); Raft ports are always picked free, since only this process uses them.
//! The steps show on a progress display (a terminal only); the endpoints go to
//! stdout as `export` lines, for `eval "$(meso up ...)"`-style use by scripts,
//! and into the state file `<data-dir>/meso-up.json` (removed on a clean stop)
//! by which `meso down`, `info`, `status` and the rest find the cluster.
//! `-d` runs all this in a child process of its own session (`detach.rs`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::detach;
use super::state_file::{self, UpState};
use crate::config::{DnsFlags, Extra, MasterFlags, NodeFlags, Role, Settings};
use crate::model::{DEFAULT_PORTS, PortRange, Resources, format_ranges, share_of_ranges};
use crate::node::{self, Node};

#[derive(Args)]
pub struct UpArgs {
    /// How many masters (Raft members) to run
    #[arg(long, env = "MESO_MASTERS")]
    masters: Option<usize>,
    /// How many agents to run in this process
    #[arg(long, env = "MESO_AGENTS")]
    agents: Option<usize>,
    #[command(flatten)]
    node: NodeFlags,
    #[command(flatten)]
    dns: DnsFlags,
    /// Start the cluster in the background and return once it is ready
    /// (`meso down` stops it); its log goes to `<data-dir>/up.log`
    #[arg(short, long)]
    detach: bool,
}

struct Steps {
    bar: ProgressBar,
    started: Instant,
    step_started: Instant,
}

impl Steps {
    fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(80));
        let now = Instant::now();
        Self {
            bar,
            started: now,
            step_started: now,
        }
    }

    fn begin(&mut self, what: &str) {
        self.step_started = Instant::now();
        self.bar.set_message(what.to_string());
    }

    fn done(&mut self, what: &str) {
        let ms = self.step_started.elapsed().as_secs_f64() * 1000.0;
        self.bar.println(format!("  ✓ {what} ({ms:.0} ms)"));
    }

    fn finish(&self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.bar.finish_and_clear();
        if std::io::stderr().is_terminal() {
            eprintln!("  cluster ready in {ms:.0} ms; Ctrl-C stops it");
        }
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(
        &args.node,
        Extra {
            master: MasterFlags::default(),
            dns: args.dns,
            masters: args.masters,
            agents: args.agents,
            default_log: "warn",
            default_preset: Some("local"),
            ..Default::default()
        },
    )?;
    if args.detach && std::env::var_os(detach::CHILD_ENV).is_none() {
        return detach::run(&settings).await;
    }
    super::init_logging(&settings.log);
    refuse_if_running(&settings.data_dir)?;
    let interrupted = super::interrupted();
    let mut steps = Steps::new();
    let masters = settings.masters;

    steps.begin("checking the data dir");
    check_root(&settings.data_dir)?;
    check_masters(&settings.data_dir, masters)?;
    steps.done(&format!("data dir {}", settings.data_dir.display()));

    // Ports first: a clash is reported before anything is created on disk.
    steps.begin("binding ports");
    let mut bound = Vec::new();
    for n in 1..=masters {
        let mut s = settings.clone();
        s.id = Some(n as u64);
        s.data_dir = settings.data_dir.join(format!("master-{n}"));
        s.http = nth_http(&settings.http, n)?;
        s.raft_addr = free_port_on(&settings.http);
        if n > 1 {
            // One DNS address to print; the others answer on free ports.
            s.dns.listen = settings.dns.listen.as_deref().map(free_port_on);
        }
        s.peers = BTreeMap::new();
        s.campaign_now = n == 1;
        bound.push(node::bind(s).await?);
    }
    let peers: BTreeMap<u64, String> = bound
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.raft_addr.map(|a| (i as u64 + 1, a.to_string())))
        .collect();
    steps.done(&format!("API listening on {}", bound[0].http_addr));

    steps.begin("opening storage");
    let mut nodes: Vec<Node> = Vec::new();
    for b in bound {
        match b.start(Some(peers.clone())).await {
            Ok(n) => nodes.push(n),
            Err(e) => {
                stop_all(nodes).await;
                return Err(e);
            }
        }
    }
    steps.done(&format!(
        "storage opened ({masters} master{})",
        if masters == 1 { "" } else { "s" }
    ));

    steps.begin("electing a leader");
    let first = nodes[0].master.clone().expect("up runs masters");
    if let Err(e) = first.ready(Duration::from_secs(15)).await {
        stop_all(nodes).await;
        return Err(e);
    }
    let leader = first.status().leader.unwrap_or(0);
    steps.done(&format!("leader elected: master {leader}"));

    steps.begin("registering agents");
    let masters_http: Vec<String> = nodes.iter().map(Node::advertised_http).collect();
    let agents = match start_agents(&settings, &masters_http).await {
        Ok(a) => a,
        Err(e) => {
            stop_all(nodes).await;
            return Err(e);
        }
    };
    steps.done(&format!(
        "{} agent{} registered",
        agents.len(),
        if agents.len() == 1 { "" } else { "s" }
    ));
    steps.finish();

    let data_dir = fs::canonicalize(&settings.data_dir).unwrap_or(settings.data_dir.clone());
    let state = UpState {
        pid: std::process::id(),
        start_ticks: state_file::start_ticks(std::process::id()).unwrap_or(0),
        log: std::env::var_os(detach::CHILD_ENV).map(|_| data_dir.join(state_file::LOG)),
        data_dir,
        masters: masters_http.clone(),
        agents: agents.iter().map(|a| a.http_addr.to_string()).collect(),
        dns: nodes[0].dns.as_ref().map(|d| d.addr.to_string()),
    };
    // Written before the export lines: whoever reads them may run `meso down`.
    if let Err(e) = state.write() {
        stop_all(agents).await;
        stop_all(nodes).await;
        return Err(e);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(state.exports().as_bytes())?;
    out.flush()?;
    drop(out);

    interrupted.await;
    eprintln!("stopping…");
    stop_all(agents).await;
    stop_all(nodes).await;
    UpState::remove_if_mine(&state.data_dir);
    Ok(())
}

/// One cluster per data dir: a second `meso up` would fight the first over
/// its stores.
fn refuse_if_running(data_dir: &Path) -> anyhow::Result<()> {
    if let Some(state) = UpState::read(data_dir)
        .ok()
        .flatten()
        .filter(UpState::alive)
    {
        bail!(
            "a cluster is already running from data dir {} (pid {}, API {}); stop it with `meso down`",
            data_dir.display(),
            state.pid,
            state.api()
        );
    }
    Ok(())
}

/// The ports the agents of this process offer between them: those of the
/// `--resources` override, else Mesos's default range.
fn host_ports(settings: &Settings) -> anyhow::Result<Vec<PortRange>> {
    let default = Resources {
        ports: vec![DEFAULT_PORTS],
        ..Resources::default()
    };
    Ok(match &settings.agent.resources {
        Some(text) => default.override_with(text).map_err(anyhow::Error::msg)?,
        None => default,
    }
    .ports)
}

/// Agent N works in `<data-dir>/agent-N`, on a free HTTP port, subscribed to
/// every master; returns once each has its id. The agents share one host, so
/// each offers its own slice of the port range: two tasks given the same port
/// on "different" agents would clash.
async fn start_agents(settings: &Settings, masters: &[String]) -> anyhow::Result<Vec<Node>> {
    let mut agents = Vec::new();
    let ports = host_ports(settings)?;
    for n in 1..=settings.agents {
        let mut s = settings.clone();
        s.roles = vec![Role::Agent];
        s.http = free_port_on(&settings.http);
        s.agent.masters = masters.to_vec();
        s.agent.work_dir = settings.data_dir.join(format!("agent-{n}"));
        if settings.agents > 1 {
            let share = share_of_ranges(&ports, settings.agents, n - 1);
            let given = settings.agent.resources.as_deref().unwrap_or_default();
            s.agent.resources = Some(format!("{given};ports:{}", format_ranges(&share)));
        }
        let started = match node::bind(s).await {
            Ok(b) => b.start(None).await,
            Err(e) => Err(e),
        };
        match started {
            Ok(a) => agents.push(a),
            Err(e) => {
                stop_all(agents).await;
                return Err(e);
            }
        }
    }
    for a in &agents {
        if let Some(agent) = &a.agent
            && let Err(e) = agent.registered(Duration::from_secs(15)).await
        {
            stop_all(agents).await;
            return Err(e);
        }
    }
    Ok(agents)
}

async fn stop_all(nodes: Vec<Node>) {
    futures::future::join_all(nodes.into_iter().map(Node::shutdown)).await;
}

/// Master 1 on `--http`, master N on the port N-1 above it (a free one if 0).
fn nth_http(base: &str, n: usize) -> anyhow::Result<String> {
    let (host, port) = base
        .rsplit_once(':')
        .with_context(|| format!("http: '{base}' is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("http: '{port}' in '{base}' is not a port"))?;
    if port == 0 {
        return Ok(format!("{host}:0"));
    }
    let nth = port as usize + n - 1;
    if nth > u16::MAX as usize {
        bail!("http: no room above port {port} for {n} masters");
    }
    Ok(format!("{host}:{nth}"))
}

fn free_port_on(http: &str) -> String {
    let host = http.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
    format!("{host}:0")
}

/// A data dir made by `meso up --masters N` restarts only as N masters; say so
/// in `meso up`'s own words rather than as a disagreeing `--peers`.
fn check_masters(root: &Path, masters: usize) -> anyhow::Result<()> {
    let Some(info) = crate::master::raft::storage::inspect(&root.join("master-1"))? else {
        return Ok(());
    };
    let stored = info.voters.len();
    if stored != 0 && stored != masters {
        bail!(
            "data dir {} holds a cluster of {stored} master{}; run `meso up --masters {stored}` or use another --data-dir",
            root.display(),
            if stored == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// `meso up`'s data dir holds a `master-N` directory per master and an
/// `agent-N` one per agent, and while it runs its state file (and log when
/// detached), nothing else. Checked without creating anything: the masters create their dirs once
/// every port is bound.
fn check_root(root: &Path) -> anyhow::Result<()> {
    if root.exists() && !root.is_dir() {
        bail!("data dir {} is not a directory", root.display());
    }
    if !root.exists() {
        return Ok(());
    }
    for entry in
        fs::read_dir(root).with_context(|| format!("cannot read data dir {}", root.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if [state_file::FILE, state_file::LOG].contains(&name.as_str())
            || name == format!("{}.tmp", state_file::FILE)
        {
            continue;
        }
        let ours = ["master-", "agent-"].iter().any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|n| n.parse::<u64>().is_ok())
        });
        if !ours {
            bail!(
                "data dir {} is not a meso data dir (it holds {name:?}); choose an empty or new directory",
                root.display()
            );
        }
    }
    Ok(())
}
