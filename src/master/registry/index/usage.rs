//! What each agent's live tasks hold, for the scheduler's placement views:
//! with it a view of every agent costs a pass over the agents, not over
//! every task of the cluster.
//!
//! A launch adds its task's scalars; an end sums the agent's remaining
//! tasks again (a handful, through the agent index), so the figures never
//! carry the residue of float subtractions, however long the agent lives.
//! They can still differ from a recount in the last bit (the order of the
//! sums), far below the registry's fit slack; the registry's fit sums for
//! itself, so nothing replicated depends on them.

use imbl::OrdMap;

use crate::model::TaskSpec;

/// One agent's live tasks: scalars summed, host ports sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Used {
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub ports: Vec<u16>,
}

impl Used {
    fn add(&mut self, spec: &TaskSpec) {
        self.cpus += spec.cpus;
        self.mem += spec.mem;
        self.disk += spec.disk;
        for port in &spec.ports {
            let at = self.ports.partition_point(|p| *p < port.number);
            self.ports.insert(at, port.number);
        }
    }
}

/// By agent id; an agent without live tasks has no entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage(pub OrdMap<String, Used>);

impl Usage {
    pub fn add(&mut self, spec: &TaskSpec) {
        self.0.entry(spec.agent_id.clone()).or_default().add(spec);
    }

    /// The agent's usage summed again over `left`, its live tasks.
    pub fn recount<'a>(&mut self, agent_id: &str, left: impl Iterator<Item = &'a TaskSpec>) {
        let mut used = Used::default();
        let mut any = false;
        for spec in left {
            used.add(spec);
            any = true;
        }
        if any {
            self.0.insert(agent_id.to_string(), used);
        } else {
            self.0.remove(agent_id);
        }
    }
}
