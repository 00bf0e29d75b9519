//! Reading what the engine says about a container (an inspect response): is
//! it running, where is its sandbox, which IPs has it, and how did it end.

use std::path::PathBuf;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};

use super::SANDBOX_IN_CONTAINER;
use crate::agent::containerizer::Exit;

const MEMORY_LIMIT: &str = "REASON_CONTAINER_LIMITATION_MEMORY";

pub(super) fn is_running(info: &ContainerInspectResponse) -> bool {
    info.state.as_ref().and_then(|s| s.running).unwrap_or(false)
}

/// The host directory mounted at the sandbox path: the task's sandbox.
pub(super) fn sandbox_of(info: &ContainerInspectResponse) -> Option<PathBuf> {
    info.mounts
        .iter()
        .flatten()
        .find(|m| m.destination.as_deref() == Some(SANDBOX_IN_CONTAINER))
        .and_then(|m| m.source.as_ref().map(PathBuf::from))
}

pub(super) fn container_ips(info: &ContainerInspectResponse) -> Vec<String> {
    let networks = info
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref());
    networks
        .into_iter()
        .flat_map(|n| n.values())
        .filter_map(|e| e.ip_address.clone().filter(|ip| !ip.is_empty()))
        .collect()
}

pub(super) fn exit_of(info: &ContainerInspectResponse, name: &str) -> Exit {
    let state = info.state.clone().unwrap_or_default();
    if state.status == Some(ContainerStateStatusEnum::CREATED) {
        return Exit {
            message: format!("container {name} was created but never started"),
            ..Exit::default()
        };
    }
    let code = state.exit_code.and_then(|c| i32::try_from(c).ok());
    let engine_error = state.error.filter(|e| !e.is_empty());
    let mut message = match code {
        Some(c) if c > 128 && c < 160 => {
            format!(
                "exited with status {c} (signal {}: docker reports 128 + signal)",
                c - 128
            )
        }
        Some(c) => format!("exited with status {c}"),
        None => "ended with no exit status".to_string(),
    };
    let mut reason = None;
    if state.oom_killed == Some(true) {
        reason = Some(MEMORY_LIMIT.to_string());
        let limit = info
            .host_config
            .as_ref()
            .and_then(|h| h.memory)
            .unwrap_or(0);
        message = format!(
            "container exceeded its memory limit ({} MB) and was killed by the OOM killer; {message}",
            limit / (1024 * 1024)
        );
    }
    if let Some(e) = engine_error {
        message.push_str(&format!("; docker: {e}"));
    }
    Exit {
        code,
        signal: None,
        reason,
        message,
    }
}
