//! The canonical container and networking shapes of an app (Marathon ≥ 1.5):
//! `networks` at the top, `container.portMappings` beside `container.docker`,
//! never the deprecated `container.docker.network`/`portMappings`.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContainerType {
    Docker,
    /// Mesos's containerizer. Without an image it is a plain process; with a
    /// `docker.image` (Mesos's "UCR") meso runs it with the docker engine.
    Mesos,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(rename = "type")]
    pub kind: ContainerType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    pub volumes: Vec<Volume>,
    /// Only with `container` or `container/bridge` networking. Emitted even
    /// when empty: an explicit `[]` must survive a round trip, since an absent
    /// list means one default mapping.
    pub port_mappings: Vec<PortMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    pub image: String,
    pub force_pull_image: bool,
    pub privileged: bool,
    pub parameters: Vec<DockerParameter>,
}

pub use crate::model::DockerParameter;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub container_port: u16,
    /// `None`: not published on the host (container networking); `Some(0)`:
    /// a host port is picked at launch (the default in bridge mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    pub service_port: u16,
    /// `tcp`, `udp` or `udp,tcp`: the three marathon-python accepts.
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VolumeMode {
    RO,
    RW,
}

/// A host path mounted into the container (the only kind meso runs:
/// persistent, external and secret volumes are refused on input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub container_path: String,
    /// Absolute, or relative to the task's sandbox.
    pub host_path: String,
    /// Always emitted: marathon-python fails on a volume without one.
    pub mode: VolumeMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NetworkMode {
    #[serde(rename = "host")]
    Host,
    #[serde(rename = "container/bridge")]
    ContainerBridge,
    /// A named (CNI/user) network. meso has none: tasks run on docker's
    /// bridge, see `task.rs`.
    #[serde(rename = "container")]
    Container,
}

impl NetworkMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::ContainerBridge => "container/bridge",
            Self::Container => "container",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub mode: NetworkMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Network {
    pub fn host() -> Self {
        Self {
            mode: NetworkMode::Host,
            name: None,
            labels: BTreeMap::new(),
        }
    }
}

/// A port of a host-networked app. `port` is the service port (0: assigned
/// when the app is stored); it is also the host port when `requirePorts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    pub port: u16,
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl PortDefinition {
    /// Marathon's default for a host-networked app that names no ports.
    pub fn default_port() -> Self {
        Self {
            port: 0,
            protocol: "tcp".into(),
            name: Some("default".into()),
            labels: BTreeMap::new(),
        }
    }
}
