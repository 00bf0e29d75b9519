//! Node configuration: flags, `MESO_*` environment variables and YAML files, in
//! that order of precedence, over built-in defaults.
//!
//! A YAML file comes from `--config FILE` or `--preset NAME|FILE` (the presets
//! `local`, `ci` and `ha` are compiled in from `presets/`, so they work from any
//! directory; a preset is read first and a `--config` file over it). Every key is
//! known: an unknown one is refused with its path and the file's name.
//! `presets/prod-node.yaml` is not built in: it is a commented template of a
//! production node, to copy and pass with `--config` (a test reads every file
//! in `presets/` with this schema).
//!
//! Keys (all optional):
//!
//! | key | flag | env | default |
//! |---|---|---|---|
//! | `cluster` | `--cluster` | `MESO_CLUSTER` | `meso` |
//! | `data_dir` | `--data-dir` | `MESO_DATA_DIR` | `./.meso` |
//! | `http` | `--http` | `MESO_HTTP` | `127.0.0.1:5050` |
//! | `hostname` | `--hostname` | `MESO_HOSTNAME` | the machine's hostname |
//! | `log` | `--log` | `MESO_LOG` | `info` (`warn` for `meso up`) |
//! | `masters` | `--masters` | `MESO_MASTERS` | 1 (`meso up` only) |
//! | `id` | `--id` | `MESO_ID` | 1, or the store's, or the leader's choice on `--join` |
//! | `peers` | `--peers` | `MESO_PEERS` | `ID=HOST:PORT,...` Raft addresses; none: this master alone |
//! | `raft_addr` | `--raft` | `MESO_RAFT` | this id's entry in `peers`, else the HTTP host on port 5052 (0 if HTTP's port is 0) |
//! | `join` | `--join` | `MESO_JOIN` | HTTP address of a running member to join |
//! | `roles` | `--roles` | `MESO_ROLES` | `master` |
//! | `agents` | `--agents` | `MESO_AGENTS` | 1 (`meso up` only: in-process agents) |
//! | `master` | `--master` | `MESOS_MASTER` | `127.0.0.1:5050` (agents: masters to subscribe to, comma-separated) |
//! | `work_dir` | `--work-dir` | `MESO_WORK_DIR` | `./.meso-agent` (agents: sandboxes and the agent's identity) |
//! | `resources` | `--resources` | `MESO_RESOURCES` | detected; Mesos syntax `cpus:4;mem:2048;disk:10000;ports:[31000-32000]` |
//! | `attributes` | `--attributes` | `MESO_ATTRIBUTES` | none; `rack:r1;zone:a` |
//! | `gc_delay_secs` | | | 604800 (a week: sandboxes of ended tasks are removed after this) |
//! | `gc_disk_usage` | | | 0.9 (above this fraction of the work dir's disk in use, sooner, oldest first) |
//! | `agent_heartbeat_ms` | | | 5000 (how often master and agent say they are alive) |
//! | `agent_timeout_ms` | | | 45000 (silence after which the master marks an agent unreachable) |
//! | `dns` | `--dns` | `MESO_DNS` | the HTTP host, port 8053 (0 if HTTP's port is 0); `off`: no DNS (masters: Mesos-DNS names over UDP and TCP) |
//! | `dns_domain` | `--dns-domain` | `MESO_DNS_DOMAIN` | `mesos` |
//! | `dns_resolvers` | `--dns-resolvers` | `MESO_DNS_RESOLVERS` | those of `/etc/resolv.conf`; `IP[:PORT],...` for names outside the domain; `none`: REFUSED |
//! | `dns_ttl` | | | 60 (seconds, every record) |
//! | `dns_ip_sources` | | | `netinfo,host` (a task's IPs: the container's, else the agent's) |
//! | `dns_healthy_only` | | | false (true: only tasks whose health checks pass get records) |
//! | `raft.tick_ms` | | | 10 |
//! | `raft.election_ticks` | | | 20 (elections after 20–40 ticks of silence: 200–400 ms) |
//! | `raft.heartbeat_ticks` | | | 5 |
//! | `raft.snapshot_every` | | | 10000 entries between snapshots, at least (and as many bytes of log as the last snapshot; a log of 64 MiB or 10× this many entries is compacted regardless) |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde::Deserialize;

use crate::agent::GcPolicy;
pub use crate::dns::settings::DnsFlags;
use crate::dns::settings::{DnsFileKeys, DnsSettings};
use crate::master::AgentTimers;
use crate::master::raft::RaftOptions;
use crate::model::{Resources, parse_attributes};

const BUILTIN_PRESETS: &[(&str, &str)] = &[
    ("local", include_str!("../presets/local.yaml")),
    ("ci", include_str!("../presets/ci.yaml")),
    ("ha", include_str!("../presets/ha.yaml")),
];

/// The flags every node-starting command shares (each also read from `MESO_*`).
#[derive(Debug, Clone, Default, Args)]
pub struct NodeFlags {
    /// YAML configuration file (keys as in `presets/`)
    #[arg(long, env = "MESO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A built-in preset (local, ci, ha) or a YAML file, read before --config
    #[arg(long, env = "MESO_PRESET", value_name = "NAME|FILE")]
    pub preset: Option<String>,
    /// Cluster name, shown as `cluster` in /master/state
    #[arg(long, env = "MESO_CLUSTER")]
    pub cluster: Option<String>,
    /// Where this node keeps its state
    #[arg(long, env = "MESO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address (port 0 picks a free port)
    #[arg(long, env = "MESO_HTTP", value_name = "ADDR")]
    pub http: Option<String>,
    /// Hostname this node advertises
    #[arg(long, env = "MESO_HOSTNAME")]
    pub hostname: Option<String>,
    /// Log filter (error, warn, info, debug, or a tracing filter)
    #[arg(long, env = "MESO_LOG")]
    pub log: Option<String>,
}

/// Flags of an agent (`meso agent`, `meso node`).
#[derive(Debug, Clone, Default, Args)]
pub struct AgentFlags {
    /// Masters to subscribe to (HTTP addresses, comma-separated; any member works)
    #[arg(long, env = "MESOS_MASTER", value_name = "ADDR[,ADDR...]")]
    pub master: Option<String>,
    /// Where the agent keeps sandboxes and its identity
    #[arg(long, env = "MESO_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Resources to advertise, in Mesos syntax (overrides what is detected)
    #[arg(long, env = "MESO_RESOURCES")]
    pub resources: Option<String>,
    /// Attributes, e.g. "rack:r1;zone:a"
    #[arg(long, env = "MESO_ATTRIBUTES")]
    pub attributes: Option<String>,
}

/// Flags of a master (`meso master`, `meso node`).
#[derive(Debug, Clone, Default, Args)]
pub struct MasterFlags {
    /// This master's id in the Raft group
    #[arg(long, env = "MESO_ID")]
    pub id: Option<u64>,
    /// Static membership: ID=HOST:PORT of every master's Raft address, comma-separated
    #[arg(long, env = "MESO_PEERS", value_name = "ID=ADDR,...")]
    pub peers: Option<String>,
    /// Raft listen address
    #[arg(long = "raft", env = "MESO_RAFT", value_name = "ADDR")]
    pub raft_addr: Option<String>,
    /// Join the running cluster that answers at this HTTP address
    #[arg(long, env = "MESO_JOIN", value_name = "ADDR")]
    pub join: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    cluster: Option<String>,
    data_dir: Option<PathBuf>,
    http: Option<String>,
    hostname: Option<String>,
    log: Option<String>,
    masters: Option<usize>,
    id: Option<u64>,
    peers: Option<String>,
    raft_addr: Option<String>,
    join: Option<String>,
    roles: Option<String>,
    agents: Option<usize>,
    master: Option<String>,
    work_dir: Option<PathBuf>,
    resources: Option<String>,
    attributes: Option<String>,
    agent_heartbeat_ms: Option<u64>,
    agent_timeout_ms: Option<u64>,
    gc_delay_secs: Option<f64>,
    gc_disk_usage: Option<f64>,
    dns: Option<String>,
    dns_domain: Option<String>,
    dns_resolvers: Option<String>,
    dns_ttl: Option<u32>,
    dns_ip_sources: Option<String>,
    dns_healthy_only: Option<bool>,
    #[serde(default)]
    raft: RaftFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RaftFile {
    tick_ms: Option<u64>,
    election_ticks: Option<usize>,
    heartbeat_ticks: Option<usize>,
    snapshot_every: Option<u64>,
}

/// The roles a node can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Agent,
}

/// What an agent needs beyond the node's settings.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub masters: Vec<String>,
    pub work_dir: PathBuf,
    /// Mesos-syntax override of the detected resources, checked at resolve.
    pub resources: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub gc: GcPolicy,
}

/// A node's configuration after every layer is applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cluster: String,
    pub data_dir: PathBuf,
    pub http: String,
    pub hostname: String,
    pub log: String,
    pub masters: usize,
    pub id: Option<u64>,
    pub peers: BTreeMap<u64, String>,
    pub raft_addr: String,
    pub join: Option<String>,
    pub roles: Vec<Role>,
    pub raft: RaftOptions,
    /// Set by `meso up` for its first master; see `MasterOptions::campaign_now`.
    pub campaign_now: bool,
    pub agents: usize,
    pub agent: AgentSettings,
    pub agent_timers: AgentTimers,
    pub dns: DnsSettings,
}

/// What a command adds to the shared flags.
#[derive(Debug, Default)]
pub struct Extra {
    pub master: MasterFlags,
    pub agent: AgentFlags,
    pub dns: DnsFlags,
    pub agents: Option<usize>,
    pub masters: Option<usize>,
    pub roles: Option<String>,
    pub default_log: &'static str,
    pub default_preset: Option<&'static str>,
}

impl Settings {
    pub fn resolve(flags: &NodeFlags, extra: Extra) -> anyhow::Result<Self> {
        let mut layers = Vec::new();
        if let Some(preset) = flags.preset.as_deref().or(extra.default_preset) {
            layers.push(preset_text(preset)?);
        }
        if let Some(path) = &flags.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            layers.push((path.display().to_string(), text));
        }
        let file = merge_files(&layers)?;
        let m = &extra.master;
        let http = flags
            .http
            .clone()
            .or(file.http.clone())
            .unwrap_or_else(|| "127.0.0.1:5050".into());
        let dns = DnsSettings::resolve(
            &extra.dns,
            DnsFileKeys {
                dns: file.dns.clone(),
                dns_domain: file.dns_domain.clone(),
                dns_resolvers: file.dns_resolvers.clone(),
                dns_ttl: file.dns_ttl,
                dns_ip_sources: file.dns_ip_sources.clone(),
                dns_healthy_only: file.dns_healthy_only,
            },
            &http,
        )?;
        let peers_text = m.peers.clone().or(file.peers);
        let peers = match &peers_text {
            Some(text) => parse_peers(text)?,
            None => BTreeMap::new(),
        };
        let id = m.id.or(file.id);
        let raft_addr = m
            .raft_addr
            .clone()
            .or(file.raft_addr)
            .or_else(|| id.or(Some(1)).and_then(|i| peers.get(&i).cloned()))
            .unwrap_or_else(|| default_raft_addr(&http));
        let roles = parse_roles(
            extra
                .roles
                .as_deref()
                .or(file.roles.as_deref())
                .unwrap_or("master"),
        )?;
        let masters = extra.masters.or(file.masters).unwrap_or(1);
        if masters == 0 {
            bail!("masters: must be at least 1");
        }
        let raft = RaftOptions {
            tick: Duration::from_millis(file.raft.tick_ms.unwrap_or(10).max(1)),
            election_ticks: file.raft.election_ticks.unwrap_or(20),
            heartbeat_ticks: file.raft.heartbeat_ticks.unwrap_or(5),
            snapshot_every: file.raft.snapshot_every.unwrap_or(10_000).max(1),
        };
        if raft.heartbeat_ticks == 0 || raft.election_ticks <= raft.heartbeat_ticks {
            bail!(
                "raft.election_ticks must be greater than raft.heartbeat_ticks, which must be at least 1"
            );
        }
        let a = &extra.agent;
        let masters_text = a
            .master
            .clone()
            .or(file.master)
            .unwrap_or_else(|| "127.0.0.1:5050".into());
        let agent_masters: Vec<String> = masters_text
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect();
        if agent_masters.is_empty() {
            bail!("master: name at least one master address");
        }
        let resources = a.resources.clone().or(file.resources);
        if let Some(text) = &resources {
            Resources::default()
                .override_with(text)
                .map_err(|e| anyhow!(e))?;
        }
        let attributes =
            parse_attributes(&a.attributes.clone().or(file.attributes).unwrap_or_default())
                .map_err(|e| anyhow!(e))?;
        let agent_timers = AgentTimers {
            heartbeat: Duration::from_millis(file.agent_heartbeat_ms.unwrap_or(5_000).max(10)),
            timeout: Duration::from_millis(file.agent_timeout_ms.unwrap_or(45_000).max(10)),
        };
        if agent_timers.timeout <= agent_timers.heartbeat {
            bail!("agent_timeout_ms must be longer than agent_heartbeat_ms");
        }
        Ok(Self {
            dns,
            agents: extra.agents.or(file.agents).unwrap_or(1),
            agent: AgentSettings {
                masters: agent_masters,
                work_dir: absolute(
                    "work dir",
                    a.work_dir
                        .clone()
                        .or(file.work_dir)
                        .unwrap_or_else(|| PathBuf::from("./.meso-agent")),
                )?,
                resources,
                attributes,
                gc: GcPolicy {
                    delay: Duration::from_secs_f64(
                        file.gc_delay_secs.unwrap_or(604_800.0).max(0.0),
                    ),
                    disk_usage: file.gc_disk_usage.unwrap_or(0.9).clamp(0.0, 1.0),
                },
            },
            agent_timers,
            cluster: flags
                .cluster
                .clone()
                .or(file.cluster)
                .unwrap_or_else(|| "meso".into()),
            data_dir: absolute(
                "data dir",
                flags
                    .data_dir
                    .clone()
                    .or(file.data_dir)
                    .unwrap_or_else(|| PathBuf::from("./.meso")),
            )?,
            http,
            hostname: flags
                .hostname
                .clone()
                .or(file.hostname)
                .unwrap_or_else(system_hostname),
            log: flags
                .log
                .clone()
                .or(file.log)
                .unwrap_or_else(|| extra.default_log.into()),
            masters,
            id,
            peers,
            raft_addr,
            join: m.join.clone().or(file.join),
            roles,
            raft,
            campaign_now: false,
        })
    }
}

/// Reads each YAML layer (checking it against the schema, so an error names
/// its file), lays them over one another key by key (nested maps merge, a later
/// value wins, an empty one is ignored), and reads the result once.
fn merge_files(layers: &[(String, String)]) -> anyhow::Result<FileConfig> {
    let mut merged = yaml_serde::Value::Mapping(Default::default());
    for (origin, text) in layers {
        parse_file(text, origin)?;
        let value: yaml_serde::Value =
            yaml_serde::from_str(text).map_err(|e| anyhow!("config {origin}: {e}"))?;
        lay_over(&mut merged, value);
    }
    yaml_serde::from_value(merged).map_err(|e| anyhow!("config: {e}"))
}

fn lay_over(base: &mut yaml_serde::Value, over: yaml_serde::Value) {
    use yaml_serde::Value;
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => lay_over(existing, value),
                    None if !value.is_null() => {
                        base.insert(key, value);
                    }
                    None => {}
                }
            }
        }
        (_, Value::Null) => {}
        (base, over) => *base = over,
    }
}

fn preset_text(preset: &str) -> anyhow::Result<(String, String)> {
    if let Some((name, text)) = BUILTIN_PRESETS.iter().find(|(n, _)| *n == preset) {
        return Ok((format!("preset {name}"), text.to_string()));
    }
    let path = Path::new(preset);
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read preset file {}", path.display()))?;
        return Ok((path.display().to_string(), text));
    }
    let names: Vec<&str> = BUILTIN_PRESETS.iter().map(|(n, _)| *n).collect();
    bail!(
        "unknown preset '{preset}': not a built-in one ({}) nor a file",
        names.join(", ")
    )
}

fn parse_file(text: &str, origin: &str) -> anyhow::Result<FileConfig> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let de = yaml_serde::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow!("config {origin}: {inner}")
        } else {
            anyhow!("config {origin}: {path}: {inner}")
        }
    })
}

/// `1=10.0.0.1:5052,2=10.0.0.2:5052` into ids and addresses.
pub fn parse_peers(text: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut peers = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("peers: '{part}' is not ID=HOST:PORT"))?;
        let id: u64 = id.trim().parse().ok().filter(|i| *i > 0).ok_or_else(|| {
            anyhow!("peers: '{id}' in '{part}' is not a master id (a number from 1)")
        })?;
        let addr = addr.trim();
        if addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            bail!("peers: '{addr}' in '{part}' is not HOST:PORT");
        }
        if peers.insert(id, addr.to_string()).is_some() {
            bail!("peers: master {id} is named twice");
        }
    }
    Ok(peers)
}

fn parse_roles(text: &str) -> anyhow::Result<Vec<Role>> {
    let mut roles = Vec::new();
    let mut with_master = Vec::new();
    for r in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match r {
            "master" => roles.push(Role::Master),
            "agent" => roles.push(Role::Agent),
            // Every master runs the scheduler and DNS; naming them is allowed.
            "scheduler" | "dns" => with_master.push(r),
            other => bail!("roles: unknown role '{other}'; known: master, agent, scheduler, dns"),
        }
    }
    if let Some(r) = with_master.first()
        && !roles.contains(&Role::Master)
    {
        bail!("roles: '{r}' runs on masters; add master (e.g. master,{r})");
    }
    if roles.is_empty() {
        bail!("roles: name at least one role");
    }
    roles.dedup();
    Ok(roles)
}

fn default_raft_addr(http: &str) -> String {
    match http.rsplit_once(':') {
        Some((host, "0")) => format!("{host}:0"),
        Some((host, _)) => format!("{host}:5052"),
        None => "127.0.0.1:5052".into(),
    }
}

/// Directories are made absolute once, here: every path derived from them
/// (sandboxes, the task launcher's, which runs from `/`) must mean the same
/// from any directory; a relative work dir failed every process task.
fn absolute(what: &str, dir: PathBuf) -> anyhow::Result<PathBuf> {
    std::path::absolute(&dir).with_context(|| format!("{what} {}", dir.display()))
}

fn system_hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_presets_parse() {
        for (name, text) in BUILTIN_PRESETS {
            parse_file(text, name).unwrap();
        }
    }

    /// Built in or not (`prod-node.yaml` is a template to copy), every file
    /// in presets/ is read by the one schema, and resolves.
    #[test]
    fn every_preset_file_parses_and_resolves() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            parse_file(&text, &path.display().to_string()).unwrap();
            let flags = NodeFlags {
                config: Some(path.clone()),
                ..Default::default()
            };
            Settings::resolve(&flags, Extra::default())
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            seen += 1;
        }
        assert!(seen >= 4, "local, ci, ha and prod-node");
        let prod = NodeFlags {
            config: Some(dir.join("prod-node.yaml")),
            ..Default::default()
        };
        let s = Settings::resolve(&prod, Extra::default()).unwrap();
        assert_eq!(s.roles, vec![Role::Master, Role::Agent]);
        assert_eq!(s.peers.len(), 3);
        assert_eq!(s.raft_addr, "10.0.0.1:5052", "this id's entry in peers");
        assert_eq!(s.agent.masters.len(), 3);
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        let err = parse_file("raft:\n  tikc_ms: 5\n", "my.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("my.yaml"), "{err}");
        assert!(err.contains("tikc_ms"), "{err}");
        let err = parse_file("colour: blue\n", "x.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour") && err.contains("x.yaml"), "{err}");
    }

    #[test]
    fn flags_beat_files_and_files_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.yaml");
        std::fs::write(
            &cfg,
            "cluster: fromfile\nhttp: 127.0.0.1:7000\nraft:\n  tick_ms: 7\n",
        )
        .unwrap();
        let flags = NodeFlags {
            config: Some(cfg),
            http: Some("127.0.0.1:7001".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&flags, Extra::default()).unwrap();
        assert_eq!(s.http, "127.0.0.1:7001");
        assert_eq!(s.cluster, "fromfile");
        assert_eq!(s.raft.tick, Duration::from_millis(7));
        assert_eq!(s.raft_addr, "127.0.0.1:5052");
    }

    #[test]
    fn every_key_of_a_preset_reaches_the_settings() {
        let s = Settings::resolve(
            &NodeFlags {
                preset: Some("ci".into()),
                ..Default::default()
            },
            Extra::default(),
        )
        .unwrap();
        assert_eq!(s.agent_timers.timeout, Duration::from_millis(2000));
        assert_eq!(s.agent_timers.heartbeat, Duration::from_millis(500));
        assert_eq!(s.agents, 2);
        assert_eq!(s.cluster, "meso-ci");
        assert_eq!(s.raft.election_ticks, 50);
    }

    #[test]
    fn peers_are_checked() {
        let p = parse_peers("1=a:1, 2=b:2").unwrap();
        assert_eq!(p.get(&2).map(String::as_str), Some("b:2"));
        assert!(
            parse_peers("1=a")
                .unwrap_err()
                .to_string()
                .contains("HOST:PORT")
        );
        assert!(parse_peers("x=a:1").is_err());
        assert!(
            parse_peers("1=a:1,1=b:2")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
