//! Does a task fit on its agent? Scalars against what the agent's live tasks
//! leave free; host ports checked against the agent's ranges and resolved
//! (`0` → the lowest free port). Pure functions of registry state, so every
//! master decides the same.

use std::collections::BTreeSet;

use super::index::{Used, milli};
use crate::model::{AgentInfo, DockerNetwork, TaskPort, TaskSpec};

/// Why a task cannot go where it was sent.
#[derive(Debug, PartialEq)]
pub enum Misfit {
    /// Bigger than the agent could ever offer (TASK_ERROR).
    Never(String),
    /// Not free right now (TASK_DROPPED: a scheduler may try again).
    NotNow(String),
}

/// Returns the spec with every host port resolved, or why it does not fit.
#[cfg(test)]
pub fn fit<'a>(
    spec: &TaskSpec,
    agent: &AgentInfo,
    live: impl Iterator<Item = &'a crate::model::Task>,
) -> Result<TaskSpec, Misfit> {
    let mut used = Used::default();
    for task in live {
        used.add(&task.spec);
    }
    fit_used(spec, agent, &used).map(|ports| ports.resolve(spec.clone()))
}

/// The host ports a task that fits takes, as [`fit_used`] resolved them.
#[derive(Debug)]
pub struct Ports {
    ports: Vec<TaskPort>,
    /// A BRIDGE docker task: the ports are those of its port mappings.
    bridge: bool,
}

impl Ports {
    /// The spec with these ports: the task as the registry records it. It
    /// takes the spec rather than copying it: a launch moves its specs from
    /// the command into the registry.
    pub fn resolve(self, mut spec: TaskSpec) -> TaskSpec {
        if self.bridge
            && let Some(d) = spec.container.as_mut().and_then(|c| c.docker.as_mut())
        {
            for (mapping, port) in d.port_mappings.iter_mut().zip(&self.ports) {
                mapping.host_port = port.number;
            }
        }
        spec.ports = self.ports;
        spec
    }
}

/// [`fit`] against what the agent's live tasks hold (`used`, from the
/// registry's index), with scalars compared in thousandths as the index
/// keeps them.
pub fn fit_used(spec: &TaskSpec, agent: &AgentInfo, used: &Used) -> Result<Ports, Misfit> {
    let total = &agent.resources;
    for (name, want, has, used) in [
        ("cpus", spec.cpus, total.cpus, used.milli_cpus),
        ("mem", spec.mem, total.mem, used.milli_mem),
        ("disk", spec.disk, total.disk, used.milli_disk),
    ] {
        if milli(want) > milli(has) {
            return Err(Misfit::Never(format!(
                "asks for {name} {want} but agent {} has {has} in all",
                agent.id
            )));
        }
        let free = milli(has).saturating_sub(used);
        if milli(want) > free {
            return Err(Misfit::NotNow(format!(
                "asks for {name} {want} but agent {} has {} free",
                agent.id,
                free as f64 / 1000.0
            )));
        }
    }
    let bridge = spec
        .docker()
        .is_some_and(|d| d.network == DockerNetwork::Bridge && !d.port_mappings.is_empty());
    // A BRIDGE task holds the host ports of its mappings; others their `ports`.
    let mut wanted: Vec<TaskPort> = if bridge {
        spec.docker()
            .map(|d| {
                d.port_mappings
                    .iter()
                    .map(|m| TaskPort {
                        number: m.host_port,
                        name: m.name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        spec.ports.clone()
    };
    let mut used_ports: BTreeSet<u16> = if wanted.is_empty() {
        BTreeSet::new()
    } else {
        used.ports.iter().copied().collect()
    };
    let in_range = |p: u16| {
        total
            .ports
            .iter()
            .any(|r| r.begin <= u64::from(p) && u64::from(p) <= r.end)
    };
    for port in wanted.iter().filter(|p| p.number != 0) {
        if !in_range(port.number) {
            return Err(Misfit::Never(format!(
                "asks for port {} outside agent {}'s ranges",
                port.number, agent.id
            )));
        }
        if !used_ports.insert(port.number) {
            return Err(Misfit::NotNow(format!(
                "port {} is taken on agent {}",
                port.number, agent.id
            )));
        }
    }
    let mut free = total
        .ports
        .iter()
        .flat_map(|r| r.begin..=r.end)
        .filter_map(|p| u16::try_from(p).ok());
    for port in wanted.iter_mut().filter(|p| p.number == 0) {
        port.number = free
            .by_ref()
            .find(|p| !used_ports.contains(p))
            .ok_or_else(|| Misfit::NotNow(format!("agent {} has no free port left", agent.id)))?;
        used_ports.insert(port.number);
    }
    Ok(Ports {
        ports: wanted,
        bridge,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AgentState, ContainerKind, ContainerSpec, DockerSpec, PortMapping, PortRange, Resources,
        Task, TaskState,
    };

    fn agent() -> AgentInfo {
        AgentInfo {
            id: "c-S0".into(),
            key: "k".into(),
            hostname: "h".into(),
            addr: "h:1".into(),
            resources: Resources {
                cpus: 2.0,
                mem: 1024.0,
                disk: 100.0,
                ports: vec![PortRange {
                    begin: 31000,
                    end: 31002,
                }],
            },
            attributes: Default::default(),
            state: AgentState::Active,
            registered_time: 0.0,
            reregistered_time: None,
            unreachable_time: None,
        }
    }

    fn spec(cpus: f64, ports: &[u16]) -> TaskSpec {
        TaskSpec {
            task_id: "t".into(),
            agent_id: "c-S0".into(),
            cpus,
            mem: 10.0,
            ports: ports
                .iter()
                .map(|p| TaskPort {
                    number: *p,
                    name: None,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn running(spec: TaskSpec) -> Task {
        let status = crate::model::TaskStatus::new(&spec.task_id, "c-S0", TaskState::Running, 1.0);
        Task::new(spec, status)
    }

    #[test]
    fn scalars_against_total_and_free() {
        let a = agent();
        assert!(matches!(
            fit(&spec(4.0, &[]), &a, [].iter()),
            Err(Misfit::Never(_))
        ));
        let busy = [running(spec(1.5, &[]))];
        assert!(matches!(
            fit(&spec(1.0, &[]), &a, busy.iter()),
            Err(Misfit::NotNow(_))
        ));
        assert!(fit(&spec(0.5, &[]), &a, busy.iter()).is_ok());
    }

    #[test]
    fn ports_resolve_to_the_lowest_free_and_clash_otherwise() {
        let a = agent();
        let busy = [running(spec(0.1, &[31000]))];
        let got = fit(&spec(0.1, &[0, 0]), &a, busy.iter()).unwrap();
        let numbers: Vec<u16> = got.ports.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [31001, 31002]);
        assert!(matches!(
            fit(&spec(0.1, &[31000]), &a, busy.iter()),
            Err(Misfit::NotNow(_))
        ));
        assert!(matches!(
            fit(&spec(0.1, &[80]), &a, busy.iter()),
            Err(Misfit::Never(_))
        ));
        assert!(matches!(
            fit(&spec(0.1, &[0, 0, 0]), &a, busy.iter()),
            Err(Misfit::NotNow(_))
        ));
    }

    #[test]
    fn bridge_mappings_get_host_ports() {
        let mut s = spec(0.1, &[]);
        s.container = Some(ContainerSpec {
            kind: ContainerKind::Docker,
            docker: Some(DockerSpec {
                image: "busybox".into(),
                network: DockerNetwork::Bridge,
                port_mappings: vec![PortMapping {
                    host_port: 0,
                    container_port: 80,
                    protocol: "tcp".into(),
                    name: Some("http".into()),
                }],
                ..Default::default()
            }),
            volumes: vec![],
        });
        let got = fit(&s, &agent(), [].iter()).unwrap();
        assert_eq!(got.ports[0].number, 31000);
        assert_eq!(got.ports[0].name.as_deref(), Some("http"));
        assert_eq!(got.docker().unwrap().port_mappings[0].host_port, 31000);
    }
}
