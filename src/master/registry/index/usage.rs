//! What each agent's live tasks hold: the registry's fit checks a launch
//! against it, and the scheduler's placement views read it, so neither
//! passes over an agent's tasks (the fit's own pass was a sixth of a
//! follower's CPU at 10,000 agents: BENCHMARKS.md, Scale).
//!
//! Scalars are kept as Mesos keeps them, in thousandths (`Value::Scalar`
//! holds three decimal digits): sums of integers are exact in any order, so
//! the running sum here is bit for bit the recount of a master restored from
//! a snapshot, and what `apply` decides from it is the same on every master.
//! A launch adds its task and an end takes it away: exact, so nothing is
//! ever summed again.

use std::sync::Arc;

use imbl::OrdMap;

use crate::model::TaskSpec;

/// A scalar resource in thousandths, rounded as Mesos rounds it; NaN and
/// negatives (refused by validation before) count nothing.
pub fn milli(x: f64) -> u64 {
    (x * 1000.0).round().max(0.0) as u64
}

/// One agent's live tasks: how many, scalars summed in thousandths, host
/// ports sorted (a port two tasks hold is there twice).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Used {
    pub tasks: usize,
    pub milli_cpus: u64,
    pub milli_mem: u64,
    pub milli_disk: u64,
    pub ports: Vec<u16>,
}

/// What an agent without live tasks holds.
pub static NOTHING: Used = Used {
    tasks: 0,
    milli_cpus: 0,
    milli_mem: 0,
    milli_disk: 0,
    ports: Vec::new(),
};

impl Used {
    pub fn add(&mut self, spec: &TaskSpec) {
        self.tasks += 1;
        self.milli_cpus += milli(spec.cpus);
        self.milli_mem += milli(spec.mem);
        self.milli_disk += milli(spec.disk);
        for port in &spec.ports {
            let at = self.ports.partition_point(|p| *p < port.number);
            self.ports.insert(at, port.number);
        }
    }

    pub fn cpus(&self) -> f64 {
        self.milli_cpus as f64 / 1000.0
    }

    pub fn mem(&self) -> f64 {
        self.milli_mem as f64 / 1000.0
    }

    pub fn disk(&self) -> f64 {
        self.milli_disk as f64 / 1000.0
    }
}

/// By agent id (shared, as `by_agent`'s are); an agent without live tasks
/// has no entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage(pub OrdMap<Arc<str>, Used>);

impl Usage {
    /// What the live tasks of `agent_id` hold.
    pub fn of(&self, agent_id: &str) -> &Used {
        self.0.get(agent_id).unwrap_or(&NOTHING)
    }

    pub fn add(&mut self, spec: &TaskSpec) {
        match self.0.get_mut(spec.agent_id.as_str()) {
            Some(used) => used.add(spec),
            None => {
                let mut used = Used::default();
                used.add(spec);
                self.0.insert(Arc::from(spec.agent_id.as_str()), used);
            }
        }
    }

    /// A live task `spec` ended: what it held is taken away, and an agent
    /// left without tasks loses its entry.
    pub fn remove(&mut self, spec: &TaskSpec) {
        let Some(used) = self.0.get_mut(spec.agent_id.as_str()) else {
            return;
        };
        used.tasks = used.tasks.saturating_sub(1);
        if used.tasks == 0 {
            self.0.remove(spec.agent_id.as_str());
            return;
        }
        used.milli_cpus = used.milli_cpus.saturating_sub(milli(spec.cpus));
        used.milli_mem = used.milli_mem.saturating_sub(milli(spec.mem));
        used.milli_disk = used.milli_disk.saturating_sub(milli(spec.disk));
        for port in &spec.ports {
            if let Ok(at) = used.ports.binary_search(&port.number) {
                used.ports.remove(at);
            }
        }
    }
}
