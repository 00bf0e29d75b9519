//! The rules a normalised app must satisfy, each reported with its path.
//!
//! What the wire form cannot even represent (an unknown enum value, a
//! non-string env value, a bad id) is refused earlier, in `normalize.rs`;
//! here are the rules between fields and the limits of what meso runs.
//! Marathon's rules come first; rules marked "meso" refuse what Marathon
//! would accept but meso's agents cannot do, so that an app fails at the
//! API with its reason instead of never starting.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use super::container::ContainerType;
use super::definition::{AppDefinition, UnreachableStrategy};
use super::error::{Problems, Violation};

/// The longest app id (with its leading slash). A task id is the id's safe
/// name plus 53 characters (`.instance-<uuid>._app.1`), and task ids are at
/// most 200 characters; this leaves room for larger incarnation numbers.
pub const MAX_APP_ID_CHARS: usize = 140;

impl AppDefinition {
    /// Checks every rule; `Err` lists each violated field with its errors.
    pub fn validate(&self) -> Result<(), Vec<Violation>> {
        let mut p = Problems::default();
        self.check_identity(&mut p);
        self.check_command(&mut p);
        self.check_resources(&mut p);
        self.check_strategies(&mut p);
        self.check_container(&mut p);
        self.check_ports(&mut p);
        self.check_health(&mut p);
        self.check_readiness(&mut p);
        p.into_result()
    }

    fn check_identity(&self, p: &mut Problems) {
        if self.id.is_root() {
            p.add("/id", "must name an app, not the root group");
        }
        let len = self.id.to_string().len();
        if len > MAX_APP_ID_CHARS {
            p.add(
                "/id",
                format!("is {len} characters; at most {MAX_APP_ID_CHARS} fit in task ids"),
            );
        }
        for (i, dep) in self.dependencies.iter().enumerate() {
            if *dep == self.id {
                p.add(
                    format!("/dependencies({i})"),
                    "an app cannot depend on itself",
                );
            }
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if !(2..=3).contains(&c.len()) || c[..2].iter().any(|s| s.trim().is_empty()) {
                p.add(
                    format!("/constraints({i})"),
                    "must be [field, operator] or [field, operator, value]",
                );
            }
        }
        if let Some(roles) = &self.accepted_resource_roles {
            let unique: BTreeSet<&String> = roles.iter().collect();
            if unique.len() != roles.len() {
                p.add("/acceptedResourceRoles", "must not repeat a role");
            }
        }
        let role = self.role.as_str();
        let role_ok = role == "*"
            || (!matches!(role, "." | "..")
                && !role.starts_with('-')
                && !role
                    .chars()
                    .any(|c| c.is_whitespace() || c == '/' || c.is_control()));
        if !role_ok {
            p.add(
                "/role",
                format!("'{role}' is not a Mesos role (no '/', spaces, leading '-', '.' or '..')"),
            );
        }
        if self.user.as_deref().is_some_and(|u| u.trim().is_empty()) {
            p.add("/user", "must not be empty");
        }
    }

    fn check_command(&self, p: &mut Problems) {
        let has_cmd = self.cmd.is_some();
        let has_args = !self.args.is_empty();
        if has_cmd && has_args {
            p.add("/", "give cmd or args, not both");
        } else if !has_cmd && !has_args && self.docker_image().is_none() {
            p.add(
                "/",
                "an app needs cmd or args, and/or a container with an image",
            );
        }
        if self.cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
            p.add("/cmd", "must not be empty");
        }
        if !matches!(self.executor.as_str(), "" | "//cmd") {
            p.add(
                "/executor",
                "custom executors are not supported (meso: only \"\" or \"//cmd\")",
            );
        }
        for name in self.env.keys() {
            if name.is_empty() || name.contains(['=', '\0']) {
                p.add(
                    format!("/env/{name}"),
                    "a variable name must be non-empty, without '=' or NUL",
                );
            }
        }
    }

    fn check_resources(&self, p: &mut Problems) {
        for (path, v) in [
            ("/cpus", self.cpus),
            ("/mem", self.mem),
            ("/disk", self.disk),
        ] {
            if v < 0.0 {
                p.add(path, format!("must be at least 0, got {v}"));
            }
        }
        if self.gpus > 0 {
            p.add("/gpus", "GPUs are not supported (meso: agents offer none)");
        }
    }

    fn check_strategies(&self, p: &mut Problems) {
        if self.backoff_factor < 1.0 {
            p.add(
                "/backoffFactor",
                format!("must be at least 1, got {}", self.backoff_factor),
            );
        }
        let u = &self.upgrade_strategy;
        for (name, v) in [
            ("minimumHealthCapacity", u.minimum_health_capacity),
            ("maximumOverCapacity", u.maximum_over_capacity),
        ] {
            if !(0.0..=1.0).contains(&v) {
                p.add(
                    format!("/upgradeStrategy/{name}"),
                    format!("must be between 0 and 1, got {v}"),
                );
            }
        }
        if let UnreachableStrategy::Enabled {
            inactive_after_seconds,
            expunge_after_seconds,
        } = self.unreachable_strategy
            && inactive_after_seconds > expunge_after_seconds
        {
            p.add(
                "/unreachableStrategy/inactiveAfterSeconds",
                format!(
                    "must not exceed expungeAfterSeconds ({inactive_after_seconds} > {expunge_after_seconds})"
                ),
            );
        }
    }

    fn check_container(&self, p: &mut Problems) {
        if self.networks.len() > 1 {
            p.add(
                "/networks",
                "give one network (meso: a task joins host, bridge or one container network)",
            );
        }
        let Some(c) = &self.container else { return };
        if c.kind == ContainerType::Docker && self.docker_image().is_none() {
            p.add(
                "/container/docker/image",
                "is required for a DOCKER container",
            );
        }
        if let Some(d) = &c.docker {
            for (i, parameter) in d.parameters.iter().enumerate() {
                if let Err(why) = parameter.parse() {
                    p.add(format!("/container/docker/parameters({i})/key"), why);
                }
            }
        }
        if !c.volumes.is_empty() && self.docker_image().is_none() {
            p.add(
                "/container/volumes",
                "volumes need a container image (meso mounts them with docker)",
            );
        }
        for (i, v) in c.volumes.iter().enumerate() {
            if !v.container_path.starts_with('/') {
                p.add(
                    format!("/container/volumes({i})/containerPath"),
                    "must be absolute",
                );
            }
            let host = Path::new(&v.host_path);
            if !host.is_absolute() && !host.components().all(|c| matches!(c, Component::Normal(_)))
            {
                p.add(
                    format!("/container/volumes({i})/hostPath"),
                    "must be absolute, or a path inside the sandbox (no '..')",
                );
            }
        }
        if self.is_host_networked() {
            return;
        }
        unique_names(
            c.port_mappings.iter().map(|m| m.name.as_deref()),
            "/container/portMappings",
            p,
        );
    }

    fn check_ports(&self, p: &mut Problems) {
        unique_names(
            self.port_definitions.iter().map(|d| d.name.as_deref()),
            "/portDefinitions",
            p,
        );
        let mut seen = BTreeSet::new();
        for (i, d) in self.port_definitions.iter().enumerate() {
            if d.port != 0 && !seen.insert(d.port) {
                p.add(
                    format!("/portDefinitions({i})/port"),
                    format!("port {} is given twice", d.port),
                );
            }
        }
    }

    fn check_health(&self, p: &mut Problems) {
        let ports = self.port_names().len();
        for (i, h) in self.health_checks.iter().enumerate() {
            let at = format!("/healthChecks({i})");
            if h.port.is_some() && h.port_index.is_some() {
                p.add(at.clone(), "give port or portIndex, not both");
            }
            if let Some(index) = h.port_index
                && h.protocol.uses_port()
                && index as usize >= ports
            {
                p.add(
                    format!("{at}/portIndex"),
                    format!("{index} does not address one of the app's {ports} port(s)"),
                );
            }
            if !h.protocol.uses_port()
                && h.command.as_ref().is_none_or(|c| c.value.trim().is_empty())
            {
                p.add(format!("{at}/command"), "is required for a COMMAND check");
            }
            if h.interval_seconds == 0 {
                p.add(format!("{at}/intervalSeconds"), "must be at least 1");
            }
        }
    }

    fn check_readiness(&self, p: &mut Problems) {
        if self.readiness_checks.len() > 1 {
            p.add("/readinessChecks", "at most one readiness check is allowed");
        }
        let names = self.port_names();
        for (i, r) in self.readiness_checks.iter().enumerate() {
            let at = format!("/readinessChecks({i})");
            if r.timeout_seconds == 0 {
                p.add(format!("{at}/timeoutSeconds"), "must be at least 1");
            }
            if r.timeout_seconds >= r.interval_seconds {
                p.add(
                    format!("{at}/timeoutSeconds"),
                    format!(
                        "must be less than intervalSeconds ({} >= {})",
                        r.timeout_seconds, r.interval_seconds
                    ),
                );
            }
            if !names.contains(&Some(r.port_name.as_str())) {
                p.add(
                    format!("{at}/portName"),
                    format!("'{}' names none of the app's ports", r.port_name),
                );
            }
            if r.http_status_codes_for_ready.is_empty()
                || r.http_status_codes_for_ready
                    .iter()
                    .any(|c| !(100..=599).contains(c))
            {
                p.add(
                    format!("{at}/httpStatusCodesForReady"),
                    "must list HTTP status codes (100-599)",
                );
            }
        }
    }
}

fn unique_names<'a>(names: impl Iterator<Item = Option<&'a str>>, at: &str, p: &mut Problems) {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        if let Some(name) = name
            && !seen.insert(name)
        {
            p.add(
                format!("{at}({i})/name"),
                format!("port name '{name}' is used twice"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::app::{AppError, PathId};
    use serde_json::{Value, json};

    /// The paths of the violations of `body` merged over a valid docker app.
    fn violations(body: Value) -> Vec<String> {
        let mut app = json!({
            "id": "/g/app", "container": {"docker": {"image": "nginx"}},
            "portDefinitions": [{"port": 0, "name": "http"}]
        });
        for (k, v) in body.as_object().expect("object") {
            app[k] = v.clone();
        }
        match AppDefinition::from_json(&app, &PathId::root()) {
            Ok(_) => Vec::new(),
            Err(AppError::Invalid(v)) => v.into_iter().map(|v| v.path).collect(),
            Err(e) => panic!("{body}: not a validation error: {e:?}"),
        }
    }

    #[test]
    fn the_base_app_is_valid() {
        assert_eq!(violations(json!({})), Vec::<String>::new());
    }

    #[test]
    fn each_rule_names_its_path() {
        let long = format!("/{}", "a".repeat(MAX_APP_ID_CHARS));
        let cases = [
            (json!({"id": "/"}), "/id"),
            (json!({"id": long}), "/id"),
            (json!({"cmd": "a", "args": ["b"]}), "/"),
            (json!({"container": null}), "/"),
            (json!({"container": {"type": "MESOS"}}), "/"),
            (json!({"cmd": "  "}), "/cmd"),
            (json!({"cpus": -0.5}), "/cpus"),
            (json!({"mem": -1}), "/mem"),
            (json!({"disk": -1}), "/disk"),
            (json!({"gpus": 1}), "/gpus"),
            (json!({"backoffFactor": 0.5}), "/backoffFactor"),
            (
                json!({"upgradeStrategy": {"minimumHealthCapacity": 1.5}}),
                "/upgradeStrategy/minimumHealthCapacity",
            ),
            (
                json!({"upgradeStrategy": {"maximumOverCapacity": -0.1}}),
                "/upgradeStrategy/maximumOverCapacity",
            ),
            (
                json!({"unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5}}),
                "/unreachableStrategy/inactiveAfterSeconds",
            ),
            (json!({"executor": "/opt/my-executor"}), "/executor"),
            (json!({"env": {"A=B": "x"}}), "/env/A=B"),
            (json!({"dependencies": ["/g/app"]}), "/dependencies(0)"),
            (json!({"constraints": [["hostname"]]}), "/constraints(0)"),
            (
                json!({"constraints": [["a", "LIKE", "x", "y"]]}),
                "/constraints(0)",
            ),
            (
                json!({"acceptedResourceRoles": ["a", "a"]}),
                "/acceptedResourceRoles",
            ),
            (json!({"role": "a/b"}), "/role"),
            (json!({"user": ""}), "/user"),
            (
                json!({"container": {"docker": {"image": ""}}}),
                "/container/docker/image",
            ),
            (
                json!({"container": {"type": "DOCKER"}, "cmd": "c"}),
                "/container/docker/image",
            ),
            (
                json!({"container": {"docker": {"image": "i", "parameters": [
                    {"key": "cap-add", "value": "ALL"}, {"key": "log-driver", "value": "syslog"}]}}}),
                "/container/docker/parameters(1)/key",
            ),
            (
                json!({"cmd": "c", "container": {"type": "MESOS",
                    "volumes": [{"containerPath": "/d", "hostPath": "/h", "mode": "RW"}]}}),
                "/container/volumes",
            ),
            (
                json!({"container": {"docker": {"image": "i"},
                    "volumes": [{"containerPath": "d", "hostPath": "/h", "mode": "RW"}]}}),
                "/container/volumes(0)/containerPath",
            ),
            (
                json!({"container": {"docker": {"image": "i"},
                    "volumes": [{"containerPath": "/d", "hostPath": "../h", "mode": "RW"}]}}),
                "/container/volumes(0)/hostPath",
            ),
            (
                json!({"networks": [{"mode": "host"}, {"mode": "container", "name": "n"}], "portDefinitions": []}),
                "/networks",
            ),
            (
                json!({"networks": [{"mode": "container/bridge"}], "portDefinitions": [],
                    "container": {"docker": {"image": "i"}, "portMappings": [
                        {"containerPort": 1, "name": "p"}, {"containerPort": 2, "name": "p"}]}}),
                "/container/portMappings(1)/name",
            ),
            (
                json!({"portDefinitions": [{"name": "a"}, {"name": "a"}]}),
                "/portDefinitions(1)/name",
            ),
            (
                json!({"portDefinitions": [{"port": 80}, {"port": 80}]}),
                "/portDefinitions(1)/port",
            ),
            (
                json!({"healthChecks": [{"portIndex": 1}]}),
                "/healthChecks(0)/portIndex",
            ),
            (
                json!({"portDefinitions": [], "healthChecks": [{"protocol": "TCP"}]}),
                "/healthChecks(0)/portIndex",
            ),
            (
                json!({"healthChecks": [{"port": 80, "portIndex": 0}]}),
                "/healthChecks(0)",
            ),
            (
                json!({"healthChecks": [{"protocol": "COMMAND"}]}),
                "/healthChecks(0)/command",
            ),
            (
                json!({"healthChecks": [{"intervalSeconds": 0}]}),
                "/healthChecks(0)/intervalSeconds",
            ),
            (
                json!({"readinessChecks": [{"portName": "http"}, {"portName": "http"}]}),
                "/readinessChecks",
            ),
            (
                json!({"readinessChecks": [{"portName": "http", "timeoutSeconds": 30}]}),
                "/readinessChecks(0)/timeoutSeconds",
            ),
            (
                json!({"readinessChecks": [{"portName": "http", "timeoutSeconds": 0}]}),
                "/readinessChecks(0)/timeoutSeconds",
            ),
            (
                json!({"readinessChecks": [{}]}),
                "/readinessChecks(0)/portName",
            ),
            (
                json!({"readinessChecks": [{"portName": "http", "httpStatusCodesForReady": []}]}),
                "/readinessChecks(0)/httpStatusCodesForReady",
            ),
        ];
        for (body, path) in cases {
            let paths = violations(body.clone());
            assert!(
                paths.iter().any(|p| p == path),
                "{body}: wanted {path}, got {paths:?}"
            );
        }
    }

    #[test]
    fn what_marathon_allows_stays_allowed() {
        let fine = [
            json!({"cpus": 0, "mem": 0, "instances": 0}),
            json!({"cmd": "sleep 1"}),
            json!({"args": ["--port", "80"]}),
            json!({"container": null, "args": ["/bin/true"]}),
            json!({"executor": "//cmd"}),
            json!({"constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "2"]]}),
            json!({"healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0},
                                    {"protocol": "COMMAND", "command": {"value": "true"}}]}),
            json!({"readinessChecks": [{"portName": "http"}]}),
            json!({"unreachableStrategy": "disabled", "upgradeStrategy": {"minimumHealthCapacity": 0}}),
            json!({"container": {"docker": {"image": "i"},
                   "volumes": [{"containerPath": "/d", "hostPath": "logs", "mode": "RW"}]}}),
            json!({"networks": [{"mode": "container", "name": "n"}], "portDefinitions": []}),
        ];
        for body in fine {
            assert_eq!(violations(body.clone()), Vec::<String>::new(), "{body}");
        }
    }
}
