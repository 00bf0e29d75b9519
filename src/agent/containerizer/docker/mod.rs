//! The docker containerizer: one container per task, on the local Docker engine
//! (bollard over the unix socket).
//!
//! ```text
//!  launch ─▶ (force_pull ─▶ pull) ─▶ create `meso-<task_id>`
//!              ─(404: no such image)─▶ pull ─(fails)─▶ LaunchError; create again
//!              ─(409: name taken by our stale one)─▶ rm -f, create again
//!        ─▶ start (BRIDGE: and inspect, answered as the start ends) ─▶ Launched{Docker{id, name}, bridge IPs}
//!  log pump, SETTLE after start: GET /logs?follow ─▶ <sandbox>/stdout, stderr (append)
//!  wait   ─▶ (fresh: until SETTLE after start | recovered: inspect, pump from now)
//!        ─▶ POST /wait ─▶ inspect
//!        ─▶ pump drained ─▶ Exit{code, OOMKilled → REASON_CONTAINER_LIMITATION_MEMORY}
//!  kill   ─▶ docker stop -t ⌈grace⌉ (SIGTERM … SIGKILL)
//!  ours   ─▶ containers labelled meso.agent=<agent key>, exited ones too
//!  cleanup ─▶ docker rm -f
//!  exec   ─▶ docker exec /bin/sh -c (COMMAND health checks, exec.rs)
//! ```
//!
//! Here: the containerizer, launch, wait, kill and the rest of the trait. By
//! idea: `image.rs` (which image, and pulling it), `container.rs` (the name
//! and the create body: Mesos's conventions below), `start.rs` (the start,
//! and a BRIDGE container's IPs read in the same wait), `logs.rs` (the log
//! pumps), `inspect.rs` (reading an inspect: running, sandbox, IPs, exit).
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
//! Why the engine is left alone for [`SETTLE`] after a start: the next thing
//! on a launch's way is the RUNNING update's commit on the master, and on a
//! small machine the pump's and the wait's engine calls made at that moment
//! slowed it (dockerd, the master and the agent share the cores). The output
//! is not at risk, since the engine keeps it from the container's start; an
//! exit in that window is reported when it ends, a few ms later.
//!
//! Nothing here is kept only in memory that a restarted agent would need: the
//! handle names the container, and the sandbox is read back from the
//! container's own mount. Output written while no agent was copying it (between
//! an agent's death and the `wait` of its successor, plus up to one second,
//! since docker's `since` counts whole seconds) stays in `docker logs` but is
//! not copied into the sandbox: the successor follows from then on, so that
//! nothing already in the files is written twice.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt;
use futures::future::BoxFuture;

use super::{
    ContainerHandle, Containerizer, ExecOutput, ExecRequest, Exit, LaunchError, LaunchRequest,
    Launched,
};
use crate::model::DockerNetwork;

mod container;
mod exec;
mod image;
mod inspect;
mod logs;
mod parameters;
mod start;

pub use container::{LABEL_AGENT, LABEL_TASK, SANDBOX_IN_CONTAINER, container_name};
use image::{normalize_image, pull_image};
use inspect::{exit_of, is_running, sandbox_of};
use logs::{LogPumps, PumpDone, now_secs};

const PREPARATION_FAILED: &str = "REASON_CONTAINER_PREPARATION_FAILED";
const LAUNCH_FAILED: &str = "REASON_CONTAINER_LAUNCH_FAILED";
/// How long `connect` waits for the engine to answer a ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `wait` lets the log pump drain after the container ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after a start the pump and the wait stay off the engine, out of
/// the way of the RUNNING update: it takes some 3 ms to be committed on a
/// quiet 2-core machine; the rest is margin for a busy one.
const SETTLE: Duration = Duration::from_millis(25);

pub struct DockerContainerizer {
    docker: Docker,
    pub agent_key: String,
    /// Running log pumps by container id; they stop when the containerizer
    /// is dropped, as they would with the agent.
    pumps: LogPumps,
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
            pumps: LogPumps::default(),
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
        if docker_spec.force_pull_image {
            pull_image(&self.docker, &image, true).await?;
        }
        let name = container_name(&spec.task_id);
        let body = container::create_body(&self.agent_key, spec, docker_spec, &image, &req)?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        // Create first, as `docker run` does: the image is looked up (and
        // pulled) only when the engine says it is missing, which saves a round
        // trip on every launch of an image the agent has.
        let create = || {
            self.docker
                .create_container(Some(options.clone()), body.clone())
        };
        let began = std::time::Instant::now();
        let created = match create().await {
            Err(e) if status(&e) == Some(404) => {
                pull_image(&self.docker, &image, false).await?;
                create().await
            }
            Err(e) if status(&e) == Some(409) => {
                self.remove_stale(&name, &spec.task_id).await?;
                create().await
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
        let created_at = std::time::Instant::now();

        let bridge = docker_spec.network == DockerNetwork::Bridge;
        let ips = match start::start_container(&self.docker, &id, &name, bridge).await {
            Ok(ips) => ips,
            Err(e) => {
                self.remove(&id).await;
                return Err(LaunchError::new(
                    LAUNCH_FAILED,
                    format!("docker could not start container {name}: {}", why(&e)),
                ));
            }
        };
        // Where a launch's time goes, for whoever chases it next.
        tracing::debug!(
            container = %name,
            create_ms = (created_at - began).as_secs_f64() * 1e3,
            start_ms = created_at.elapsed().as_secs_f64() * 1e3,
            "container started"
        );
        // The pump runs on its own; `wait` awaits it through the map.
        let sandbox = req.sandbox.to_path_buf();
        let _pump = self.pumps.start(&self.docker, &id, sandbox, 0, SETTLE);
        Ok(Launched {
            handle: ContainerHandle::Docker {
                container_id: id,
                name,
            },
            ips,
        })
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

    async fn wait_exit(&self, id: &str, name: &str) -> Exit {
        // A container this agent launched has its pump already, and nothing
        // to look up: no inspect here, on the way of every launch's RUNNING.
        let pump = match self.pumps.running(id) {
            Some(pump) => {
                // Launched a moment ago: after the RUNNING update, as the pump.
                tokio::time::sleep_until(pump.attaches_at).await;
                Some(pump.done)
            }
            None => match self.adopt(id, name).await {
                Ok(pump) => pump,
                Err(exit) => return exit,
            },
        };
        // Any answer, even an error, means "look again": inspect has the truth.
        let _ = self.docker.wait_container(id, None).next().await;
        let info = match self.inspect(id, name).await {
            Ok(info) if !is_running(&info) => info,
            Ok(_) => return self.wait_after_error(id, name).await,
            Err(exit) => return exit,
        };
        if let Some(pump) = pump
            && tokio::time::timeout(DRAIN_TIMEOUT, pump).await.is_err()
        {
            tracing::warn!(container = %name, "container output still being copied after it ended");
        }
        exit_of(&info, name)
    }

    /// A handle without a pump (from an earlier agent, or whose pump ended):
    /// if its container still runs, copy its output from the next whole
    /// second on (docker's `since` counts seconds), so that no line the
    /// earlier agent copied is copied twice. `Err`: how the wait ends instead.
    async fn adopt(&self, id: &str, name: &str) -> Result<Option<PumpDone>, Exit> {
        let info = self.inspect(id, name).await?;
        Ok(match sandbox_of(&info) {
            Some(sandbox) if is_running(&info) => {
                let since = now_secs().saturating_add(1);
                Some(
                    self.pumps
                        .start(&self.docker, id, sandbox, since, Duration::ZERO),
                )
            }
            _ => None,
        })
    }

    /// The container as the engine has it, or how the wait ends: gone, or
    /// what a later look says when the engine did not answer.
    async fn inspect(&self, id: &str, name: &str) -> Result<ContainerInspectResponse, Exit> {
        match self.docker.inspect_container(id, None).await {
            Ok(info) => Ok(info),
            Err(e) if status(&e) == Some(404) => Err(gone(name)),
            Err(e) => {
                tracing::warn!(container = %name, error = %why(&e), "cannot inspect container; retrying");
                Err(self.wait_after_error(id, name).await)
            }
        }
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

    fn exec<'a>(
        &'a self,
        handle: &'a ContainerHandle,
        req: ExecRequest<'a>,
    ) -> BoxFuture<'a, Result<ExecOutput, String>> {
        Box::pin(async move {
            match handle {
                ContainerHandle::Docker { container_id, .. } => {
                    exec::exec_in(&self.docker, container_id, req).await
                }
                other => Err(format!("not a docker container: {other:?}")),
            }
        })
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

/// How a wait ends when the container is no longer there.
fn gone(name: &str) -> Exit {
    Exit {
        message: format!(
            "container {name} is gone (removed outside meso, or lost with the docker engine's state); its exit is unknown"
        ),
        ..Exit::default()
    }
}
