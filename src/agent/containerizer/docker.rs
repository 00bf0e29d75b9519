//! The docker containerizer: one container per task, on the local Docker engine
//! (bollard over the unix socket).
//!
//! ```text
//!  launch ─▶ image present? ──no / force_pull──▶ pull ─(fails)─▶ LaunchError
//!        ─▶ create `meso-<task_id>` ─(name taken by our stale one)─▶ rm -f, create
//!        ─▶ start ─▶ log pump ─▶ Launched{Docker{id, name}, bridge IPs}
//!  log pump: GET /logs?follow ─▶ <sandbox>/stdout, <sandbox>/stderr (append)
//!  wait   ─▶ (pump, if none: a recovered handle) ─▶ POST /wait ─▶ inspect
//!        ─▶ pump drained ─▶ Exit{code, OOMKilled → REASON_CONTAINER_LIMITATION_MEMORY}
//!  kill   ─▶ docker stop -t ⌈grace⌉ (SIGTERM … SIGKILL)
//!  ours   ─▶ containers labelled meso.agent=<agent key>, exited ones too
//!  cleanup ─▶ docker rm -f
//! ```
//!
//! Mesos's conventions, so that Marathon apps run unchanged: the sandbox is
//! bind-mounted at `/mnt/mesos/sandbox` and `MESOS_SANDBOX` points there; a
//! `shell` command runs as entrypoint `/bin/sh` with `-c <value>` (the image's
//! entrypoint is replaced, as Mesos does); a non-shell command keeps the image's
//! entrypoint and passes `value` (if any) then every `arguments` entry as its Cmd
//! (so Marathon's `args` reach the entrypoint; unlike process tasks, `arguments`
//! carries no argv\[0\]). With a command the working directory is the sandbox, as
//! in Mesos, so `./fetched-script` works; without one the image runs as
//! `docker run` would, in its own WORKDIR.
//!
//! Nothing here is kept only in memory that a restarted agent would need: the
//! handle names the container, and the sandbox is read back from the
//! container's own mount. Output written while no agent was copying it (between
//! an agent's death and the `wait` of its successor, plus up to one second,
//! since docker's `since` counts whole seconds) stays in `docker logs` but is
//! not copied into the sandbox: the successor follows from then on, so that
//! nothing already in the files is written twice.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, HostConfig,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::io::AsyncWriteExt;

use super::{ContainerHandle, Containerizer, Exit, LaunchError, LaunchRequest, Launched};
use crate::model::{DockerNetwork, DockerSpec, TaskSpec, VolumeMode};

/// Where the sandbox appears inside every container (Mesos's path).
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";
pub const LABEL_AGENT: &str = "meso.agent";
pub const LABEL_TASK: &str = "meso.task";

const PREPARATION_FAILED: &str = "REASON_CONTAINER_PREPARATION_FAILED";
const LAUNCH_FAILED: &str = "REASON_CONTAINER_LAUNCH_FAILED";
const MEMORY_LIMIT: &str = "REASON_CONTAINER_LIMITATION_MEMORY";
/// How long `connect` waits for the engine to answer a ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `wait` lets the log pump drain after the container ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A log pump's completion, awaited by whoever waits on its container.
type PumpDone = Shared<BoxFuture<'static, ()>>;

/// A running log pump: its completion, and the means to stop it.
struct Pump {
    done: PumpDone,
    abort: tokio::task::AbortHandle,
}

pub struct DockerContainerizer {
    docker: Docker,
    pub agent_key: String,
    /// Running log pumps by container id. A pump removes itself when its
    /// stream ends (the container stopped, or the engine went away), and
    /// stops when the containerizer is dropped, as it would with the agent.
    pumps: Arc<Mutex<HashMap<String, Pump>>>,
}

impl DockerContainerizer {
    /// Connects to the local Docker engine (`DOCKER_HOST` when it is a
    /// `unix://` address, else `/var/run/docker.sock`), pings it and settles on
    /// the API version both sides speak; an error says why it is unusable.
    pub async fn connect(agent_key: String) -> Result<Self, String> {
        let address = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| h.starts_with("unix://"))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let unreachable = |why: String| format!("docker engine not reachable at {address}: {why}");
        let docker =
            Docker::connect_with_local_defaults().map_err(|e| unreachable(e.to_string()))?;
        match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no answer within {PING_TIMEOUT:?}"))),
        }
        // bollard speaks the newest API; an older engine (Debian's 20.10 speaks
        // 1.41) refuses requests made in a version it does not know.
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(format!("API version negotiation failed: {e}")))?;
        Ok(Self {
            docker,
            agent_key,
            pumps: Arc::default(),
        })
    }

    async fn launch_task(&self, req: LaunchRequest<'_>) -> Result<Launched, LaunchError> {
        let spec = req.spec;
        let docker_spec = spec.docker().ok_or_else(|| {
            LaunchError::new(
                LAUNCH_FAILED,
                "container.docker: a docker task names its image",
            )
        })?;
        let image = normalize_image(&docker_spec.image);
        self.ensure_image(&image, docker_spec.force_pull_image)
            .await?;

        let name = container_name(&spec.task_id);
        let body = self.create_body(spec, docker_spec, &image, &req)?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = match self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Err(e) if status(&e) == Some(409) => {
                self.remove_stale(&name, &spec.task_id).await?;
                self.docker.create_container(Some(options), body).await
            }
            other => other,
        }
        .map_err(|e| {
            LaunchError::new(
                LAUNCH_FAILED,
                format!("docker could not create container {name}: {}", why(&e)),
            )
        })?;
        let id = created.id;

        if let Err(e) = self.docker.start_container(&id, None).await {
            self.remove(&id).await;
            return Err(LaunchError::new(
                LAUNCH_FAILED,
                format!("docker could not start container {name}: {}", why(&e)),
            ));
        }
        // The pump runs on its own; `wait` awaits it through the map.
        let _pump = self.start_pump(&id, req.sandbox.to_path_buf(), 0);

        let ips = if docker_spec.network == DockerNetwork::Bridge {
            match self.docker.inspect_container(&id, None).await {
                Ok(info) => container_ips(&info),
                Err(e) => {
                    tracing::warn!(container = %name, error = %why(&e), "cannot read the container's IP");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        Ok(Launched {
            handle: ContainerHandle::Docker {
                container_id: id,
                name,
            },
            ips,
        })
    }

    /// Pulls `image` unless it is here already (or always, with `force`).
    async fn ensure_image(&self, image: &str, force: bool) -> Result<(), LaunchError> {
        if !force {
            match self.docker.inspect_image(image).await {
                Ok(_) => return Ok(()),
                Err(e) if status(&e) == Some(404) => {}
                Err(e) => {
                    return Err(LaunchError::new(
                        PREPARATION_FAILED,
                        format!("cannot look up docker image '{image}': {}", why(&e)),
                    ));
                }
            }
        }
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            if let Err(e) = step {
                let here = if force {
                    ""
                } else {
                    "is not on this agent and "
                };
                return Err(LaunchError::new(
                    PREPARATION_FAILED,
                    format!(
                        "docker image '{image}' {here}could not be pulled: {}",
                        why(&e)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Frees `name` when a container of this agent's for this task holds it (a
    /// crash left it behind); refuses to touch anyone else's.
    async fn remove_stale(&self, name: &str, task_id: &str) -> Result<(), LaunchError> {
        let taken = |whose: String| {
            LaunchError::new(
                LAUNCH_FAILED,
                format!("container name {name} is taken by {whose}"),
            )
        };
        let info = match self.docker.inspect_container(name, None).await {
            Ok(info) => info,
            // Gone since the conflict: nothing to remove.
            Err(e) if status(&e) == Some(404) => return Ok(()),
            Err(e) => {
                return Err(taken(format!(
                    "a container docker cannot describe: {}",
                    why(&e)
                )));
            }
        };
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        let agent = labels.get(LABEL_AGENT).map(String::as_str);
        let task = labels.get(LABEL_TASK).map(String::as_str);
        if agent != Some(self.agent_key.as_str()) || task != Some(task_id) {
            return Err(taken(format!(
                "another container (agent {}, task {})",
                agent.unwrap_or("none"),
                task.unwrap_or("none")
            )));
        }
        tracing::info!(container = %name, "removing a stale container of this task");
        self.remove(name).await;
        Ok(())
    }

    fn create_body(
        &self,
        spec: &TaskSpec,
        docker_spec: &DockerSpec,
        image: &str,
        req: &LaunchRequest<'_>,
    ) -> Result<ContainerCreateBody, LaunchError> {
        let bad =
            |field: String, why: &str| LaunchError::new(LAUNCH_FAILED, format!("{field}: {why}"));

        let mut env = req.env.clone();
        // The host's sandbox path means nothing inside the container.
        env.insert("MESOS_SANDBOX".into(), SANDBOX_IN_CONTAINER.into());
        let env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();

        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(LABEL_AGENT.into(), self.agent_key.clone());
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

        Ok(ContainerCreateBody {
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
        })
    }

    /// Copies the container's output into the sandbox from `since` (seconds
    /// since the epoch; 0: from its start) until it stops. One pump per
    /// container: a second call while one runs does nothing.
    fn start_pump(&self, id: &str, sandbox: PathBuf, since: i32) -> PumpDone {
        let mut pumps = self.pumps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pump) = pumps.get(id) {
            return pump.done.clone();
        }
        let (docker, pumps_ref, key) = (self.docker.clone(), self.pumps.clone(), id.to_string());
        let task = tokio::spawn(async move {
            if let Err(e) = pump_logs(&docker, &key, &sandbox, since).await {
                tracing::warn!(container = %key, sandbox = %sandbox.display(), error = %e, "container output not copied");
            }
            pumps_ref
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        });
        let abort = task.abort_handle();
        let done = task.map(|_| ()).boxed().shared();
        let pump = Pump {
            done: done.clone(),
            abort,
        };
        pumps.insert(id.to_string(), pump);
        done
    }

    async fn wait_exit(&self, id: &str, name: &str) -> Exit {
        let gone = || Exit {
            message: format!(
                "container {name} is gone (removed outside meso, or lost with the docker engine's state); its exit is unknown"
            ),
            ..Exit::default()
        };
        let info = match self.docker.inspect_container(id, None).await {
            Ok(info) => info,
            Err(e) if status(&e) == Some(404) => return gone(),
            Err(e) => {
                tracing::warn!(container = %name, error = %why(&e), "cannot inspect container; retrying");
                return self.wait_after_error(id, name).await;
            }
        };
        // A handle from an earlier agent has no pump yet: follow from the
        // next whole second (docker's `since` counts seconds), so that no line
        // the earlier agent copied is copied twice.
        let pump = match sandbox_of(&info) {
            Some(sandbox) if is_running(&info) => {
                Some(self.start_pump(id, sandbox, now_secs().saturating_add(1)))
            }
            _ => self
                .pumps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(id)
                .map(|p| p.done.clone()),
        };
        // Any answer, even an error, means "look again": inspect has the truth.
        let _ = self.docker.wait_container(id, None).next().await;
        let info = match self.docker.inspect_container(id, None).await {
            Ok(info) if !is_running(&info) => info,
            Ok(_) => return self.wait_after_error(id, name).await,
            Err(e) if status(&e) == Some(404) => return gone(),
            Err(e) => {
                tracing::warn!(container = %name, error = %why(&e), "cannot inspect container; retrying");
                return self.wait_after_error(id, name).await;
            }
        };
        if let Some(pump) = pump
            && tokio::time::timeout(DRAIN_TIMEOUT, pump).await.is_err()
        {
            tracing::warn!(container = %name, "container output still being copied after it ended");
        }
        exit_of(&info, name)
    }

    /// The engine did not answer: try again in a moment (boxed: it recurses).
    fn wait_after_error<'a>(&'a self, id: &'a str, name: &'a str) -> BoxFuture<'a, Exit> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.wait_exit(id, name).await
        })
    }

    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => tracing::warn!(container = %id, error = %why(&e), "cannot remove container"),
        }
    }
}

impl Drop for DockerContainerizer {
    fn drop(&mut self) {
        let pumps = self.pumps.lock().unwrap_or_else(|p| p.into_inner());
        for pump in pumps.values() {
            pump.abort.abort();
        }
    }
}

impl Containerizer for DockerContainerizer {
    fn launch<'a>(
        &'a self,
        req: LaunchRequest<'a>,
    ) -> BoxFuture<'a, Result<Launched, LaunchError>> {
        Box::pin(self.launch_task(req))
    }

    fn wait<'a>(&'a self, handle: &'a ContainerHandle) -> BoxFuture<'a, Exit> {
        Box::pin(async move {
            match handle {
                ContainerHandle::Docker { container_id, name } => {
                    self.wait_exit(container_id, name).await
                }
                other => Exit {
                    message: format!("not a docker container: {other:?}"),
                    ..Exit::default()
                },
            }
        })
    }

    fn kill<'a>(&'a self, handle: &'a ContainerHandle, grace: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let ContainerHandle::Docker { container_id, name } = handle else {
                return;
            };
            let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
            let options = StopContainerOptionsBuilder::new()
                .t(i32::try_from(secs).unwrap_or(i32::MAX))
                .build();
            // `docker stop` answers once the container is down, which may be
            // the whole grace period: longer than the client's usual timeout.
            let docker = self
                .docker
                .clone()
                .with_timeout(grace + Duration::from_secs(30));
            match docker.stop_container(container_id, Some(options)).await {
                Ok(()) => {}
                // 304: already stopped; 404: already gone.
                Err(e) if matches!(status(&e), Some(304 | 404)) => {}
                Err(e) => {
                    tracing::warn!(container = %name, error = %why(&e), "docker stop failed; sending SIGKILL");
                    let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
                    if let Err(e) = self
                        .docker
                        .kill_container(container_id, Some(options))
                        .await
                        && !matches!(status(&e), Some(404 | 409))
                    {
                        tracing::warn!(container = %name, error = %why(&e), "docker kill failed");
                    }
                }
            }
        })
    }

    fn ours(&self) -> BoxFuture<'_, Vec<ContainerHandle>> {
        Box::pin(async move {
            let filters =
                HashMap::from([("label", vec![format!("{LABEL_AGENT}={}", self.agent_key)])]);
            let options = ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build();
            match self.docker.list_containers(Some(options)).await {
                Ok(list) => list
                    .into_iter()
                    .filter_map(|c| {
                        let name = c.names?.first()?.trim_start_matches('/').to_string();
                        Some(ContainerHandle::Docker {
                            container_id: c.id?,
                            name,
                        })
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %why(&e), "cannot list this agent's containers");
                    Vec::new()
                }
            }
        })
    }

    fn cleanup<'a>(&'a self, handle: &'a ContainerHandle) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let ContainerHandle::Docker { container_id, .. } = handle {
                self.remove(container_id).await;
            }
        })
    }
}

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

/// `busybox` → `busybox:latest`. Without a tag docker would pull every tag of
/// the repository.
fn normalize_image(image: &str) -> String {
    let image = image.trim();
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The HTTP status of an engine's refusal, if that is what `e` is.
fn status(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words when it gave any, else bollard's description.
fn why(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        DockerError::DockerStreamError { error } => error.trim().to_string(),
        other => other.to_string(),
    }
}

fn now_secs() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

fn is_running(info: &ContainerInspectResponse) -> bool {
    info.state.as_ref().and_then(|s| s.running).unwrap_or(false)
}

/// The host directory mounted at the sandbox path: the task's sandbox.
fn sandbox_of(info: &ContainerInspectResponse) -> Option<PathBuf> {
    info.mounts
        .iter()
        .flatten()
        .find(|m| m.destination.as_deref() == Some(SANDBOX_IN_CONTAINER))
        .and_then(|m| m.source.as_ref().map(PathBuf::from))
}

fn container_ips(info: &ContainerInspectResponse) -> Vec<String> {
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

fn exit_of(info: &ContainerInspectResponse, name: &str) -> Exit {
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

/// Appends the container's stdout and stderr to the sandbox's files until the
/// log stream ends (the container stopped, or the engine went away).
async fn pump_logs(docker: &Docker, id: &str, sandbox: &Path, since: i32) -> std::io::Result<()> {
    let open = |file: &str| {
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).append(true);
        let path = sandbox.join(file);
        async move { options.open(path).await }
    };
    let (mut stdout, mut stderr) = (open("stdout").await?, open("stderr").await?);
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(since)
        .build();
    let mut logs = docker.logs(id, Some(options));
    while let Some(chunk) = logs.next().await {
        use bollard::container::LogOutput;
        match chunk {
            Ok(LogOutput::StdErr { message }) => {
                stderr.write_all(&message).await?;
                stderr.flush().await?;
            }
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                stdout.write_all(&message).await?;
                stdout.flush().await?;
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => return Err(std::io::Error::other(why(&e))),
        }
    }
    Ok(())
}
