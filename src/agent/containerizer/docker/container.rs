//! What the engine is asked to create for a task: its name, and the create
//! body that turns a `TaskSpec` plus its `LaunchRequest` into Mesos's
//! conventions (sandbox mount, `MESOS_SANDBOX`, shell and argument rules,
//! volumes, port bindings, limits, the labels that make it ours), then the
//! app's docker parameters (parameters.rs).

use std::collections::HashMap;
use std::path::{Component, Path};

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use super::LAUNCH_FAILED;
use crate::agent::containerizer::{LaunchError, LaunchRequest};
use crate::model::{DockerNetwork, DockerSpec, TaskSpec, VolumeMode};

/// Where the sandbox appears inside every container (Mesos's path).
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";
pub const LABEL_AGENT: &str = "meso.agent";
pub const LABEL_TASK: &str = "meso.task";

/// `meso-<task_id>`, with anything docker does not allow in a name as `_`.
pub fn container_name(task_id: &str) -> String {
    let safe: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("meso-{safe}")
}

/// The create body of `spec`'s container, labelled as `agent_key`'s; a field
/// the engine could not honour is refused here, naming it.
pub(super) fn create_body(
    agent_key: &str,
    spec: &TaskSpec,
    docker_spec: &DockerSpec,
    image: &str,
    req: &LaunchRequest<'_>,
) -> Result<ContainerCreateBody, LaunchError> {
    let bad = |field: String, why: &str| LaunchError::new(LAUNCH_FAILED, format!("{field}: {why}"));

    let mut env = req.env.clone();
    // The host's sandbox path means nothing inside the container.
    env.insert("MESOS_SANDBOX".into(), SANDBOX_IN_CONTAINER.into());
    let env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();

    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_AGENT.into(), agent_key.to_string());
    labels.insert(LABEL_TASK.into(), spec.task_id.clone());

    let (entrypoint, cmd, working_dir) = match &spec.command {
        Some(c) if c.shell && c.value.is_some() => (
            Some(vec!["/bin/sh".to_string()]),
            Some(vec!["-c".to_string(), c.value.clone().unwrap_or_default()]),
            Some(SANDBOX_IN_CONTAINER.to_string()),
        ),
        Some(c) if c.value.is_some() || !c.arguments.is_empty() => (
            None,
            Some(c.value.iter().chain(&c.arguments).cloned().collect()),
            Some(SANDBOX_IN_CONTAINER.to_string()),
        ),
        _ => (None, None, None),
    };

    let mut binds = vec![format!(
        "{}:{SANDBOX_IN_CONTAINER}:rw",
        req.sandbox.display()
    )];
    let volumes = spec.container.iter().flat_map(|c| c.volumes.iter());
    for (i, v) in volumes.enumerate() {
        let host = Path::new(&v.host_path);
        let host = if host.is_absolute() {
            host.to_path_buf()
        } else if !v.host_path.is_empty()
            && host.components().all(|c| matches!(c, Component::Normal(_)))
        {
            req.sandbox.join(host)
        } else {
            return Err(bad(
                format!("container.volumes[{i}].host_path"),
                "must be absolute, or a path inside the sandbox (no '..')",
            ));
        };
        let mode = match v.mode {
            VolumeMode::RO => "ro",
            VolumeMode::RW => "rw",
        };
        binds.push(format!("{}:{}:{mode}", host.display(), v.container_path));
    }

    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Vec<PortBinding>> = HashMap::new();
    if docker_spec.network == DockerNetwork::Bridge {
        for (i, m) in docker_spec.port_mappings.iter().enumerate() {
            if m.host_port == 0 {
                return Err(bad(
                    format!("container.docker.port_mappings[{i}].host_port"),
                    "0 reached the agent unresolved (the master assigns host ports)",
                ));
            }
            // Marathon allows "udp,tcp": one binding per protocol.
            for proto in m.protocol.split(',').map(|p| p.trim().to_ascii_lowercase()) {
                if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(bad(
                        format!("container.docker.port_mappings[{i}].protocol"),
                        "must be tcp, udp or sctp",
                    ));
                }
                let key = format!("{}/{proto}", m.container_port);
                exposed.push(key.clone());
                bindings.entry(key).or_default().push(PortBinding {
                    host_ip: None,
                    host_port: Some(m.host_port.to_string()),
                });
            }
        }
    }

    // Swap as large as the limit: the task gets `mem` MB, as with Mesos's
    // cgroups, not `mem` MB plus as much again of swap (docker's default).
    let memory = (spec.mem > 0.0).then_some((spec.mem * 1024.0 * 1024.0) as i64);
    // Docker's floor for shares is 2.
    let cpu_shares = (spec.cpus > 0.0).then(|| ((spec.cpus * 1024.0).round() as i64).max(2));
    let network_mode = match docker_spec.network {
        DockerNetwork::Host => "host",
        DockerNetwork::Bridge => "bridge",
        DockerNetwork::None => "none",
    };

    let mut body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint,
        cmd,
        working_dir,
        env: Some(env),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode.into()),
            port_bindings: (!bindings.is_empty())
                .then(|| bindings.into_iter().map(|(k, v)| (k, Some(v))).collect()),
            binds: Some(binds),
            memory,
            memory_swap: memory,
            cpu_shares,
            ..Default::default()
        }),
        ..Default::default()
    };
    super::parameters::apply(docker_spec, &mut body)
        .map_err(|why| LaunchError::new(LAUNCH_FAILED, why))?;
    Ok(body)
}
