//! The shared vocabulary: the types every role speaks, with the JSON shapes of
//! Mesos and Marathon. Later roles add their nouns here (Resources, TaskInfo, App…).

mod agent;
mod member;
mod resources;
mod weight;

pub use agent::{AgentInfo, AgentState};
pub use member::Member;
pub use resources::{DEFAULT_PORTS, PortRange, Resources, format_ranges, parse_attributes};
pub use weight::WeightInfo;
