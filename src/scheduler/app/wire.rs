//! The app JSON as clients send it: every field optional, scalars read
//! liberally ([`Lenient`]), deprecated fields (`ports`, `uris`, `ipAddress`,
//! `container.docker.network`/`portMappings`) still here, unknown and
//! read-only keys (`tasksRunning`, `deployments`, `tasks`, ...) ignored by
//! not being declared. Enumerations stay strings so that a bad value
//! becomes a violation with its path instead of a parse failure.
//! `normalize.rs` turns this into an [`AppDefinition`](super::AppDefinition).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::lenient::Lenient;

pub type Num = Lenient<f64>;
pub type Int = Lenient<u32>;
pub type Port = Lenient<u16>;
pub type Flag = Lenient<bool>;
pub type Text = Lenient<String>;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AppWire {
    pub id: Option<Text>,
    pub cmd: Option<String>,
    pub args: Option<Vec<Text>>,
    pub user: Option<String>,
    /// Values are checked one by one: strings only (`{secret}` is refused).
    pub env: Option<BTreeMap<String, Value>>,
    pub instances: Option<Int>,
    pub cpus: Option<Num>,
    pub mem: Option<Num>,
    pub disk: Option<Num>,
    pub gpus: Option<Int>,
    pub executor: Option<String>,
    pub constraints: Option<Vec<Vec<Text>>>,
    pub fetch: Option<Vec<FetchWire>>,
    /// Deprecated alias of `fetch`.
    pub uris: Option<Vec<String>>,
    pub backoff_seconds: Option<Int>,
    pub backoff_factor: Option<Num>,
    pub max_launch_delay_seconds: Option<Int>,
    pub container: Option<ContainerWire>,
    pub health_checks: Option<Vec<HealthCheckWire>>,
    pub readiness_checks: Option<Vec<ReadinessCheckWire>>,
    pub dependencies: Option<Vec<String>>,
    pub upgrade_strategy: Option<UpgradeStrategyWire>,
    pub labels: Option<BTreeMap<String, Text>>,
    pub accepted_resource_roles: Option<Vec<String>>,
    pub version: Option<String>,
    pub version_info: Option<VersionInfoWire>,
    pub kill_selection: Option<String>,
    /// `"disabled"` or `{inactiveAfterSeconds, expungeAfterSeconds}`.
    pub unreachable_strategy: Option<Value>,
    pub require_ports: Option<Flag>,
    pub networks: Option<Vec<NetworkWire>>,
    pub port_definitions: Option<Vec<PortDefinitionWire>>,
    /// Deprecated alias of `portDefinitions` (numbers only).
    pub ports: Option<Vec<Port>>,
    /// Deprecated IP-per-task form of `networks: [{mode: container}]`.
    pub ip_address: Option<IpAddressWire>,
    pub role: Option<String>,
    pub task_kill_grace_period_seconds: Option<Int>,
    /// Secrets need a secret store meso does not have: refused when non-empty.
    pub secrets: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FetchWire {
    pub uri: Option<String>,
    pub extract: Option<Flag>,
    pub executable: Option<Flag>,
    pub cache: Option<Flag>,
    pub dest_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerWire {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub docker: Option<DockerWire>,
    pub volumes: Option<Vec<VolumeWire>>,
    pub port_mappings: Option<Vec<PortMappingWire>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerWire {
    pub image: Option<String>,
    /// Deprecated: `BRIDGE`, `HOST`, `USER` (`NONE` is refused, as Marathon does).
    pub network: Option<String>,
    /// Deprecated: moved to `container.portMappings` in Marathon 1.5.
    pub port_mappings: Option<Vec<PortMappingWire>>,
    pub force_pull_image: Option<Flag>,
    pub privileged: Option<Flag>,
    pub parameters: Option<Vec<ParameterWire>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ParameterWire {
    pub key: Option<Text>,
    pub value: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PortMappingWire {
    pub container_port: Option<Port>,
    pub host_port: Option<Port>,
    pub service_port: Option<Port>,
    pub protocol: Option<String>,
    pub name: Option<String>,
    pub labels: Option<BTreeMap<String, Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VolumeWire {
    pub container_path: Option<String>,
    pub host_path: Option<String>,
    pub mode: Option<String>,
    pub persistent: Option<Value>,
    pub external: Option<Value>,
    pub secret: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkWire {
    pub mode: Option<String>,
    pub name: Option<String>,
    pub labels: Option<BTreeMap<String, Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PortDefinitionWire {
    pub port: Option<Port>,
    pub protocol: Option<String>,
    pub name: Option<String>,
    pub labels: Option<BTreeMap<String, Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IpAddressWire {
    pub network_name: Option<String>,
    pub labels: Option<BTreeMap<String, Text>>,
}

/// `command` is `{"value": "..."}` on the wire; a bare string is taken too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CommandWire {
    Text(String),
    Object { value: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HealthCheckWire {
    pub protocol: Option<String>,
    pub path: Option<String>,
    pub port_index: Option<Int>,
    pub port: Option<Port>,
    pub command: Option<CommandWire>,
    pub grace_period_seconds: Option<Int>,
    pub interval_seconds: Option<Int>,
    pub timeout_seconds: Option<Int>,
    pub max_consecutive_failures: Option<Int>,
    pub delay_seconds: Option<Int>,
    #[serde(rename = "ignoreHttp1xx")]
    pub ignore_http1xx: Option<Flag>,
    pub ip_protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReadinessCheckWire {
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub path: Option<String>,
    pub port_name: Option<String>,
    pub interval_seconds: Option<Int>,
    pub timeout_seconds: Option<Int>,
    pub http_status_codes_for_ready: Option<Vec<Port>>,
    pub preserve_last_response: Option<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UpgradeStrategyWire {
    pub minimum_health_capacity: Option<Num>,
    pub maximum_over_capacity: Option<Num>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UnreachableWire {
    pub inactive_after_seconds: Option<Int>,
    pub expunge_after_seconds: Option<Int>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VersionInfoWire {
    pub last_scaling_at: Option<String>,
    pub last_config_change_at: Option<String>,
}
