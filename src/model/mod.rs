//! The shared vocabulary: the types every role speaks, with the JSON shapes of
//! Mesos and Marathon. Later roles add their nouns here.

mod agent;
mod docker_option;
pub mod health;
mod member;
mod resources;
mod task;
mod weight;

pub use agent::{AgentInfo, AgentState};
pub use docker_option::{DockerOption, DockerParameter, SUPPORTED_KEYS as DOCKER_OPTIONS};
pub use health::{CheckHealth, HealthCheckSpec, HealthProtocol, HealthReport, ReadinessCheckSpec};
pub use member::Member;
pub use resources::{
    DEFAULT_PORTS, PortRange, Resources, format_ranges, parse_attributes, share_of_ranges,
};
pub use task::{
    CommandSpec, ContainerKind, ContainerSpec, DockerNetwork, DockerSpec, FetchUri, PortMapping,
    RunSpecRef, Task, TaskPort, TaskSpec, TaskState, TaskStatus, Volume, VolumeMode,
};
pub use weight::WeightInfo;
