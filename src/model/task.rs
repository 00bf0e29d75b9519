//! Tasks: what a scheduler asks to run ([`TaskSpec`]), where a task stands
//! ([`TaskState`], [`TaskStatus`]) and what the registry keeps of it ([`Task`]).
//!
//! The spec is a flat, documented JSON shape (field names follow Mesos's
//! `TaskInfo`, without its protobuf wrappers: `"task_id": "x"`, not
//! `{"value": "x"}`); `/master/state` renders tasks in Mesos's own shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::health::{HealthCheckSpec, HealthReport, ReadinessCheckSpec};

/// Mesos's task states, with their Mesos names on the wire (`TASK_RUNNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "TASK_STAGING")]
    Staging,
    #[serde(rename = "TASK_STARTING")]
    Starting,
    #[serde(rename = "TASK_RUNNING")]
    Running,
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    #[serde(rename = "TASK_ERROR")]
    Error,
    #[serde(rename = "TASK_LOST")]
    Lost,
    #[serde(rename = "TASK_DROPPED")]
    Dropped,
    /// The agent is unreachable: the task may still run. Not terminal.
    #[serde(rename = "TASK_UNREACHABLE")]
    Unreachable,
    #[serde(rename = "TASK_GONE")]
    Gone,
}

impl TaskState {
    /// A terminal task never changes state again and holds no resources.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Finished
                | Self::Failed
                | Self::Killed
                | Self::Error
                | Self::Lost
                | Self::Dropped
                | Self::Gone
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Staging => "TASK_STAGING",
            Self::Starting => "TASK_STARTING",
            Self::Running => "TASK_RUNNING",
            Self::Killing => "TASK_KILLING",
            Self::Finished => "TASK_FINISHED",
            Self::Failed => "TASK_FAILED",
            Self::Killed => "TASK_KILLED",
            Self::Error => "TASK_ERROR",
            Self::Lost => "TASK_LOST",
            Self::Dropped => "TASK_DROPPED",
            Self::Unreachable => "TASK_UNREACHABLE",
            Self::Gone => "TASK_GONE",
        }
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One status of a task, as the agent (or the master) reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// Absent in a registry snapshot, where it is the task's own
    /// (`master/registry/stored.rs`); an UPDATE without it is refused.
    #[serde(default)]
    pub task_id: String,
    #[serde(default)]
    pub agent_id: String,
    pub state: TaskState,
    /// Seconds since the epoch.
    pub timestamp: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Mesos's reason names: `REASON_COMMAND_EXECUTOR_FAILED`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `SOURCE_MASTER`, `SOURCE_AGENT` or `SOURCE_EXECUTOR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_ips: Vec<String>,
    /// Set by the agent; the master de-duplicates retried updates by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The task's health by its checks, on the statuses the agent sends when
    /// it flips (and on a kill for failing them), as Mesos sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Each check's standing as of that status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthReport>,
    /// `true` on the one status the agent sends when the task's readiness
    /// check first passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

impl TaskStatus {
    pub fn new(task_id: &str, agent_id: &str, state: TaskState, timestamp: f64) -> Self {
        Self {
            task_id: task_id.to_string(),
            agent_id: agent_id.to_string(),
            state,
            timestamp,
            message: None,
            reason: None,
            source: None,
            exit_code: None,
            container_ips: Vec::new(),
            uuid: None,
            healthy: None,
            health: None,
            ready: None,
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_string());
        self
    }

    pub fn source(mut self, source: &str) -> Self {
        self.source = Some(source.to_string());
        self
    }
}

/// A host port the task holds. `number: 0` in a launch asks the master to pick
/// a free one from the agent's ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPort {
    pub number: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A URI the fetcher puts into the sandbox before launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchUri {
    /// `http(s)://...`, `file:///...` or a local path.
    pub value: String,
    #[serde(default)]
    pub executable: bool,
    /// Archives (`.tar`, `.tar.gz`, `.tgz`, `.zip`) are extracted unless false.
    #[serde(default = "yes")]
    pub extract: bool,
    /// File name in the sandbox; defaults to the URI's last path segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

fn no_variables(environment: &Arc<BTreeMap<String, String>>) -> bool {
    environment.is_empty()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// The command line (`shell: true`, the default: run by `/bin/sh -c`) or the
    /// program (`shell: false`: run with `arguments` as argv, argv[0] included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default = "yes")]
    pub shell: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// Shared: every task of an app at one version has the same.
    #[serde(default, skip_serializing_if = "no_variables")]
    pub environment: Arc<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<FetchUri>,
    /// The user a process task runs as (Mesos's `CommandInfo.user`); the
    /// agent's own when unset. Docker tasks run as their image says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContainerKind {
    /// The process containerizer (Mesos's "MESOS" type).
    #[default]
    Mesos,
    Docker,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DockerNetwork {
    #[default]
    Host,
    Bridge,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortMapping {
    /// 0: the master picks a port from the agent's ranges.
    #[serde(default)]
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerSpec {
    pub image: String,
    #[serde(default)]
    pub network: DockerNetwork,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub force_pull_image: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// `docker run` options (Marathon's `parameters`; docker_option.rs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<super::DockerParameter>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeMode {
    #[default]
    RW,
    RO,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub container_path: String,
    /// Absolute, or relative to the sandbox.
    pub host_path: String,
    #[serde(default)]
    pub mode: VolumeMode,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    #[serde(rename = "type", default)]
    pub kind: ContainerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
}

/// What to run, where, with what. Launches carry it; the registry keeps it
/// with every host port resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task_id: String,
    #[serde(default)]
    pub name: String,
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<String>,
    #[serde(default)]
    pub cpus: f64,
    #[serde(default)]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    /// Host ports; for a BRIDGE docker task, those of its port mappings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<TaskPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Between SIGTERM and SIGKILL on kill; 3 s when unset (as Mesos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace_period_seconds: Option<f64>,
    /// Checks the agent runs while the task is RUNNING (`model::health`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheckSpec>,
    /// Asked on the agent until the task is ready (`model::health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_check: Option<ReadinessCheckSpec>,
    /// The Marathon app this task is an instance of, when the scheduler launched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_spec: Option<RunSpecRef>,
}

/// Which app, and which version of it, a task runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSpecRef {
    pub app_id: String,
    /// The app's `version` when the task was launched (the task JSON's `version`).
    pub version: String,
    /// The app's last configuration change then: a task whose config version
    /// is not the app's current one is replaced by a restart.
    pub config_version: String,
}

impl TaskSpec {
    pub fn container_kind(&self) -> ContainerKind {
        self.container.as_ref().map(|c| c.kind).unwrap_or_default()
    }

    pub fn docker(&self) -> Option<&DockerSpec> {
        self.container.as_ref().and_then(|c| c.docker.as_ref())
    }

    pub fn kill_grace_period(&self) -> std::time::Duration {
        let secs = self
            .kill_grace_period_seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(3.0);
        std::time::Duration::from_secs_f64(secs.min(3600.0))
    }

    /// How many host ports the task holds: its port mappings' for a BRIDGE
    /// docker task that has any (the master resolves them into `ports`),
    /// else its `ports`. Health checks' `port_index` counts in these.
    pub fn host_port_count(&self) -> usize {
        match self.docker() {
            Some(d) if d.network == DockerNetwork::Bridge && !d.port_mappings.is_empty() => {
                d.port_mappings.len()
            }
            _ => self.ports.len(),
        }
    }

    /// Checks what does not depend on any agent: the field path of the first
    /// problem, in the shape API errors use.
    pub fn validate(&self) -> Result<(), String> {
        let bad_id = |id: &str| {
            id.is_empty()
                || id.len() > 200
                || id.starts_with('.')
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if bad_id(&self.task_id) {
            return Err(format!(
                "task_id: '{}' must be 1-200 letters, digits, '-', '_' or '.', not starting with '.'",
                self.task_id
            ));
        }
        if self.agent_id.is_empty() {
            return Err("agent_id: must not be empty".into());
        }
        for (name, v) in [("cpus", self.cpus), ("mem", self.mem), ("disk", self.disk)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name}: must be a non-negative number"));
            }
        }
        match self.container_kind() {
            ContainerKind::Docker => match self.docker() {
                Some(d) if !d.image.trim().is_empty() => {
                    for (i, parameter) in d.parameters.iter().enumerate() {
                        parameter
                            .parse()
                            .map_err(|e| format!("container.docker.parameters[{i}]: {e}"))?;
                    }
                }
                _ => return Err("container.docker.image: a docker task names its image".into()),
            },
            ContainerKind::Mesos => {
                let cmd = self.command.as_ref();
                let has_value = cmd.and_then(|c| c.value.as_ref()).is_some();
                let has_args = cmd.is_some_and(|c| !c.arguments.is_empty());
                if !has_value && !has_args {
                    return Err("command.value: a process task needs a command".into());
                }
            }
        }
        for (i, v) in self
            .container
            .iter()
            .flat_map(|c| c.volumes.iter())
            .enumerate()
        {
            if !v.container_path.starts_with('/') && self.container_kind() == ContainerKind::Docker
            {
                return Err(format!(
                    "container.volumes[{i}].container_path: must be absolute"
                ));
            }
        }
        for (i, check) in self.health_checks.iter().enumerate() {
            check
                .validate(self.host_port_count())
                .map_err(|e| format!("health_checks[{i}].{e}"))?;
        }
        if let Some(check) = &self.readiness_check {
            check
                .validate(self.host_port_count())
                .map_err(|e| format!("readiness_check.{e}"))?;
        }
        Ok(())
    }
}

/// A task as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Shared: a status update copies the task (the registry's published
    /// versions share it), and the spec, which never changes once the task
    /// is recorded, was most of that copy.
    pub spec: Arc<TaskSpec>,
    pub state: TaskState,
    /// The latest statuses, oldest first (the last is the current one).
    /// Shared as the spec is: copying a task for a status update copied
    /// each status's strings, a third of applying statuses at 10,000 agents.
    pub statuses: Vec<Arc<TaskStatus>>,
    /// A kill was asked for: the master (re)sends KILL until the task ends.
    #[serde(default)]
    pub kill_requested: bool,
    /// The latest health any status carried (statuses without it, such as
    /// the master's own, leave it as it was). None: no verdict yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthReport>,
    /// Its readiness check passed (None: it has none, or not yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// When the task was recorded (its first status), seconds since the epoch.
    #[serde(default)]
    pub staged_at: f64,
    /// When it first ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
}

impl Task {
    /// How many statuses a task keeps.
    pub const HISTORY: usize = 8;

    /// A task whose first status is `status` (its state is the status's).
    pub fn new(spec: TaskSpec, status: TaskStatus) -> Self {
        let mut task = Self {
            spec: Arc::new(spec),
            state: status.state,
            statuses: Vec::new(),
            kill_requested: false,
            healthy: None,
            health: None,
            ready: None,
            staged_at: 0.0,
            started_at: None,
        };
        task.push_status(status);
        task
    }

    pub fn latest(&self) -> Option<&TaskStatus> {
        self.statuses.last().map(Arc::as_ref)
    }

    pub fn push_status(&mut self, status: TaskStatus) {
        if self.staged_at == 0.0 {
            self.staged_at = status.timestamp;
        }
        if status.state == TaskState::Running && self.started_at.is_none() {
            self.started_at = Some(status.timestamp);
        }
        self.state = status.state;
        if status.healthy.is_some() {
            self.healthy = status.healthy;
        }
        if status.health.is_some() {
            self.health = status.health.clone();
        }
        if status.ready.is_some() {
            self.ready = status.ready;
        }
        self.statuses.push(Arc::new(status));
        if self.statuses.len() > Self::HISTORY {
            self.statuses.remove(0);
        }
    }
}
