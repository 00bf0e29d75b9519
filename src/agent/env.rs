//! A task's environment, as Mesos and Marathon set it: MESOS_TASK_ID,
//! MESOS_SANDBOX, HOST, PORT0…, PORTS, PORT_<NAME>, the task's own variables
//! last. Tasks start with it; COMMAND health checks of process tasks run with it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::{ContainerKind, TaskSpec};

/// The task's environment, as Mesos and Marathon set it.
pub fn task_env(
    spec: &TaskSpec,
    sandbox: &Path,
    hostname: &str,
    agent_addr: &str,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if spec.container_kind() == ContainerKind::Mesos {
        let path = std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        env.insert("PATH".into(), path);
    }
    env.insert("MESOS_TASK_ID".into(), spec.task_id.clone());
    env.insert("MESOS_SANDBOX".into(), sandbox.display().to_string());
    env.insert("MESOS_DIRECTORY".into(), sandbox.display().to_string());
    env.insert("MESOS_AGENT_ENDPOINT".into(), agent_addr.to_string());
    env.insert("MESOS_AGENT_ID".into(), spec.agent_id.clone());
    if let Some(fw) = &spec.framework_id {
        env.insert("MESOS_FRAMEWORK_ID".into(), fw.clone());
    }
    env.insert("HOST".into(), hostname.to_string());
    let ports: Vec<String> = spec.ports.iter().map(|p| p.number.to_string()).collect();
    for (i, port) in spec.ports.iter().enumerate() {
        env.insert(format!("PORT{i}"), port.number.to_string());
        if let Some(name) = &port.name {
            let name: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            env.insert(format!("PORT_{name}"), port.number.to_string());
        }
    }
    if let Some(first) = ports.first() {
        env.insert("PORT".into(), first.clone());
    }
    if !ports.is_empty() {
        env.insert("PORTS".into(), ports.join(","));
    }
    if let Some(cmd) = &spec.command {
        env.extend(cmd.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    env
}
