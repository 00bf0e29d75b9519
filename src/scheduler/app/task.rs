//! From an app to the [`TaskSpec`] the master launches, and Marathon's task
//! ids (`<safe_name>.instance-<uuid>._app.1`) both ways.
//!
//! How an app becomes a task:
//! - `cmd` → a shell command (`/bin/sh -c`); `args` → argv without a shell
//!   (for a process task argv[0] is the program; for a docker task the args
//!   follow the image's entrypoint, as Mesos does);
//! - a DOCKER container, or a MESOS one with `docker.image` (Mesos's UCR,
//!   which meso runs with the docker engine), → [`DockerSpec`]; networks
//!   `host` → HOST, `container/bridge` → BRIDGE, and `container` → BRIDGE
//!   too: meso has no CNI networks, and docker's bridge gives each task its
//!   own IP as a container network would. Every port mapping is published
//!   on a host port (0 = the master picks);
//! - host ports: `host_ports[i]` when non-zero, else the app's fixed port
//!   (`hostPort`, or `port` with `requirePorts`), else 0 for the master to
//!   pick. A bridge mapping with `containerPort: 0` takes its host port
//!   as container port, as in Marathon, once that port is known;
//! - env: the app's `env` over Marathon's `MARATHON_APP_*` variables (the
//!   agent adds `MESOS_*`, `HOST`, `PORT*`);
//! - `name`: the id reversed and dotted (`/a/b/c` → `c.b.a`), Marathon's
//!   task name, from which Mesos-DNS names are made.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::container::{NetworkMode, VolumeMode as AppVolumeMode};
use super::definition::AppDefinition;
use super::path::PathId;
use crate::model::{
    CommandSpec, ContainerKind, ContainerSpec, DockerNetwork, DockerSpec, FetchUri, PortMapping,
    TaskPort, TaskSpec, Volume, VolumeMode,
};

/// Marathon omits labels whose name or value is this long or longer.
const MAX_ENV_VALUE: usize = 512;
const LABEL_PREFIX: &str = "MARATHON_APP_LABEL_";

/// A fresh task id for an app: `<safe_name>.instance-<uuid>._app.1`.
pub fn new_task_id(app: &PathId) -> String {
    format!("{}.instance-{}._app.1", app.safe_name(), Uuid::new_v4())
}

/// The app a task id belongs to, for every form Marathon has used:
/// `<app>.instance-<uuid>._app.<n>`, `<app>.marathon-<uuid>` and `<app>.<uuid>`.
pub fn app_id_of_task(task_id: &str) -> Option<PathId> {
    let safe = [".instance-", ".marathon-"]
        .iter()
        .filter_map(|marker| task_id.rfind(marker).map(|at| &task_id[..at]))
        .next()
        .or_else(|| {
            let (safe, uuid) = task_id.rsplit_once('.')?;
            Uuid::parse_str(uuid).is_ok().then_some(safe)
        })?;
    let segments: Vec<&str> = safe.split('_').collect();
    PathId::from_segments(&segments)
        .ok()
        .filter(|id| !id.is_root())
}

/// A number as Scala's `Double.toString` writes it for Marathon's env:
/// `1.0`, `0.5`, `128.0`.
fn scala_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

/// A label name as Marathon puts it into a variable name: runs of anything
/// but letters, digits and `_` become one `_`, then upper case.
fn env_name(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut in_run = false;
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_uppercase());
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

impl AppDefinition {
    /// Marathon's task environment for this app at `version`, without `env`.
    pub fn marathon_env(&self, version: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("MARATHON_APP_ID".into(), self.id.to_string());
        env.insert("MARATHON_APP_VERSION".into(), version.to_string());
        if let Some(image) = self.docker_image() {
            env.insert("MARATHON_APP_DOCKER_IMAGE".into(), image.to_string());
        }
        env.insert("MARATHON_APP_RESOURCE_CPUS".into(), scala_double(self.cpus));
        env.insert("MARATHON_APP_RESOURCE_MEM".into(), scala_double(self.mem));
        env.insert("MARATHON_APP_RESOURCE_DISK".into(), scala_double(self.disk));
        env.insert("MARATHON_APP_RESOURCE_GPUS".into(), self.gpus.to_string());
        let mut names = Vec::new();
        for (key, value) in &self.labels {
            if key.len() < MAX_ENV_VALUE - LABEL_PREFIX.len() && value.len() < MAX_ENV_VALUE {
                let name = env_name(key);
                env.insert(format!("{LABEL_PREFIX}{name}"), value.clone());
                names.push(name);
            }
        }
        env.insert("MARATHON_APP_LABELS".into(), names.join(" "));
        env
    }

    /// The environment of every task of this app at `version`: Marathon's
    /// variables, then the app's `env`. Built once per app and shared by its
    /// tasks' specs (and, on the leader, by the registry's records of them).
    pub fn task_env(&self, version: &str) -> Arc<BTreeMap<String, String>> {
        let mut environment = self.marathon_env(version);
        environment.extend(self.env.clone());
        Arc::new(environment)
    }

    /// The spec of one task of this app on `agent_id`, with `environment`
    /// from [`Self::task_env`]; see the module doc.
    pub fn task_spec(
        &self,
        task_id: &str,
        agent_id: &str,
        host_ports: &[u16],
        environment: &Arc<BTreeMap<String, String>>,
    ) -> TaskSpec {
        let chosen = |i: usize, fixed: u16| {
            host_ports
                .get(i)
                .copied()
                .filter(|p| *p != 0)
                .unwrap_or(fixed)
        };
        let docker = self.docker_image().is_some();
        let (value, shell, arguments) = match (&self.cmd, self.args.first()) {
            (Some(cmd), _) => (Some(cmd.clone()), true, Vec::new()),
            (None, Some(program)) if !docker => (Some(program.clone()), false, self.args.clone()),
            _ => (None, false, self.args.clone()),
        };
        let command = CommandSpec {
            value,
            shell,
            arguments,
            environment: environment.clone(),
            uris: self
                .fetch
                .iter()
                .map(|f| FetchUri {
                    value: f.uri.clone(),
                    executable: f.executable,
                    extract: f.extract,
                    output_file: f.dest_path.clone(),
                })
                .collect(),
            user: self.user.clone(),
        };

        let mappings: Vec<PortMapping> = self
            .port_mappings()
            .enumerate()
            .map(|(i, m)| {
                let host_port = chosen(i, m.host_port.unwrap_or(0));
                PortMapping {
                    host_port,
                    container_port: if m.container_port == 0 {
                        host_port
                    } else {
                        m.container_port
                    },
                    protocol: m.protocol.clone(),
                    name: m.name.clone(),
                }
            })
            .collect();
        let ports: Vec<TaskPort> = if self.is_host_networked() {
            self.port_definitions
                .iter()
                .enumerate()
                .map(|(i, d)| TaskPort {
                    number: chosen(i, if self.require_ports { d.port } else { 0 }),
                    name: d.name.clone(),
                })
                .collect()
        } else {
            mappings
                .iter()
                .map(|m| TaskPort {
                    number: m.host_port,
                    name: m.name.clone(),
                })
                .collect()
        };

        let container = self.container.as_ref().and_then(|c| {
            let image = self.docker_image()?;
            let network = match self.networks.first().map(|n| n.mode) {
                None | Some(NetworkMode::Host) => DockerNetwork::Host,
                Some(NetworkMode::ContainerBridge | NetworkMode::Container) => {
                    DockerNetwork::Bridge
                }
            };
            Some(ContainerSpec {
                kind: ContainerKind::Docker,
                docker: Some(DockerSpec {
                    image: image.to_string(),
                    network,
                    port_mappings: if network == DockerNetwork::Bridge {
                        mappings.clone()
                    } else {
                        Vec::new()
                    },
                    force_pull_image: c.docker.as_ref().is_some_and(|d| d.force_pull_image),
                    privileged: c.docker.as_ref().is_some_and(|d| d.privileged),
                    parameters: c
                        .docker
                        .as_ref()
                        .map(|d| d.parameters.clone())
                        .unwrap_or_default(),
                }),
                volumes: c
                    .volumes
                    .iter()
                    .map(|v| Volume {
                        container_path: v.container_path.clone(),
                        host_path: v.host_path.clone(),
                        mode: match v.mode {
                            AppVolumeMode::RO => VolumeMode::RO,
                            AppVolumeMode::RW => VolumeMode::RW,
                        },
                    })
                    .collect(),
            })
        });
        TaskSpec {
            task_id: task_id.to_string(),
            name: self.id.to_hostname(),
            agent_id: agent_id.to_string(),
            framework_id: None,
            cpus: self.cpus,
            mem: self.mem,
            disk: self.disk,
            ports,
            command: Some(command),
            container,
            labels: self.labels.clone(),
            kill_grace_period_seconds: self.task_kill_grace_period_seconds.map(f64::from),
            health_checks: self.health_checks.iter().map(health_check_spec).collect(),
            readiness_check: self.readiness_check_spec(),
            run_spec: None,
        }
    }
}

impl AppDefinition {
    /// The app's readiness check (at most one) as the agent asks it: its
    /// port name resolved to the index of the task's host port. Validation
    /// made sure the name is one of the app's ports.
    fn readiness_check_spec(&self) -> Option<crate::model::ReadinessCheckSpec> {
        let check = self.readiness_checks.first()?;
        let port_index = self
            .port_names()
            .iter()
            .position(|n| *n == Some(check.port_name.as_str()))
            .unwrap_or(0);
        Some(crate::model::ReadinessCheckSpec {
            name: check.name.clone(),
            protocol: match check.protocol {
                super::ReadinessProtocol::Http => crate::model::HealthProtocol::Http,
                super::ReadinessProtocol::Https => crate::model::HealthProtocol::Https,
            },
            path: check.path.clone(),
            port_index,
            interval_seconds: f64::from(check.interval_seconds),
            // Validation asks for 1 or more; an app stored before that
            // rule still gets a usable time.
            timeout_seconds: f64::from(check.timeout_seconds.max(1)),
            http_status_codes_for_ready: check.http_status_codes_for_ready.clone(),
        })
    }
}

/// An app's health check as the agent runs it. Marathon's own HTTP/TCP
/// checks and the MESOS_* ones both run on the agent here (Marathon ran the
/// former from the leader), with Marathon's meaning of
/// `maxConsecutiveFailures: 0` (never kill) for both.
fn health_check_spec(check: &super::HealthCheck) -> crate::model::health::HealthCheckSpec {
    use super::HealthProtocol as App;
    use crate::model::health::HealthProtocol as Agent;
    crate::model::health::HealthCheckSpec {
        protocol: match check.protocol {
            App::Http | App::MesosHttp => Agent::Http,
            App::Https | App::MesosHttps => Agent::Https,
            App::Tcp | App::MesosTcp => Agent::Tcp,
            App::Command => Agent::Command,
        },
        path: check.path.clone().unwrap_or_else(|| "/".into()),
        port_index: check.port_index.map(|i| i as usize),
        port: check.port,
        command: check.command.as_ref().map(|c| c.value.clone()),
        grace_period_seconds: f64::from(check.grace_period_seconds),
        interval_seconds: f64::from(check.interval_seconds),
        timeout_seconds: f64::from(check.timeout_seconds),
        max_consecutive_failures: check.max_consecutive_failures,
        delay_seconds: f64::from(check.delay_seconds),
        ignore_http1xx: check.ignore_http1xx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::app::test_app;
    use serde_json::json;

    const V: &str = "2015-09-30T09:09:17.614Z";

    #[test]
    fn a_cmd_app_runs_in_a_shell_with_marathons_env() {
        let a = test_app(json!({
            "id": "/shop/api", "cmd": "exec ./api --port $PORT0", "cpus": 0.5, "mem": 64,
            "env": {"MODE": "prod", "MARATHON_APP_VERSION": "mine"},
            "labels": {"team": "core", "haproxy.0-vhost": "api.example.com"},
            "portDefinitions": [{"port": 10000, "name": "http"}, {"port": 10001}],
            "fetch": [{"uri": "https://x/cfg.tgz", "destPath": "cfg.tgz", "executable": false}],
            "taskKillGracePeriodSeconds": 7
        }));
        let spec = a.task_spec(
            "shop_api.instance-1._app.1",
            "c-S1",
            &[31001],
            &a.task_env(V),
        );
        assert_eq!(spec.name, "api.shop");
        assert_eq!(
            (spec.task_id.as_str(), spec.agent_id.as_str()),
            ("shop_api.instance-1._app.1", "c-S1")
        );
        assert_eq!((spec.cpus, spec.mem, spec.disk), (0.5, 64.0, 0.0));
        assert_eq!(spec.kill_grace_period_seconds, Some(7.0));
        assert!(spec.container.is_none());
        let cmd = spec.command.as_ref().expect("command");
        assert_eq!(cmd.value.as_deref(), Some("exec ./api --port $PORT0"));
        assert!(cmd.shell && cmd.arguments.is_empty());
        let ports: Vec<(u16, Option<&str>)> = spec
            .ports
            .iter()
            .map(|p| (p.number, p.name.as_deref()))
            .collect();
        assert_eq!(
            ports,
            [(31001, Some("http")), (0, None)],
            "given, else the master picks"
        );
        let env = &cmd.environment;
        assert_eq!(env["MARATHON_APP_ID"], "/shop/api");
        assert_eq!(env["MARATHON_APP_VERSION"], "mine", "the app's env wins");
        assert_eq!(env["MARATHON_APP_RESOURCE_CPUS"], "0.5");
        assert_eq!(env["MARATHON_APP_RESOURCE_MEM"], "64.0");
        assert_eq!(env["MARATHON_APP_RESOURCE_DISK"], "0.0");
        assert_eq!(env["MARATHON_APP_RESOURCE_GPUS"], "0");
        assert_eq!(env["MARATHON_APP_LABELS"], "HAPROXY_0_VHOST TEAM");
        assert_eq!(env["MARATHON_APP_LABEL_HAPROXY_0_VHOST"], "api.example.com");
        assert_eq!(env["MARATHON_APP_LABEL_TEAM"], "core");
        assert_eq!(env["MODE"], "prod");
        assert!(!env.contains_key("MARATHON_APP_DOCKER_IMAGE"));
        assert_eq!(cmd.uris.len(), 1);
        assert_eq!(cmd.uris[0].output_file.as_deref(), Some("cfg.tgz"));
        assert!(cmd.uris[0].extract);
        assert_eq!(spec.labels["team"], "core");
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn require_ports_asks_for_the_declared_ports() {
        let a = test_app(json!({"id": "x", "cmd": "c", "requirePorts": true,
                           "portDefinitions": [{"port": 8080}, {"port": 8081}]}));
        let spec = a.task_spec("x.1", "a", &[], &a.task_env(V));
        let ports: Vec<u16> = spec.ports.iter().map(|p| p.number).collect();
        assert_eq!(ports, [8080, 8081]);
        let empty = test_app(json!({"id": "x", "cmd": "c", "portDefinitions": []}));
        assert!(
            empty
                .task_spec("x.1", "a", &[], &empty.task_env(V))
                .ports
                .is_empty()
        );
    }

    #[test]
    fn an_args_app_runs_its_argv_without_a_shell() {
        let a = test_app(json!({"id": "x", "args": ["/bin/echo", "a b", "$HOME"]}));
        let spec = a.task_spec("x.1", "a", &[], &a.task_env(V));
        let cmd = spec.command.as_ref().expect("command");
        assert!(!cmd.shell);
        assert_eq!(cmd.value.as_deref(), Some("/bin/echo"));
        assert_eq!(cmd.arguments, ["/bin/echo", "a b", "$HOME"]);
        assert_eq!(
            cmd.user, None,
            "the agent's own user unless the app names one"
        );
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn an_apps_user_is_its_tasks_user() {
        let a = test_app(json!({"id": "x", "cmd": "id -u", "user": "nobody"}));
        let spec = a.task_spec("x.1", "a", &[], &a.task_env(V));
        let cmd = spec.command.as_ref().expect("command");
        assert_eq!(cmd.user.as_deref(), Some("nobody"));
    }

    #[test]
    fn a_docker_bridge_app_maps_its_ports_on_given_host_ports() {
        let a = test_app(json!({
            "id": "/web/nginx",
            "container": {"type": "DOCKER",
                "docker": {"image": "nginx:1.25", "network": "BRIDGE", "forcePullImage": true},
                "portMappings": [{"containerPort": 80, "name": "http"},
                                 {"containerPort": 0, "hostPort": 0, "protocol": "udp"},
                                 {"containerPort": 9000, "hostPort": 31999}],
                "volumes": [{"containerPath": "/etc/nginx", "hostPath": "conf", "mode": "RO"}]},
            "args": ["-g", "daemon off;"]
        }));
        let spec = a.task_spec(
            "web_nginx.instance-1._app.1",
            "a",
            &[31000, 31002],
            &a.task_env(V),
        );
        let docker = spec.docker().expect("docker");
        assert_eq!(spec.container_kind(), ContainerKind::Docker);
        assert_eq!(docker.image, "nginx:1.25");
        assert_eq!(docker.network, DockerNetwork::Bridge);
        assert!(docker.force_pull_image);
        let maps: Vec<(u16, u16, &str)> = docker
            .port_mappings
            .iter()
            .map(|m| (m.host_port, m.container_port, m.protocol.as_str()))
            .collect();
        assert_eq!(
            maps,
            [
                (31000, 80, "tcp"),
                (31002, 31002, "udp"),
                (31999, 9000, "tcp")
            ]
        );
        let ports: Vec<(u16, Option<&str>)> = spec
            .ports
            .iter()
            .map(|p| (p.number, p.name.as_deref()))
            .collect();
        assert_eq!(ports, [(31000, Some("http")), (31002, None), (31999, None)]);
        let vol = &spec.container.as_ref().expect("container").volumes[0];
        assert_eq!(
            (
                vol.container_path.as_str(),
                vol.host_path.as_str(),
                vol.mode
            ),
            ("/etc/nginx", "conf", VolumeMode::RO)
        );
        let cmd = spec.command.as_ref().expect("command");
        assert_eq!(
            (cmd.value.as_deref(), cmd.shell),
            (None, false),
            "args follow the entrypoint"
        );
        assert_eq!(cmd.arguments, ["-g", "daemon off;"]);
        assert_eq!(cmd.environment["MARATHON_APP_DOCKER_IMAGE"], "nginx:1.25");
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn docker_parameters_and_privileged_reach_the_task() {
        let a = test_app(json!({"id": "p", "container": {"docker": {
            "image": "redis", "privileged": true,
            "parameters": [{"key": "cap-add", "value": "NET_ADMIN"}]}}}));
        let spec = a.task_spec("p.1", "a", &[], &a.task_env(V));
        let docker = spec.docker().expect("docker");
        assert!(docker.privileged);
        assert_eq!(docker.parameters.len(), 1);
        assert_eq!(docker.parameters[0].to_string(), "--cap-add=NET_ADMIN");
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn docker_host_and_container_networks() {
        let host = test_app(json!({"id": "h", "container": {"docker": {"image": "redis"}}}));
        let spec = host.task_spec("h.1", "a", &[], &host.task_env(V));
        let docker = spec.docker().expect("docker");
        assert_eq!(docker.network, DockerNetwork::Host);
        assert!(docker.port_mappings.is_empty());
        assert_eq!(spec.ports.len(), 1, "the default port definition");
        let cmd = spec.command.as_ref().expect("command");
        assert_eq!(
            (cmd.value.as_deref(), cmd.arguments.len()),
            (None, 0),
            "image's own command"
        );

        let named = test_app(
            json!({"id": "n", "networks": [{"mode": "container", "name": "dcos"}],
                               "container": {"docker": {"image": "redis"},
                                             "portMappings": [{"containerPort": 6379}]}}),
        );
        let spec = named.task_spec("n.1", "a", &[], &named.task_env(V));
        let docker = spec.docker().expect("docker");
        assert_eq!(docker.network, DockerNetwork::Bridge);
        assert_eq!(
            docker.port_mappings[0].host_port, 0,
            "published; the master picks"
        );

        let ucr = test_app(
            json!({"id": "u", "cmd": "c", "container": {"type": "MESOS", "docker": {"image": "alpine"}}}),
        );
        assert_eq!(
            ucr.task_spec("u.1", "a", &[], &ucr.task_env(V))
                .container_kind(),
            ContainerKind::Docker
        );
    }

    #[test]
    fn task_ids_name_their_app() {
        let id = PathId::parse("/prod/my-app.v2").expect("id");
        let task = new_task_id(&id);
        assert!(task.starts_with("prod_my-app.v2.instance-"), "{task}");
        assert!(task.ends_with("._app.1"), "{task}");
        assert_eq!(app_id_of_task(&task), Some(id.clone()));
        assert_ne!(new_task_id(&id), task, "fresh each time");
        let uuid = "5f6a7e2c-1d2b-4c3a-9e8f-0a1b2c3d4e5f";
        let legacy = [
            format!("prod_my-app.v2.{uuid}"),
            format!("prod_my-app.v2.marathon-{uuid}"),
            format!("prod_my-app.v2.instance-{uuid}._app"),
        ];
        for t in legacy {
            assert_eq!(app_id_of_task(&t), Some(id.clone()), "{t}");
        }
        for bad in [
            "",
            "no-marker",
            "Bad.instance-x._app.1",
            ".instance-x",
            "a.not-a-uuid",
        ] {
            assert_eq!(app_id_of_task(bad), None, "{bad:?}");
        }
        let long = PathId::parse(&format!(
            "/{}",
            "a".repeat(crate::scheduler::app::MAX_APP_ID_CHARS - 1)
        ))
        .expect("longest id");
        let spec = TaskSpec {
            task_id: new_task_id(&long),
            agent_id: "a".into(),
            command: Some(CommandSpec {
                value: Some("c".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            spec.validate(),
            Ok(()),
            "the longest app id still makes a valid task id"
        );
    }

    #[test]
    fn label_names_become_variable_names_as_marathon_makes_them() {
        assert_eq!(env_name("a.b--c"), "A_B_C");
        assert_eq!(env_name("x_y"), "X_Y");
        assert_eq!(env_name("ünï"), "_N_");
        let a = test_app(json!({"id": "x", "cmd": "c", "labels": {"big": "v".repeat(600)}}));
        let env = a.marathon_env(V);
        assert!(!env.contains_key("MARATHON_APP_LABEL_BIG"));
        assert_eq!(env["MARATHON_APP_LABELS"], "");
    }
}
