//! The records Mesos-DNS would make of the registry, as [`Entry`]s: one task's
//! ([`task_records`]) and the cluster's own ([`cluster`]: leader, masters, agents,
//! the scheduler's framework). Pure functions of what they are given; the
//! updater decides when to call them.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData};

use super::names::{canonical, domain_fragment, label};
use super::zone::Entry;
use crate::master::registry::Registry;
use crate::model::{Task, TaskState};

/// Where a task's IPs come from, tried in order; the first that has any wins
/// (Mesos-DNS's `IPSources`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSource {
    /// The container's own IPs, as the agent reported them (Docker BRIDGE).
    NetInfo,
    /// The agent's IP.
    Host,
}

impl IpSource {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "netinfo" | "container" => Ok(Self::NetInfo),
            "host" => Ok(Self::Host),
            other => Err(format!("unknown IP source '{other}'; known: netinfo, host")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::NetInfo => "netinfo",
            Self::Host => "host",
        }
    }
}

/// What record making needs besides the registry.
#[derive(Debug, Clone)]
pub struct Rules {
    /// `mesos.`
    pub domain: String,
    pub ip_sources: Vec<IpSource>,
    /// Only tasks whose checks pass (or that have none) get records.
    pub healthy_only: bool,
    /// The framework id of the built-in scheduler's tasks (named `marathon`).
    pub marathon_framework: String,
}

/// Host names resolved so far (agents and masters may advertise names).
pub type Hosts = HashMap<String, Vec<IpAddr>>;

/// The host part of `host:port` (IPv6 in brackets) and the port.
pub fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

/// The IPs of `host`: itself when it is one, else what `hosts` resolved.
pub fn ips_of(host: &str, hosts: &Hosts) -> Vec<IpAddr> {
    match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => hosts.get(host).cloned().unwrap_or_default(),
    }
}

fn address(name: &str, ip: IpAddr) -> Entry {
    Entry {
        name: name.to_string(),
        data: match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        },
    }
}

fn service(name: &str, target: &str, port: u16) -> Option<Entry> {
    let target = Name::from_ascii(target).ok()?;
    Some(Entry {
        name: name.to_string(),
        data: RData::SRV(SRV::new(0, 1, port, target)),
    })
}

/// A task's name, or its id when it has none: what its labels are made of.
pub fn task_name(task: &Task) -> &str {
    if task.spec.name.is_empty() {
        &task.spec.task_id
    } else {
        &task.spec.name
    }
}

/// A framework's name as it appears in names: the built-in scheduler's
/// tasks are `marathon`'s, tasks launched through the operator API without
/// a framework are `meso`'s, any other framework goes by its id.
/// `marathon_framework` is the built-in scheduler's framework id.
pub fn framework_name(task: &Task, marathon_framework: &str) -> String {
    match task.spec.framework_id.as_deref() {
        Some(id) if id == marathon_framework => "marathon".into(),
        Some(id) => domain_fragment(id),
        None => "meso".into(),
    }
}

/// The records of one task, or none when it should have none (not RUNNING,
/// unhealthy with `healthy_only`, on an unknown agent, a name with nothing
/// left after sanitizing).
pub fn task_records(registry: &Registry, task: &Task, rules: &Rules, hosts: &Hosts) -> Vec<Entry> {
    if task.state != TaskState::Running || (rules.healthy_only && task.healthy == Some(false)) {
        return Vec::new();
    }
    let spec = &task.spec;
    let Some(agent) = registry.agents.get(&spec.agent_id) else {
        return Vec::new();
    };
    let agent_ips = split_host_port(&agent.addr)
        .map(|(host, _)| ips_of(host, hosts))
        .unwrap_or_default();
    let t = label(task_name(task));
    let f = domain_fragment(&framework_name(task, &rules.marathon_framework));
    if t.is_empty() || f.is_empty() {
        return Vec::new();
    }
    let d = &rules.domain;
    let c = canonical(&t, &spec.task_id, &spec.agent_id);
    let task_ips = container_ips(task);
    let ips: Vec<IpAddr> = rules
        .ip_sources
        .iter()
        .map(|source| match source {
            IpSource::NetInfo => task_ips.clone(),
            IpSource::Host => agent_ips.clone(),
        })
        .find(|ips| !ips.is_empty())
        .unwrap_or_default();

    let mut out = Vec::new();
    for ip in &ips {
        out.push(address(&format!("{t}.{f}.{d}"), *ip));
        out.push(address(&format!("{c}.{f}.{d}"), *ip));
    }
    for ip in &agent_ips {
        out.push(address(&format!("{t}.{f}.slave.{d}"), *ip));
        out.push(address(&format!("{c}.{f}.slave.{d}"), *ip));
    }
    // Marathon gives its tasks a DiscoveryInfo of their ports: their SRV
    // records point at the task's own name, named ports get their own.
    // Other tasks' point at the agent's.
    let discovery = spec.run_spec.is_some();
    let slave_target = format!("{c}.{f}.slave.{d}");
    let task_target = format!("{c}.{f}.{d}");
    for port in &spec.ports {
        for proto in ["_tcp", "_udp"] {
            out.extend(service(
                &format!("_{t}.{proto}.{f}.slave.{d}"),
                &slave_target,
                port.number,
            ));
            let target = if discovery {
                &task_target
            } else {
                &slave_target
            };
            out.extend(service(
                &format!("_{t}.{proto}.{f}.{d}"),
                target,
                port.number,
            ));
            if let Some(port_name) = port.name.as_deref().map(label).filter(|n| !n.is_empty())
                && discovery
            {
                out.extend(service(
                    &format!("_{port_name}._{t}.{proto}.{f}.{d}"),
                    target,
                    port.number,
                ));
            }
        }
    }
    out
}

/// The container IPs of the task's latest RUNNING status.
fn container_ips(task: &Task) -> Vec<IpAddr> {
    task.statuses
        .iter()
        .filter(|s| s.state == TaskState::Running)
        .max_by(|a, b| a.timestamp.total_cmp(&b.timestamp))
        .map(|s| {
            s.container_ips
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Where the leader is: its IPs and HTTP port.
#[derive(Debug, Clone, PartialEq)]
pub struct Leader {
    pub ips: Vec<IpAddr>,
    pub port: u16,
}

/// The cluster's own records: `leader`, `_leader._tcp|_udp`, `master`,
/// `masterN` (by member id), `slave` and `agent` (every agent not gone),
/// `_slave._tcp`, the scheduler's `marathon` and `_framework._tcp.marathon`,
/// and the zone's name server `ns1` (this responder's IPs).
pub fn cluster(
    registry: &Registry,
    leader: Option<&Leader>,
    ns_ips: &[IpAddr],
    rules: &Rules,
    hosts: &Hosts,
) -> Vec<Entry> {
    let d = &rules.domain;
    let mut out = Vec::new();
    if let Some(leader) = leader {
        for ip in &leader.ips {
            out.push(address(&format!("leader.{d}"), *ip));
            out.push(address(&format!("marathon.{d}"), *ip));
        }
        for proto in ["_tcp", "_udp"] {
            out.extend(service(
                &format!("_leader.{proto}.{d}"),
                &format!("leader.{d}"),
                leader.port,
            ));
        }
        out.extend(service(
            &format!("_framework._tcp.marathon.{d}"),
            &format!("marathon.{d}"),
            leader.port,
        ));
    }
    let members: BTreeMap<_, _> = registry.members.iter().collect();
    for (n, member) in members.values().enumerate() {
        let Some((host, _)) = member.http_addr.as_deref().and_then(split_host_port) else {
            continue;
        };
        for ip in ips_of(host, hosts) {
            out.push(address(&format!("master.{d}"), ip));
            out.push(address(&format!("master{n}.{d}"), ip));
        }
    }
    if let Some(leader) = leader {
        // The leader is a master even before it has announced its address.
        for ip in &leader.ips {
            out.push(address(&format!("master.{d}"), *ip));
        }
    }
    for agent in registry.agents.values() {
        if agent.state == crate::model::AgentState::Gone {
            continue;
        }
        let Some((host, port)) = split_host_port(&agent.addr) else {
            continue;
        };
        for ip in ips_of(host, hosts) {
            out.push(address(&format!("slave.{d}"), ip));
            out.push(address(&format!("agent.{d}"), ip));
        }
        out.extend(service(
            &format!("_slave._tcp.{d}"),
            &format!("slave.{d}"),
            port,
        ));
    }
    for ip in ns_ips {
        out.push(address(&format!("ns1.{d}"), *ip));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentInfo, AgentState, Resources, TaskPort, TaskSpec, TaskStatus};

    fn rules(ip_sources: Vec<IpSource>, healthy_only: bool) -> Rules {
        Rules {
            domain: "mesos.".into(),
            ip_sources,
            healthy_only,
            marathon_framework: "c-0001".into(),
        }
    }

    /// A registry with agent `c-S1` at 10.0.0.5 and one RUNNING operator
    /// task `db` (no framework) with a host port, reporting `container_ips`.
    fn setup(container_ips: &[&str]) -> (Registry, Task) {
        let mut registry = Registry::default();
        registry.agents.insert(
            "c-S1".into(),
            AgentInfo {
                id: "c-S1".into(),
                key: "k".into(),
                hostname: "h".into(),
                addr: "10.0.0.5:5051".into(),
                resources: Resources::default(),
                attributes: Default::default(),
                state: AgentState::Active,
                registered_time: 1.0,
                reregistered_time: None,
                unreachable_time: None,
            },
        );
        let spec = TaskSpec {
            task_id: "db-1".into(),
            name: "db".into(),
            agent_id: "c-S1".into(),
            ports: vec![TaskPort {
                number: 31005,
                name: None,
            }],
            ..Default::default()
        };
        let mut status = TaskStatus::new("db-1", "c-S1", TaskState::Running, 2.0);
        status.container_ips = container_ips.iter().map(|s| s.to_string()).collect();
        (registry, Task::new(spec, status))
    }

    fn a_of(entries: &[Entry], name: &str) -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.name == name)
            .filter_map(|e| match &e.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ip_sources_are_tried_in_order() {
        let (registry, task) = setup(&["172.17.0.9"]);
        let hosts = Hosts::new();
        let netinfo_first = task_records(
            &registry,
            &task,
            &rules(vec![IpSource::NetInfo, IpSource::Host], false),
            &hosts,
        );
        assert_eq!(a_of(&netinfo_first, "db.meso.mesos."), ["172.17.0.9"]);
        // The .slave names are always the agent's.
        assert_eq!(a_of(&netinfo_first, "db.meso.slave.mesos."), ["10.0.0.5"]);
        let host_first = task_records(
            &registry,
            &task,
            &rules(vec![IpSource::Host, IpSource::NetInfo], false),
            &hosts,
        );
        assert_eq!(a_of(&host_first, "db.meso.mesos."), ["10.0.0.5"]);
        // No container IP: the next source.
        let (registry, task) = setup(&[]);
        let fallback = task_records(
            &registry,
            &task,
            &rules(vec![IpSource::NetInfo, IpSource::Host], false),
            &hosts,
        );
        assert_eq!(a_of(&fallback, "db.meso.mesos."), ["10.0.0.5"]);
    }

    #[test]
    fn an_operator_tasks_srv_points_at_its_agent() {
        let (registry, task) = setup(&[]);
        let entries = task_records(
            &registry,
            &task,
            &rules(vec![IpSource::Host], false),
            &Hosts::new(),
        );
        let canonical = format!(
            "db-{}-s1.meso.slave.mesos.",
            super::super::names::hash("db-1")
        );
        let srv: Vec<(String, u16)> = entries
            .iter()
            .filter(|e| e.name == "_db._tcp.meso.mesos.")
            .filter_map(|e| match &e.data {
                RData::SRV(s) => Some((s.target.to_ascii(), s.port)),
                _ => None,
            })
            .collect();
        assert_eq!(srv, [(canonical, 31005)]);
    }

    #[test]
    fn healthy_only_leaves_out_failing_tasks_and_ended_ones_have_none() {
        let (registry, mut task) = setup(&[]);
        let hosts = Hosts::new();
        task.healthy = Some(false);
        assert!(
            !task_records(
                &registry,
                &task,
                &rules(vec![IpSource::Host], false),
                &hosts
            )
            .is_empty()
        );
        assert!(
            task_records(&registry, &task, &rules(vec![IpSource::Host], true), &hosts).is_empty()
        );
        task.healthy = Some(true);
        assert!(
            !task_records(&registry, &task, &rules(vec![IpSource::Host], true), &hosts).is_empty()
        );
        task.state = TaskState::Killing;
        assert!(
            task_records(
                &registry,
                &task,
                &rules(vec![IpSource::Host], false),
                &hosts
            )
            .is_empty()
        );
    }
}
