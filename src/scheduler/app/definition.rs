//! The app definition in its one canonical form: every default applied,
//! deprecated spellings gone. Serializing it gives the JSON Marathon 1.x
//! serves and marathon-python 0.13.0 accepts; deserializing accepts anything
//! [`AppDefinition::from_json`] does (without validating, so a stored app
//! always loads again even if a later release tightens a rule).

use std::collections::BTreeMap;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::checks::{HealthCheck, ReadinessCheck};
use super::container::{Container, Network, NetworkMode, PortDefinition, PortMapping};
use super::error::{AppError, Violation};
use super::lenient::{describe, from_value};
use super::normalize::normalize_app;
use super::path::PathId;
use super::wire::AppWire;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "AppWire")]
pub struct AppDefinition {
    pub id: PathId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Argv (argv[0] included); empty when the app has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Kept and shown; tasks run as the agent's user (TaskSpec has no user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub env: BTreeMap<String, String>,
    pub instances: u32,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub gpus: u32,
    /// `""` or `//cmd`: meso has no custom executors.
    pub executor: String,
    /// `[field, OP]` or `[field, OP, value]`; their meaning is placement's.
    pub constraints: Vec<Vec<String>>,
    pub fetch: Vec<Fetch>,
    pub backoff_seconds: u32,
    pub backoff_factor: f64,
    pub max_launch_delay_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    pub health_checks: Vec<HealthCheck>,
    pub readiness_checks: Vec<ReadinessCheck>,
    /// Absolute; relative ones were resolved against the app's group.
    pub dependencies: Vec<PathId>,
    pub upgrade_strategy: UpgradeStrategy,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_resource_roles: Option<Vec<String>>,
    /// Set by the store when the app is written; kept from input as given
    /// (normalised to Marathon's timestamp form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_info: Option<VersionInfo>,
    pub kill_selection: KillSelection,
    pub unreachable_strategy: UnreachableStrategy,
    /// Always false unless networking is host (Marathon drops it otherwise).
    pub require_ports: bool,
    /// Never empty: `[{mode: host}]` when none were given.
    pub networks: Vec<Network>,
    /// Empty unless networking is host. Emitted even when empty, since an
    /// absent list means one default port.
    pub port_definitions: Vec<PortDefinition>,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<u32>,
}

/// A URI fetched into the sandbox before the task starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fetch {
    pub uri: String,
    pub extract: bool,
    pub executable: bool,
    /// Kept for clients; meso's fetcher has no cache.
    pub cache: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    /// Share of `instances` kept healthy during a restart, in [0, 1].
    pub minimum_health_capacity: f64,
    /// Share of `instances` that may run on top during a restart, in [0, 1].
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        Self {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

/// What happens to tasks on an unreachable agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableStrategy {
    /// Never replaced (`"disabled"` on the wire).
    Disabled,
    /// Replaced after `inactive_after_seconds`, forgotten after
    /// `expunge_after_seconds` (inactive ≤ expunge).
    Enabled {
        inactive_after_seconds: u32,
        expunge_after_seconds: u32,
    },
}

impl Default for UnreachableStrategy {
    /// `{0, 0}`, Marathon's default since 1.6.
    fn default() -> Self {
        Self::Enabled {
            inactive_after_seconds: 0,
            expunge_after_seconds: 0,
        }
    }
}

impl Serialize for UnreachableStrategy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Disabled => s.serialize_str("disabled"),
            Self::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => {
                let mut st = s.serialize_struct("UnreachableStrategy", 2)?;
                st.serialize_field("inactiveAfterSeconds", inactive_after_seconds)?;
                st.serialize_field("expungeAfterSeconds", expunge_after_seconds)?;
                st.end()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    #[default]
    YoungestFirst,
    OldestFirst,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub last_scaling_at: String,
    pub last_config_change_at: String,
}

impl AppDefinition {
    pub const DEFAULT_CPUS: f64 = 1.0;
    pub const DEFAULT_MEM: f64 = 128.0;
    pub const DEFAULT_DISK: f64 = 0.0;
    pub const DEFAULT_INSTANCES: u32 = 1;
    pub const DEFAULT_BACKOFF_SECONDS: u32 = 1;
    pub const DEFAULT_BACKOFF_FACTOR: f64 = 1.15;
    /// 300 s since Marathon 1.8 (3600 before).
    pub const DEFAULT_MAX_LAUNCH_DELAY_SECONDS: u32 = 300;
    pub const DEFAULT_ROLE: &str = "*";

    /// Reads an app from request JSON: liberal parse, normalise, default,
    /// validate. A relative `id` (and relative `dependencies`) resolve
    /// against `base`, the group the request addresses (`/` for /v2/apps).
    pub fn from_json(value: &Value, base: &PathId) -> Result<Self, AppError> {
        let app = Self::normalized(value, base)?;
        app.validate().map_err(AppError::Invalid)?;
        Ok(app)
    }

    /// Parse and normalise without the validation rules: for definitions that
    /// were valid when stored, and for callers that validate later.
    pub fn normalized(value: &Value, base: &PathId) -> Result<Self, AppError> {
        require_object(value, "an app")?;
        let wire: AppWire = from_value(value).map_err(AppError::Malformed)?;
        normalize_app(wire, base).map_err(AppError::Invalid)
    }

    /// The Marathon 1.x JSON of this app.
    pub fn to_json(&self) -> Value {
        // Serializing plain data into a Value cannot fail: every map key is a
        // string and every float finite (non-finite ones never parse).
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Networking is host (`networks` is `[{mode: host}]`).
    pub fn is_host_networked(&self) -> bool {
        self.networks.iter().all(|n| n.mode == NetworkMode::Host)
    }

    /// The container's port mappings (none without a container).
    pub fn port_mappings(&self) -> impl Iterator<Item = &PortMapping> {
        self.container.iter().flat_map(|c| c.port_mappings.iter())
    }

    /// [`port_mappings`](Self::port_mappings), to change.
    pub fn port_mappings_mut(&mut self) -> impl Iterator<Item = &mut PortMapping> {
        self.container
            .iter_mut()
            .flat_map(|c| c.port_mappings.iter_mut())
    }

    /// The app's ports in index order, as `portIndex` and task ports count
    /// them: port definitions for host networking, else port mappings.
    pub fn port_names(&self) -> Vec<Option<&str>> {
        if self.is_host_networked() {
            self.port_definitions
                .iter()
                .map(|p| p.name.as_deref())
                .collect()
        } else {
            self.port_mappings().map(|m| m.name.as_deref()).collect()
        }
    }

    /// The app's service ports in index order (Marathon's `servicePorts`):
    /// the port definitions' for host networking, else the port mappings'
    /// `servicePort`. 0 is one still to be assigned (`service_ports`).
    pub fn service_ports(&self) -> Vec<u16> {
        if self.is_host_networked() {
            self.port_definitions.iter().map(|p| p.port).collect()
        } else {
            self.port_mappings().map(|m| m.service_port).collect()
        }
    }

    /// The docker image the app runs, if any.
    pub fn docker_image(&self) -> Option<&str> {
        self.container
            .as_ref()
            .and_then(|c| c.docker.as_ref())
            .map(|d| d.image.as_str())
            .filter(|i| !i.is_empty())
    }
}

/// Serde would read a struct from an array, field by field; refuse that.
pub(crate) fn require_object(value: &Value, what: &str) -> Result<(), AppError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(AppError::Malformed(Violation::new(
            "/",
            format!("{what} must be a JSON object, got {}", describe(value)),
        )))
    }
}

impl TryFrom<AppWire> for AppDefinition {
    type Error = AppError;

    fn try_from(wire: AppWire) -> Result<Self, AppError> {
        normalize_app(wire, &PathId::root()).map_err(AppError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::app::test_app;
    use serde_json::json;

    /// Keys marathon-python 0.13.0's models accept, per object
    /// (reference/marathon-api.md §3.3 and the client's models). Anything
    /// else the server emits makes the client raise `TypeError`.
    const APP_KEYS: &[&str] = &[
        "acceptedResourceRoles",
        "args",
        "backoffFactor",
        "backoffSeconds",
        "cmd",
        "constraints",
        "container",
        "cpus",
        "dependencies",
        "deployments",
        "disk",
        "env",
        "executor",
        "healthChecks",
        "id",
        "role",
        "instances",
        "killSelection",
        "labels",
        "lastTaskFailure",
        "maxLaunchDelaySeconds",
        "mem",
        "ports",
        "requirePorts",
        "storeUrls",
        "taskRateLimit",
        "tasks",
        "tasksRunning",
        "tasksStaged",
        "tasksHealthy",
        "taskKillGracePeriodSeconds",
        "tasksUnhealthy",
        "upgradeStrategy",
        "unreachableStrategy",
        "uris",
        "user",
        "version",
        "versionInfo",
        "ipAddress",
        "fetch",
        "taskStats",
        "readinessChecks",
        "readinessCheckResults",
        "secrets",
        "portDefinitions",
        "residency",
        "gpus",
        "networks",
    ];
    const CONTAINER_KEYS: &[&str] = &["docker", "type", "portMappings", "volumes"];
    /// The client's docker model takes any key; these are Marathon's own.
    const DOCKER_KEYS: &[&str] = &[
        "image",
        "network",
        "portMappings",
        "parameters",
        "privileged",
        "forcePullImage",
    ];
    const PORT_MAPPING_KEYS: &[&str] = &[
        "name",
        "containerPort",
        "hostPort",
        "servicePort",
        "protocol",
        "labels",
    ];
    const VOLUME_KEYS: &[&str] = &[
        "containerPath",
        "hostPath",
        "mode",
        "persistent",
        "external",
    ];
    /// The client's health check model takes any key; these are Marathon's.
    const HEALTH_CHECK_KEYS: &[&str] = &[
        "command",
        "gracePeriodSeconds",
        "intervalSeconds",
        "maxConsecutiveFailures",
        "path",
        "portIndex",
        "port",
        "protocol",
        "timeoutSeconds",
        "ignoreHttp1xx",
        "delaySeconds",
        "ipProtocol",
    ];
    const READINESS_KEYS: &[&str] = &[
        "name",
        "protocol",
        "path",
        "portName",
        "intervalSeconds",
        "timeoutSeconds",
        "httpStatusCodesForReady",
        "preserveLastResponse",
    ];
    const PORT_DEFINITION_KEYS: &[&str] = &["port", "protocol", "name", "labels"];
    const UPGRADE_KEYS: &[&str] = &["minimumHealthCapacity", "maximumOverCapacity"];
    const UNREACHABLE_KEYS: &[&str] = &["inactiveAfterSeconds", "expungeAfterSeconds"];
    const VERSION_INFO_KEYS: &[&str] = &["lastScalingAt", "lastConfigChangeAt"];

    fn keys_within(what: &str, v: &Value, allowed: &[&str]) -> usize {
        let Value::Object(map) = v else {
            panic!("{what} is not an object: {v}")
        };
        for key in map.keys() {
            assert!(allowed.contains(&key.as_str()), "{what} emits '{key}'");
        }
        map.len()
    }

    fn each<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not an array in {v}"))
    }

    /// Every object of the app's JSON, checked against its allowed keys;
    /// returns how many keys were checked, so a test sees it checked some.
    fn assert_client_safe(app: &Value) -> usize {
        let mut n = keys_within("app", app, APP_KEYS);
        for h in each(app, "healthChecks") {
            n += keys_within("health check", h, HEALTH_CHECK_KEYS);
        }
        for r in each(app, "readinessChecks") {
            n += keys_within("readiness check", r, READINESS_KEYS);
        }
        for d in each(app, "portDefinitions") {
            n += keys_within("port definition", d, PORT_DEFINITION_KEYS);
        }
        n += keys_within("upgrade strategy", &app["upgradeStrategy"], UPGRADE_KEYS);
        if app["unreachableStrategy"] != json!("disabled") {
            n += keys_within("unreachable", &app["unreachableStrategy"], UNREACHABLE_KEYS);
        }
        if let Some(vi) = app.get("versionInfo") {
            n += keys_within("versionInfo", vi, VERSION_INFO_KEYS);
        }
        if let Some(c) = app.get("container") {
            n += keys_within("container", c, CONTAINER_KEYS);
            if let Some(d) = c.get("docker") {
                n += keys_within("docker", d, DOCKER_KEYS);
                assert!(d.get("network").is_none() && d.get("portMappings").is_none());
            }
            for m in each(c, "portMappings") {
                n += keys_within("port mapping", m, PORT_MAPPING_KEYS);
            }
            for v in each(c, "volumes") {
                n += keys_within("volume", v, VOLUME_KEYS);
                assert!(matches!(v["mode"].as_str(), Some("RO" | "RW")), "{v}");
            }
        }
        for deprecated in ["ports", "uris", "ipAddress"] {
            assert!(
                app.get(deprecated).is_none(),
                "emits deprecated {deprecated}"
            );
        }
        n
    }

    #[test]
    fn a_minimal_app_gets_marathons_defaults() {
        let app = test_app(json!({"id": "x", "cmd": "sleep 1"}));
        let want = json!({
            "id": "/x", "cmd": "sleep 1", "env": {}, "instances": 1, "cpus": 1.0,
            "mem": 128.0, "disk": 0.0, "gpus": 0, "executor": "", "constraints": [],
            "fetch": [], "backoffSeconds": 1, "backoffFactor": 1.15,
            "maxLaunchDelaySeconds": 300, "healthChecks": [], "readinessChecks": [],
            "dependencies": [],
            "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
            "labels": {}, "killSelection": "YOUNGEST_FIRST",
            "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
            "requirePorts": false, "networks": [{"mode": "host"}],
            "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "default"}],
            "role": "*",
        });
        assert_eq!(app.to_json(), want);
        assert!(assert_client_safe(&app.to_json()) > 20);
    }

    #[test]
    fn explicitly_empty_ports_stay_empty() {
        for body in [
            json!({"id": "x", "cmd": "c", "portDefinitions": []}),
            json!({"id": "x", "cmd": "c", "ports": []}),
        ] {
            let app = test_app(body.clone());
            assert!(app.port_definitions.is_empty(), "{body}");
            // And stay so through a round trip.
            let again: AppDefinition = serde_json::from_value(app.to_json()).expect("again");
            assert!(again.port_definitions.is_empty());
        }
    }

    fn maximal() -> Value {
        json!({
            "id": "/prod/web/api",
            "cmd": "exec ./serve",
            "user": "nobody",
            "env": {"MODE": "prod"},
            "instances": 3, "cpus": 0.5, "mem": 256, "disk": 10, "gpus": 0,
            "executor": "//cmd",
            "constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", 3]],
            "fetch": [{"uri": "https://x/app.tgz", "destPath": "app.tgz", "cache": true}],
            "backoffSeconds": 2, "backoffFactor": 2, "maxLaunchDelaySeconds": 60,
            "container": {
                "type": "DOCKER",
                "docker": {"image": "nginx:1.25", "forcePullImage": true},
                "volumes": [{"containerPath": "/data", "hostPath": "/srv/data", "mode": "RO"}],
                "portMappings": [
                    {"containerPort": 80, "hostPort": 0, "servicePort": 10080, "name": "http",
                     "labels": {"VIP_0": "/api:80"}, "networkNames": ["n"]},
                    {"containerPort": 53, "protocol": "udp,tcp", "name": "dns"}
                ],
                "linuxInfo": {"seccomp": {}}
            },
            "networks": [{"mode": "container/bridge"}],
            "healthChecks": [
                {"path": "/health", "portIndex": 0, "gracePeriodSeconds": 30},
                {"protocol": "COMMAND", "command": {"value": "true"}},
                {"protocol": "MESOS_TCP", "port": 8080, "ipProtocol": "ipv6"}
            ],
            "readinessChecks": [{"portName": "http", "path": "/ready"}],
            "dependencies": ["../db"],
            "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
            "labels": {"team": "core", "HAPROXY_0_VHOST": "api.example.com"},
            "acceptedResourceRoles": ["*"],
            "version": "2015-09-30T09:09:17Z",
            "versionInfo": {"lastScalingAt": "2015-09-30T09:09:17.614Z",
                            "lastConfigChangeAt": "2015-09-29T00:00:00.000Z"},
            "killSelection": "OLDEST_FIRST",
            "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 600},
            "taskKillGracePeriodSeconds": 10,
            "role": "*",
            "tty": true, "check": {"http": {}}, "executorResources": {"cpus": 1},
            "resourceLimits": {"cpus": "unlimited"}, "tasksStats": {}, "tasksRunning": 3,
            "tasks": [{"id": "t"}], "deployments": [{"id": "d"}], "secrets": {}
        })
    }

    #[test]
    fn output_has_only_keys_marathon_python_accepts() {
        let app = test_app(maximal());
        let out = app.to_json();
        assert!(assert_client_safe(&out) > 60, "{out:#}");
        assert_eq!(
            out["container"]["portMappings"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(out["version"], "2015-09-30T09:09:17.000Z");
        assert_eq!(
            out["versionInfo"]["lastScalingAt"],
            "2015-09-30T09:09:17.614Z"
        );
        assert_eq!(out["dependencies"], json!(["/prod/db"]));
        assert_eq!(out["constraints"][1], json!(["rack", "GROUP_BY", "3"]));
        assert_eq!(out["healthChecks"][2]["ipProtocol"], "IPv6");
        let disabled = test_app(json!({"id": "x", "cmd": "c", "unreachableStrategy": "disabled"}));
        assert_eq!(disabled.to_json()["unreachableStrategy"], "disabled");
        assert_client_safe(&disabled.to_json());
    }

    #[test]
    fn output_reads_back_to_the_same_app() {
        for body in [
            maximal(),
            json!({"id": "x", "cmd": "c"}),
            json!({"id": "y", "args": ["a"]}),
        ] {
            let app = test_app(body);
            let out = app.to_json();
            assert_eq!(test_app(out.clone()), app);
            let stored: AppDefinition = serde_json::from_value(out).expect("deserialize");
            assert_eq!(stored, app);
        }
    }

    #[test]
    fn deserialize_normalises_but_does_not_validate() {
        // A stored app must load even if a rule would now refuse it.
        let stored: AppDefinition =
            serde_json::from_value(json!({"id": "/x", "cmd": "c", "cpus": -1})).expect("loads");
        assert_eq!(stored.cpus, -1.0);
        assert!(stored.validate().is_err());
        assert!(serde_json::from_value::<AppDefinition>(json!({"id": "/X"})).is_err());
    }
}
