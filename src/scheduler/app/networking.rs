//! Networking, old and new, in its canonical form: `networks`, and the
//! ports that go with it (`container.portMappings` for container networking,
//! `portDefinitions` for host networking), plus the rest of `container`.
//!
//! Deprecated forms and what they become (Marathon's `AppNormalization`):
//! - `container.docker.network` → `networks` (`HOST` → host, `BRIDGE` →
//!   container/bridge, `USER` → container named by `ipAddress.networkName`;
//!   `NONE` is refused as Marathon ≥ 1.5 does);
//! - `ipAddress` alone → `networks: [{mode: container, name}]`;
//! - `container.docker.portMappings` → `container.portMappings`;
//! - `ports: [n]` → `portDefinitions: [{port: n, protocol: tcp}]` with host
//!   networking; with container networking old Marathon echoed service ports
//!   there, so they are dropped.
//!
//! Defaults: `[{mode: host}]` without networks; one `default` port
//! definition for host networking when none are given (an explicit `[]`
//! stays empty); one `default` port mapping (host port 0 in bridge mode)
//! for container networking, with a MESOS container made for an app that
//! has none. `requirePorts` only means something with host networking.

use std::collections::BTreeMap;

use super::container::{
    Container, ContainerType, Docker, DockerParameter, Network, NetworkMode, PortDefinition,
    PortMapping, Volume, VolumeMode,
};
use super::error::Problems;
use super::lenient::Lenient;
use super::normalize::{flag, texts};
use super::wire::*;

pub(super) fn networks(w: &AppWire, p: &mut Problems) -> Vec<Network> {
    let legacy = w
        .container
        .as_ref()
        .and_then(|c| c.docker.as_ref())
        .and_then(|d| d.network.as_deref())
        .map(str::to_ascii_uppercase);
    let given = w.networks.as_ref().filter(|n| !n.is_empty());
    if let Some(given) = given {
        if legacy.is_some() || w.ip_address.is_some() {
            p.add(
                "/networks",
                "give networks or the deprecated container.docker.network/ipAddress, not both",
            );
        }
        let mut out = Vec::new();
        for (i, n) in given.iter().enumerate() {
            let mode = match n.mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("container") => NetworkMode::Container,
                Some("container/bridge") => NetworkMode::ContainerBridge,
                Some("host") => NetworkMode::Host,
                Some(other) => {
                    p.add(
                        format!("/networks({i})/mode"),
                        format!("'{other}' is not one of host, container/bridge, container"),
                    );
                    continue;
                }
            };
            out.push(Network {
                mode,
                name: n.name.clone(),
                labels: texts(n.labels.clone()),
            });
        }
        return if out.is_empty() {
            vec![Network::host()]
        } else {
            out
        };
    }
    let user_network = |ip: Option<&IpAddressWire>| Network {
        mode: NetworkMode::Container,
        name: ip.and_then(|ip| ip.network_name.clone()),
        labels: texts(ip.and_then(|ip| ip.labels.clone())),
    };
    match legacy.as_deref() {
        Some("HOST") => vec![Network::host()],
        Some("BRIDGE") => vec![Network {
            mode: NetworkMode::ContainerBridge,
            name: None,
            labels: BTreeMap::new(),
        }],
        Some("USER") => vec![user_network(w.ip_address.as_ref())],
        Some("NONE") => {
            p.add(
                "/container/docker/network",
                "NONE networking is not supported (Marathon 1.5+ refuses it too)",
            );
            vec![Network::host()]
        }
        Some(other) => {
            p.add(
                "/container/docker/network",
                format!("'{other}' is not one of HOST, BRIDGE, USER"),
            );
            vec![Network::host()]
        }
        None if w.ip_address.is_some() => vec![user_network(w.ip_address.as_ref())],
        None => vec![Network::host()],
    }
}

fn protocol(raw: Option<&str>, path: &str, p: &mut Problems) -> String {
    let raw = raw.unwrap_or("tcp").to_ascii_lowercase().replace(' ', "");
    match raw.as_str() {
        "tcp" | "udp" => raw,
        "udp,tcp" | "tcp,udp" => "udp,tcp".into(),
        _ => {
            p.add(path, format!("'{raw}' is not one of tcp, udp, udp,tcp"));
            "tcp".into()
        }
    }
}

pub(super) fn container(
    cw: Option<ContainerWire>,
    host: bool,
    bridge: bool,
    p: &mut Problems,
) -> Option<Container> {
    let default_mapping = || PortMapping {
        container_port: 0,
        host_port: bridge.then_some(0),
        service_port: 0,
        protocol: "tcp".into(),
        name: Some("default".into()),
        labels: BTreeMap::new(),
    };
    let Some(mut cw) = cw else {
        // Container networking without a container: Marathon gives the app a
        // MESOS container holding the one default mapping.
        return (!host).then(|| Container {
            kind: ContainerType::Mesos,
            docker: None,
            volumes: Vec::new(),
            port_mappings: vec![default_mapping()],
        });
    };
    let kind = match cw.kind.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("DOCKER") => ContainerType::Docker,
        Some("MESOS") => ContainerType::Mesos,
        Some(other) => {
            p.add(
                "/container/type",
                format!("'{other}' is not one of DOCKER, MESOS"),
            );
            ContainerType::Docker
        }
    };
    let legacy_mappings = cw.docker.as_mut().and_then(|d| d.port_mappings.take());
    let mappings = match (legacy_mappings, cw.port_mappings) {
        (Some(legacy), Some(_)) if !legacy.is_empty() => {
            p.add(
                "/container/docker/portMappings",
                "give container.portMappings or the deprecated container.docker.portMappings, not both",
            );
            None
        }
        (_, Some(canonical)) => Some(canonical),
        (legacy, None) => legacy,
    };
    let port_mappings = match mappings {
        None if host => Vec::new(),
        None => vec![default_mapping()],
        Some(list) => {
            if host && !list.is_empty() {
                p.add(
                    "/container/portMappings",
                    "port mappings need container or container/bridge networking; \
                     with host networking use portDefinitions",
                );
            }
            list.into_iter()
                .enumerate()
                .map(|(i, m)| PortMapping {
                    container_port: m.container_port.map_or(0, |v| v.0),
                    host_port: m.host_port.map(|v| v.0).or(bridge.then_some(0)),
                    service_port: m.service_port.map_or(0, |v| v.0),
                    protocol: protocol(
                        m.protocol.as_deref(),
                        &format!("/container/portMappings({i})/protocol"),
                        p,
                    ),
                    name: m.name,
                    labels: texts(m.labels),
                })
                .collect()
        }
    };
    let docker = cw.docker.map(|d| Docker {
        image: d.image.unwrap_or_default(),
        force_pull_image: flag(d.force_pull_image, false),
        privileged: flag(d.privileged, false),
        parameters: d
            .parameters
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, param)| match (param.key, param.value) {
                (Some(k), Some(v)) => Some(DockerParameter {
                    key: k.0,
                    value: v.0,
                }),
                _ => {
                    p.add(
                        format!("/container/docker/parameters({i})"),
                        "needs a key and a value",
                    );
                    None
                }
            })
            .collect(),
    });
    let mut volumes = Vec::new();
    for (i, v) in cw.volumes.unwrap_or_default().into_iter().enumerate() {
        let at = format!("/container/volumes({i})");
        for (kind, given) in [
            ("persistent", &v.persistent),
            ("external", &v.external),
            ("secret", &v.secret),
        ] {
            if given.as_ref().is_some_and(|g| !g.is_null()) {
                p.add(
                    format!("{at}/{kind}"),
                    format!("{kind} volumes are not supported; use a host path"),
                );
            }
        }
        let mode = match v.mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("RO") => Some(VolumeMode::RO),
            Some("RW") => Some(VolumeMode::RW),
            None => {
                p.add(format!("{at}/mode"), "is required (RO or RW)");
                None
            }
            Some(other) => {
                p.add(
                    format!("{at}/mode"),
                    format!("'{other}' is not one of RO, RW"),
                );
                None
            }
        };
        let container_path = v.container_path.filter(|c| !c.is_empty());
        if container_path.is_none() {
            p.add(format!("{at}/containerPath"), "is required");
        }
        let host_path = v.host_path.filter(|h| !h.is_empty());
        if host_path.is_none() && v.persistent.is_none() && v.external.is_none() {
            p.add(format!("{at}/hostPath"), "is required");
        }
        if let (Some(container_path), Some(host_path), Some(mode)) =
            (container_path, host_path, mode)
        {
            volumes.push(Volume {
                container_path,
                host_path,
                mode,
            });
        }
    }
    Some(Container {
        kind,
        docker,
        volumes,
        port_mappings,
    })
}

pub(super) fn port_definitions(
    defs: Option<Vec<PortDefinitionWire>>,
    ports: Option<Vec<Lenient<u16>>>,
    host: bool,
    p: &mut Problems,
) -> Vec<PortDefinition> {
    let defs_given = defs.as_ref().is_some_and(|d| !d.is_empty());
    if defs_given && ports.as_ref().is_some_and(|p| !p.is_empty()) {
        p.add(
            "/ports",
            "give portDefinitions or the deprecated ports, not both",
        );
    }
    if !host {
        if defs_given {
            p.add(
                "/portDefinitions",
                "port definitions are for host networking; \
                 with container networking use container.portMappings",
            );
        }
        return Vec::new();
    }
    match (defs, ports) {
        (Some(defs), _) if defs_given => defs
            .into_iter()
            .enumerate()
            .map(|(i, d)| PortDefinition {
                port: d.port.map_or(0, |v| v.0),
                protocol: protocol(
                    d.protocol.as_deref(),
                    &format!("/portDefinitions({i})/protocol"),
                    p,
                ),
                name: d.name,
                labels: texts(d.labels),
            })
            .collect(),
        (_, Some(ports)) if !ports.is_empty() => ports
            .into_iter()
            .map(|port| PortDefinition {
                port: port.0,
                protocol: "tcp".into(),
                name: None,
                labels: BTreeMap::new(),
            })
            .collect(),
        // An explicit empty list (either spelling) means "no ports".
        (Some(_), _) | (None, Some(_)) => Vec::new(),
        (None, None) => vec![PortDefinition::default_port()],
    }
}

#[cfg(test)]
mod tests {
    use crate::scheduler::app::{AppDefinition, ContainerType, NetworkMode, PathId, test_app};
    use serde_json::json;

    #[test]
    fn legacy_docker_networking_becomes_networks_and_container_mappings() {
        let app = test_app(json!({
            "id": "web",
            "container": {"docker": {"image": "nginx", "network": "BRIDGE",
                "portMappings": [{"containerPort": 80, "hostPort": 31000, "protocol": "TCP"},
                                 {"containerPort": 443}]}},
            "ports": [10000, 10001], "requirePorts": true
        }));
        let c = app.container.as_ref().expect("container");
        assert_eq!(c.kind, ContainerType::Docker, "type defaults to DOCKER");
        assert_eq!(app.networks[0].mode, NetworkMode::ContainerBridge);
        let hosts: Vec<Option<u16>> = c.port_mappings.iter().map(|m| m.host_port).collect();
        assert_eq!(
            hosts,
            [Some(31000), Some(0)],
            "bridge hostPort defaults to 0"
        );
        assert_eq!(c.port_mappings[0].protocol, "tcp");
        assert!(
            app.port_definitions.is_empty(),
            "service ports of old bridge apps dropped"
        );
        assert!(!app.require_ports, "requirePorts is for host networking");

        let user = test_app(json!({
            "id": "u", "container": {"docker": {"image": "i", "network": "USER"}},
            "ipAddress": {"networkName": "dcos"}
        }));
        assert_eq!(user.networks[0].mode, NetworkMode::Container);
        assert_eq!(user.networks[0].name.as_deref(), Some("dcos"));
        let mapping = &user.container.as_ref().expect("c").port_mappings[0];
        assert_eq!(
            (mapping.name.as_deref(), mapping.host_port),
            (Some("default"), None)
        );

        let host = test_app(
            json!({"id": "h", "container": {"docker": {"image": "i", "network": "HOST"}},
                                "ipAddress": {"networkName": "ignored"}}),
        );
        assert!(host.is_host_networked());
        assert_eq!(host.port_definitions.len(), 1);
    }

    #[test]
    fn container_networking_without_a_container_gets_a_mesos_one() {
        let app =
            test_app(json!({"id": "x", "cmd": "c", "networks": [{"mode": "container/bridge"}]}));
        let c = app.container.expect("injected");
        assert_eq!(c.kind, ContainerType::Mesos);
        assert_eq!(c.port_mappings.len(), 1);
        assert_eq!(c.port_mappings[0].host_port, Some(0));
        let named = test_app(json!({"id": "x", "cmd": "c", "networks": [{"name": "n1"}]}));
        assert_eq!(
            named.networks[0].mode,
            NetworkMode::Container,
            "mode defaults to container"
        );
    }

    #[test]
    fn conflicting_or_unknown_networking_is_refused_with_its_path() {
        let cases = [
            (
                json!({"id": "x", "cmd": "c", "networks": [{"mode": "overlay"}]}),
                "/networks(0)/mode",
            ),
            (
                json!({"id": "x", "container": {"type": "RKT", "docker": {"image": "i"}}}),
                "/container/type",
            ),
            (
                json!({"id": "x", "container": {"docker": {"image": "i", "network": "NONE"}}}),
                "/container/docker/network",
            ),
            (
                json!({"id": "x", "container": {"docker": {"image": "i", "network": "HOST"}},
                    "networks": [{"mode": "host"}]}),
                "/networks",
            ),
            (
                json!({"id": "x", "container": {"docker": {"image": "i", "network": "BRIDGE",
                    "portMappings": [{"containerPort": 1}]}, "portMappings": []}}),
                "/container/docker/portMappings",
            ),
            (
                json!({"id": "x", "container": {"docker": {"image": "i"},
                    "volumes": [{"containerPath": "/d", "hostPath": "/h"}]}}),
                "/container/volumes(0)/mode",
            ),
            (
                json!({"id": "x", "container": {"docker": {"image": "i"},
                    "volumes": [{"containerPath": "/d", "hostPath": "/h", "mode": "RX"}]}}),
                "/container/volumes(0)/mode",
            ),
            (
                json!({"id": "x", "container": {"docker": {"image": "i"},
                    "volumes": [{"containerPath": "/d", "persistent": {"size": 1}, "mode": "RW"}]}}),
                "/container/volumes(0)/persistent",
            ),
            (
                json!({"id": "x", "cmd": "c", "portDefinitions": [{"protocol": "sctp"}]}),
                "/portDefinitions(0)/protocol",
            ),
            (
                json!({"id": "x", "cmd": "c", "ports": [1], "portDefinitions": [{"port": 2}]}),
                "/ports",
            ),
            (
                json!({"id": "x", "cmd": "c", "networks": [{"mode": "container/bridge"}],
                    "portDefinitions": [{"port": 2}]}),
                "/portDefinitions",
            ),
            (
                json!({"id": "x", "cmd": "c", "container": {"type": "MESOS",
                    "portMappings": [{"containerPort": 80}]}}),
                "/container/portMappings",
            ),
        ];
        for (body, path) in cases {
            let err = AppDefinition::from_json(&body, &PathId::root()).expect_err("refused");
            let paths: Vec<&str> = err.details().iter().map(|d| d.path.as_str()).collect();
            assert!(
                paths.contains(&path),
                "{body}: wanted {path}, got {paths:?}"
            );
        }
    }
}
