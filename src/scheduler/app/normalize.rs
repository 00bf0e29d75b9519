//! Wire form → canonical form: deprecated spellings rewritten the way
//! Marathon's `AppNormalization` does, Marathon's defaults applied, and
//! whatever cannot be represented (an unknown enum value, a secret, a
//! volume kind meso cannot mount) reported as a violation with its path.
//! Networking and ports, the tangled part, live in `networking.rs`.
//!
//! Deprecated forms here: `uris: [u]` → `fetch: [{uri: u, extract: <u is
//! an archive>}]`; a health check's `command` as a bare string. Giving a
//! deprecated form together with its replacement is refused.

use std::collections::BTreeMap;

use serde_json::Value;

use super::checks::{CommandCheck, HealthCheck, HealthProtocol, ReadinessCheck, ReadinessProtocol};
use super::container::NetworkMode;
use super::definition::{
    AppDefinition, Fetch, KillSelection, UnreachableStrategy, UpgradeStrategy, VersionInfo,
};
use super::error::{Problems, Violation, join_path};
use super::lenient::{Lenient, describe, from_value};
use super::networking::{container, networks, port_definitions};
use super::path::PathId;
use super::time::normalize_timestamp;
use super::wire::*;

pub(crate) fn normalize_app(w: AppWire, base: &PathId) -> Result<AppDefinition, Vec<Violation>> {
    let mut p = Problems::default();
    let networks = networks(&w, &mut p);

    let id = match &w.id {
        None => {
            p.add("/id", "is required");
            PathId::root()
        }
        Some(Lenient(raw)) => PathId::parse_in(raw, base).unwrap_or_else(|e| {
            p.add("/id", e);
            PathId::root()
        }),
    };
    let dependencies = dependencies(w.dependencies, &id, "", &mut p);

    let mut env = BTreeMap::new();
    for (name, value) in w.env.unwrap_or_default() {
        match value {
            Value::String(s) => {
                env.insert(name, s);
            }
            Value::Object(o) if o.contains_key("secret") => p.add(
                format!("/env/{name}"),
                "secret references are not supported (meso has no secret store)",
            ),
            other => p.add(
                format!("/env/{name}"),
                format!("must be a string, got {}", describe(&other)),
            ),
        }
    }
    if w.secrets.as_ref().is_some_and(|s| !s.is_empty()) {
        p.add(
            "/secrets",
            "secrets are not supported (meso has no secret store)",
        );
    }

    let fetch = fetch(w.fetch, w.uris, &mut p);
    let host = networks.iter().all(|n| n.mode == NetworkMode::Host);
    let bridge = networks
        .iter()
        .any(|n| n.mode == NetworkMode::ContainerBridge);
    let container = container(w.container, host, bridge, &mut p);
    let port_definitions = port_definitions(w.port_definitions, w.ports, host, &mut p);

    let health_checks = w
        .health_checks
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, h)| health_check(h, &format!("/healthChecks({i})"), &mut p))
        .collect();
    let readiness_checks = w
        .readiness_checks
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, r)| readiness_check(r, &format!("/readinessChecks({i})"), &mut p))
        .collect();

    let upgrade_strategy = w
        .upgrade_strategy
        .map(|u| {
            let d = UpgradeStrategy::default();
            UpgradeStrategy {
                minimum_health_capacity: num(u.minimum_health_capacity, d.minimum_health_capacity),
                maximum_over_capacity: num(u.maximum_over_capacity, d.maximum_over_capacity),
            }
        })
        .unwrap_or_default();
    let unreachable_strategy = unreachable(w.unreachable_strategy, &mut p);
    let kill_selection = match w.kill_selection.as_deref().map(str::to_ascii_uppercase) {
        None => KillSelection::default(),
        Some(s) if s == "YOUNGEST_FIRST" => KillSelection::YoungestFirst,
        Some(s) if s == "OLDEST_FIRST" => KillSelection::OldestFirst,
        Some(s) => {
            p.add(
                "/killSelection",
                format!("'{s}' is not one of YOUNGEST_FIRST, OLDEST_FIRST"),
            );
            KillSelection::default()
        }
    };
    let version = w.version.and_then(|v| timestamp(&v, "/version", &mut p));
    let version_info = w.version_info.and_then(|vi| {
        let scaling = vi
            .last_scaling_at
            .and_then(|t| timestamp(&t, "/versionInfo/lastScalingAt", &mut p));
        let config = vi
            .last_config_change_at
            .and_then(|t| timestamp(&t, "/versionInfo/lastConfigChangeAt", &mut p));
        let fallback = scaling.clone().or(config.clone()).or(version.clone())?;
        Some(VersionInfo {
            last_scaling_at: scaling.unwrap_or_else(|| fallback.clone()),
            last_config_change_at: config.unwrap_or(fallback),
        })
    });

    let app = AppDefinition {
        id,
        cmd: w.cmd,
        args: w
            .args
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.0)
            .collect(),
        user: w.user,
        env,
        instances: int(w.instances, AppDefinition::DEFAULT_INSTANCES),
        cpus: num(w.cpus, AppDefinition::DEFAULT_CPUS),
        mem: num(w.mem, AppDefinition::DEFAULT_MEM),
        disk: num(w.disk, AppDefinition::DEFAULT_DISK),
        gpus: int(w.gpus, 0),
        executor: w.executor.unwrap_or_default(),
        constraints: w
            .constraints
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.into_iter().map(|part| part.0).collect())
            .collect(),
        fetch,
        backoff_seconds: int(w.backoff_seconds, AppDefinition::DEFAULT_BACKOFF_SECONDS),
        backoff_factor: num(w.backoff_factor, AppDefinition::DEFAULT_BACKOFF_FACTOR),
        max_launch_delay_seconds: int(
            w.max_launch_delay_seconds,
            AppDefinition::DEFAULT_MAX_LAUNCH_DELAY_SECONDS,
        ),
        container,
        health_checks,
        readiness_checks,
        dependencies,
        upgrade_strategy,
        labels: texts(w.labels),
        accepted_resource_roles: w.accepted_resource_roles,
        version,
        version_info,
        kill_selection,
        unreachable_strategy,
        require_ports: host && flag(w.require_ports, false),
        networks,
        port_definitions,
        role: w
            .role
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| AppDefinition::DEFAULT_ROLE.into()),
        task_kill_grace_period_seconds: w.task_kill_grace_period_seconds.map(|t| t.0),
    };
    p.into_result().map(|()| app)
}

fn num(v: Option<Lenient<f64>>, default: f64) -> f64 {
    v.map_or(default, |v| v.0)
}

fn int(v: Option<Lenient<u32>>, default: u32) -> u32 {
    v.map_or(default, |v| v.0)
}

pub(super) fn flag(v: Option<Lenient<bool>>, default: bool) -> bool {
    v.map_or(default, |v| v.0)
}

pub(super) fn texts(map: Option<BTreeMap<String, Lenient<String>>>) -> BTreeMap<String, String> {
    map.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// `owner`'s dependencies as absolute ids: relative ones name siblings, so
/// they resolve against `owner`'s parent. `at` prefixes error paths.
pub(super) fn dependencies(
    given: Option<Vec<String>>,
    owner: &PathId,
    at: &str,
    p: &mut Problems,
) -> Vec<PathId> {
    given
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            PathId::parse_in(d, &owner.parent())
                .map_err(|e| p.add(format!("{at}/dependencies({i})"), e))
                .ok()
        })
        .collect()
}

fn timestamp(text: &str, path: &str, p: &mut Problems) -> Option<String> {
    let parsed = normalize_timestamp(text);
    if parsed.is_none() {
        p.add(
            path,
            format!("'{text}' is not an ISO-8601 timestamp like 2015-09-30T09:09:17.614Z"),
        );
    }
    parsed
}

/// Archives the fetcher unpacks; what Marathon marks `extract` for `uris`.
fn is_archive(uri: &str) -> bool {
    let path = uri
        .split(['?', '#'])
        .next()
        .unwrap_or(uri)
        .to_ascii_lowercase();
    [
        ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip", ".tar",
    ]
    .iter()
    .any(|ext| path.ends_with(ext))
}

fn fetch(fetch: Option<Vec<FetchWire>>, uris: Option<Vec<String>>, p: &mut Problems) -> Vec<Fetch> {
    let fetch = fetch.unwrap_or_default();
    let uris = uris.unwrap_or_default();
    if !fetch.is_empty() && !uris.is_empty() {
        p.add("/uris", "give fetch or the deprecated uris, not both");
    }
    if fetch.is_empty() {
        return uris
            .into_iter()
            .map(|uri| Fetch {
                extract: is_archive(&uri),
                uri,
                executable: false,
                cache: false,
                dest_path: None,
            })
            .collect();
    }
    let mut out = Vec::new();
    for (i, f) in fetch.into_iter().enumerate() {
        match f.uri.filter(|u| !u.trim().is_empty()) {
            None => p.add(format!("/fetch({i})/uri"), "is required"),
            Some(uri) => out.push(Fetch {
                uri,
                extract: flag(f.extract, true),
                executable: flag(f.executable, false),
                cache: flag(f.cache, false),
                dest_path: f.dest_path,
            }),
        }
    }
    out
}

fn health_check(h: HealthCheckWire, at: &str, p: &mut Problems) -> HealthCheck {
    let protocol = match h.protocol.as_deref().map(str::to_ascii_uppercase) {
        None => HealthProtocol::Http,
        Some(name) => HealthProtocol::ALL
            .into_iter()
            .find(|proto| proto.name() == name)
            .unwrap_or_else(|| {
                p.add(
                    format!("{at}/protocol"),
                    format!(
                        "'{name}' is not one of HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, MESOS_HTTPS, MESOS_TCP"
                    ),
                );
                HealthProtocol::Http
            }),
    };
    let port = h.port.map(|v| v.0);
    let port_index = match h.port_index.map(|v| v.0) {
        None if protocol.uses_port() && port.is_none() => Some(0),
        given => given,
    };
    let ip_protocol = match h
        .ip_protocol
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => None,
        Some("ipv4") => Some("IPv4".to_string()),
        Some("ipv6") => Some("IPv6".to_string()),
        Some(other) => {
            p.add(
                format!("{at}/ipProtocol"),
                format!("'{other}' is not one of IPv4, IPv6"),
            );
            None
        }
    };
    HealthCheck {
        protocol,
        path: protocol
            .is_http()
            .then(|| h.path.unwrap_or_else(|| "/".into())),
        port_index,
        port,
        command: h.command.map(|c| match c {
            CommandWire::Text(value) | CommandWire::Object { value } => CommandCheck { value },
        }),
        grace_period_seconds: int(
            h.grace_period_seconds,
            HealthCheck::DEFAULT_GRACE_PERIOD_SECONDS,
        ),
        interval_seconds: int(h.interval_seconds, HealthCheck::DEFAULT_INTERVAL_SECONDS),
        timeout_seconds: int(h.timeout_seconds, HealthCheck::DEFAULT_TIMEOUT_SECONDS),
        max_consecutive_failures: int(
            h.max_consecutive_failures,
            HealthCheck::DEFAULT_MAX_CONSECUTIVE_FAILURES,
        ),
        delay_seconds: int(h.delay_seconds, HealthCheck::DEFAULT_DELAY_SECONDS),
        ignore_http1xx: flag(h.ignore_http1xx, false),
        ip_protocol,
    }
}

fn readiness_check(r: ReadinessCheckWire, at: &str, p: &mut Problems) -> ReadinessCheck {
    let protocol = match r
        .protocol
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("HTTP") => ReadinessProtocol::Http,
        Some("HTTPS") => ReadinessProtocol::Https,
        Some(other) => {
            p.add(
                format!("{at}/protocol"),
                format!("'{other}' is not one of HTTP, HTTPS"),
            );
            ReadinessProtocol::Http
        }
    };
    ReadinessCheck {
        name: r
            .name
            .unwrap_or_else(|| ReadinessCheck::DEFAULT_NAME.into()),
        protocol,
        path: r.path.unwrap_or_else(|| "/".into()),
        port_name: r
            .port_name
            .unwrap_or_else(|| ReadinessCheck::DEFAULT_PORT_NAME.into()),
        interval_seconds: int(r.interval_seconds, ReadinessCheck::DEFAULT_INTERVAL_SECONDS),
        timeout_seconds: int(r.timeout_seconds, ReadinessCheck::DEFAULT_TIMEOUT_SECONDS),
        http_status_codes_for_ready: r.http_status_codes_for_ready.map_or_else(
            || vec![200],
            |codes| codes.into_iter().map(|c| c.0).collect(),
        ),
        preserve_last_response: flag(r.preserve_last_response, false),
    }
}

fn unreachable(v: Option<Value>, p: &mut Problems) -> UnreachableStrategy {
    match v {
        None | Some(Value::Null) => UnreachableStrategy::default(),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("disabled") => {
            UnreachableStrategy::Disabled
        }
        Some(v @ Value::Object(_)) => match from_value::<UnreachableWire>(&v) {
            Ok(u) => UnreachableStrategy::Enabled {
                inactive_after_seconds: int(u.inactive_after_seconds, 0),
                expunge_after_seconds: int(u.expunge_after_seconds, 0),
            },
            Err(e) => {
                p.extend(vec![Violation {
                    path: join_path("/unreachableStrategy", &e.path),
                    errors: e.errors,
                }]);
                UnreachableStrategy::default()
            }
        },
        Some(other) => {
            p.add(
                "/unreachableStrategy",
                format!(
                    "must be \"disabled\" or {{inactiveAfterSeconds, expungeAfterSeconds}}, got {}",
                    describe(&other)
                ),
            );
            UnreachableStrategy::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::app::{AppError, ContainerType, test_app};
    use serde_json::json;

    fn refused(v: Value) -> Vec<String> {
        match AppDefinition::from_json(&v, &PathId::root()) {
            Ok(app) => panic!("{v} was accepted as {app:?}"),
            Err(e) => e.details().iter().map(|d| d.path.clone()).collect(),
        }
    }

    #[test]
    fn deprecated_ports_and_uris_become_port_definitions_and_fetch() {
        let app = test_app(json!({
            "id": "x", "cmd": "c", "ports": [8080, 0],
            "uris": ["http://h/a.tar.gz?sig=1", "http://h/run.sh"]
        }));
        let ports: Vec<u16> = app.port_definitions.iter().map(|d| d.port).collect();
        assert_eq!(ports, [8080, 0]);
        assert!(
            app.port_definitions
                .iter()
                .all(|d| d.protocol == "tcp" && d.name.is_none())
        );
        let extract: Vec<(&str, bool)> = app
            .fetch
            .iter()
            .map(|f| (f.uri.as_str(), f.extract))
            .collect();
        assert_eq!(
            extract,
            [
                ("http://h/a.tar.gz?sig=1", true),
                ("http://h/run.sh", false)
            ]
        );
        let out = app.to_json();
        assert!(out.get("ports").is_none() && out.get("uris").is_none());
    }

    #[test]
    fn health_check_and_readiness_defaults() {
        let app = test_app(json!({
            "id": "x", "cmd": "c",
            "portDefinitions": [{"port": 0, "name": "http-api"}],
            "healthChecks": [{}, {"protocol": "tcp", "port": 9000}, {"protocol": "COMMAND", "command": "true"}],
            "readinessChecks": [{}]
        }));
        let h = &app.health_checks;
        assert_eq!(h[0].protocol, HealthProtocol::Http);
        assert_eq!(h[0].path.as_deref(), Some("/"));
        assert_eq!(h[0].port_index, Some(0));
        assert_eq!(
            (
                h[0].grace_period_seconds,
                h[0].interval_seconds,
                h[0].timeout_seconds
            ),
            (300, 60, 20)
        );
        assert_eq!((h[0].max_consecutive_failures, h[0].delay_seconds), (3, 15));
        assert!(!h[0].ignore_http1xx);
        assert_eq!(
            (h[1].port_index, h[1].port, h[1].path.as_deref()),
            (None, Some(9000), None)
        );
        assert_eq!(
            h[2].command.as_ref().map(|c| c.value.as_str()),
            Some("true")
        );
        assert_eq!(h[2].port_index, None);
        let r = &app.readiness_checks[0];
        assert_eq!(
            (r.name.as_str(), r.path.as_str(), r.port_name.as_str()),
            ("readinessCheck", "/", "http-api")
        );
        assert_eq!((r.interval_seconds, r.timeout_seconds), (30, 10));
        assert_eq!(r.http_status_codes_for_ready, [200]);
    }

    #[test]
    fn loosely_typed_scalars_are_accepted() {
        let app = test_app(json!({
            "id": "x", "cmd": "c", "instances": "2", "cpus": "0.25", "requirePorts": "true",
            "constraints": [["rack", "GROUP_BY", 3], ["hostname", "MAX_PER", "2"]],
            "labels": {"weight": 5}, "args": null, "killSelection": "oldest_first",
            "container": {"type": "mesos", "docker": {"image": "busybox", "forcePullImage": "false"}}
        }));
        assert_eq!(
            (app.instances, app.cpus, app.require_ports),
            (2, 0.25, true)
        );
        assert_eq!(app.constraints[0], ["rack", "GROUP_BY", "3"]);
        assert_eq!(app.labels["weight"], "5");
        assert_eq!(app.kill_selection, KillSelection::OldestFirst);
        assert_eq!(
            app.container.as_ref().map(|c| c.kind),
            Some(ContainerType::Mesos)
        );
    }

    #[test]
    fn what_cannot_be_represented_is_refused_with_its_path() {
        let cases = [
            (json!({"cmd": "c"}), "/id"),
            (json!({"id": "Bad", "cmd": "c"}), "/id"),
            (json!({"id": "a/tasks", "cmd": "c"}), "/id"),
            (json!({"id": "x", "cmd": "c", "env": {"A": 1}}), "/env/A"),
            (
                json!({"id": "x", "cmd": "c", "env": {"PW": {"secret": "s"}}}),
                "/env/PW",
            ),
            (
                json!({"id": "x", "cmd": "c", "secrets": {"s": {"source": "a"}}}),
                "/secrets",
            ),
            (
                json!({"id": "x", "cmd": "c", "killSelection": "RANDOM"}),
                "/killSelection",
            ),
            (
                json!({"id": "x", "cmd": "c", "uris": ["a"], "fetch": [{"uri": "b"}]}),
                "/uris",
            ),
            (
                json!({"id": "x", "cmd": "c", "fetch": [{"extract": true}]}),
                "/fetch(0)/uri",
            ),
            (
                json!({"id": "x", "cmd": "c", "healthChecks": [{"protocol": "GRPC"}]}),
                "/healthChecks(0)/protocol",
            ),
            (
                json!({"id": "x", "cmd": "c", "unreachableStrategy": "sometimes"}),
                "/unreachableStrategy",
            ),
            (
                json!({"id": "x", "cmd": "c", "unreachableStrategy": {"inactiveAfterSeconds": -5}}),
                "/unreachableStrategy/inactiveAfterSeconds",
            ),
            (
                json!({"id": "x", "cmd": "c", "version": "last tuesday"}),
                "/version",
            ),
            (
                json!({"id": "x", "cmd": "c", "dependencies": ["Bad"]}),
                "/dependencies(0)",
            ),
        ];
        for (body, path) in cases {
            let paths = refused(body.clone());
            assert!(
                paths.iter().any(|p| p == path),
                "{body}: wanted {path}, got {paths:?}"
            );
        }
    }

    #[test]
    fn type_errors_are_malformed_and_name_their_path() {
        let cases = [
            (json!({"id": "x", "cmd": "c", "cpus": "lots"}), "/cpus"),
            (json!({"id": "x", "cmd": ["c"]}), "/cmd"),
            (
                json!({"id": "x", "cmd": "c", "instances": -1}),
                "/instances",
            ),
            (
                json!({"id": "x", "cmd": "c", "healthChecks": [{}, {"portIndex": "first"}]}),
                "/healthChecks(1)/portIndex",
            ),
            (
                json!({"id": "x", "container": {"docker": {"image": ["i"]}}}),
                "/container/docker/image",
            ),
            (json!(["x"]), "/"),
        ];
        for (body, path) in cases {
            match AppDefinition::from_json(&body, &PathId::root()) {
                Err(AppError::Malformed(v)) => assert_eq!(v.path, path, "{body}: {v:?}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
