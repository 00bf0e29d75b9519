//! Health checks: what the agent runs next to a task ([`HealthCheckSpec`], in
//! [`TaskSpec::health_checks`](super::TaskSpec)), what it reports in status
//! updates ([`TaskStatus::healthy`](super::TaskStatus) and [`HealthReport`]),
//! and Marathon's rendering of it ([`health_check_results`]).
//!
//! The fields and defaults are Marathon's `healthChecks[]` (snake_case here):
//! HTTP/HTTPS/TCP/COMMAND, with `MESOS_HTTP`, `MESOS_HTTPS` and `MESOS_TCP`
//! read as the same thing, since every check runs on the agent (Mesos-style)
//! whatever its name. `max_consecutive_failures: 0` means "never kill", as for
//! Marathon's own checks (Mesos would kill at once).
//!
//! A report is as of the last time `healthy` flipped: the agent sends a status
//! update only then (each one is a Raft write), so `consecutive_failures` and
//! the `last_*` times in the registry lag behind the agent's own count.
//!
//! A readiness check ([`ReadinessCheckSpec`], Marathon's `readinessChecks[0]`)
//! runs on the agent too, but is asked only until the task first answers
//! ready: that is reported once (`TaskStatus::ready`) and never taken back,
//! as Marathon treats readiness (a gate for deployments, not a health).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Task;

/// How a check probes the task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthProtocol {
    /// GET `http://127.0.0.1:<port><path>`: 200–399 is healthy.
    #[default]
    #[serde(rename = "HTTP", alias = "MESOS_HTTP")]
    Http,
    /// As HTTP over TLS, without verifying the certificate.
    #[serde(rename = "HTTPS", alias = "MESOS_HTTPS")]
    Https,
    /// A TCP connection to `127.0.0.1:<port>` succeeds.
    #[serde(rename = "TCP", alias = "MESOS_TCP")]
    Tcp,
    /// `/bin/sh -c <command>` exits 0.
    #[serde(rename = "COMMAND")]
    Command,
}

impl HealthProtocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
            Self::Tcp => "TCP",
            Self::Command => "COMMAND",
        }
    }
}

/// One health check of a task. Times are seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    #[serde(default)]
    pub protocol: HealthProtocol,
    /// The HTTP(S) path.
    #[serde(default = "root")]
    pub path: String,
    /// Which of the task's host ports (`TaskSpec::ports`, in order) to probe.
    /// With neither `port_index` nor `port`, the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<usize>,
    /// A fixed port to probe instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The shell command of a COMMAND check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Failures this long after the task started (or the agent recovered it)
    /// are ignored, until the first success.
    #[serde(default = "secs_300")]
    pub grace_period_seconds: f64,
    #[serde(default = "secs_60")]
    pub interval_seconds: f64,
    #[serde(default = "secs_20")]
    pub timeout_seconds: f64,
    /// Consecutive failures (past the grace period) that kill the task; 0: never.
    #[serde(default = "three")]
    pub max_consecutive_failures: u32,
    /// Wait before the first check.
    #[serde(default = "secs_15")]
    pub delay_seconds: f64,
    /// A 1xx answer is discarded (the health stays as it was) instead of failing.
    #[serde(default)]
    pub ignore_http1xx: bool,
}

fn root() -> String {
    "/".into()
}
fn secs_300() -> f64 {
    300.0
}
fn secs_60() -> f64 {
    60.0
}
fn secs_20() -> f64 {
    20.0
}
fn secs_15() -> f64 {
    15.0
}
fn three() -> u32 {
    3
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        Self {
            protocol: HealthProtocol::Http,
            path: root(),
            port_index: None,
            port: None,
            command: None,
            grace_period_seconds: secs_300(),
            interval_seconds: secs_60(),
            timeout_seconds: secs_20(),
            max_consecutive_failures: three(),
            delay_seconds: secs_15(),
            ignore_http1xx: false,
        }
    }
}

/// The longest any check time is taken to be (a year): larger values would
/// overflow a `Duration` and mean "never" anyway.
const LONGEST: f64 = 365.0 * 24.0 * 3600.0;

/// Seconds as a `Duration`, clamped to `0 ..= a year` (NaN is 0).
pub fn clamped_secs(secs: f64) -> std::time::Duration {
    let secs = if secs.is_finite() { secs } else { 0.0 };
    std::time::Duration::from_secs_f64(secs.clamp(0.0, LONGEST))
}

impl HealthCheckSpec {
    /// Checks the fields against a task with `host_ports` host ports. The
    /// error starts with the field's name (the caller adds the path to it).
    pub fn validate(&self, host_ports: usize) -> Result<(), String> {
        for (name, v) in [
            ("grace_period_seconds", self.grace_period_seconds),
            ("interval_seconds", self.interval_seconds),
            ("timeout_seconds", self.timeout_seconds),
            ("delay_seconds", self.delay_seconds),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name}: must be a non-negative number"));
            }
        }
        for (name, v) in [
            ("interval_seconds", self.interval_seconds),
            ("timeout_seconds", self.timeout_seconds),
        ] {
            if v == 0.0 {
                return Err(format!("{name}: must be more than 0"));
            }
        }
        if self.protocol == HealthProtocol::Command {
            return match self.command.as_deref().map(str::trim) {
                Some(c) if !c.is_empty() => Ok(()),
                _ => Err("command: a COMMAND check needs a command".into()),
            };
        }
        if !self.path.starts_with('/') {
            return Err(format!("path: '{}' must start with '/'", self.path));
        }
        match (self.port, self.port_index) {
            (Some(_), Some(_)) => Err("port: give port or port_index, not both".into()),
            (Some(0), None) => Err("port: must be 1-65535".into()),
            (Some(_), None) => Ok(()),
            (None, index) => {
                let index = index.unwrap_or(0);
                if index < host_ports {
                    Ok(())
                } else {
                    Err(format!(
                        "port_index: {index} is beyond the task's {host_ports} host port(s)"
                    ))
                }
            }
        }
    }

    /// What a message calls this check: `HTTP check on port index 0 (/health)`.
    pub fn describe(&self) -> String {
        let name = self.protocol.name();
        match self.protocol {
            HealthProtocol::Command => {
                format!("{name} check `{}`", self.command.as_deref().unwrap_or(""))
            }
            _ => {
                let target = match self.port {
                    Some(p) => format!("port {p}"),
                    None => format!("port index {}", self.port_index.unwrap_or(0)),
                };
                match self.protocol {
                    HealthProtocol::Tcp => format!("{name} check on {target}"),
                    _ => format!("{name} check on {target} ({})", self.path),
                }
            }
        }
    }
}

/// A readiness check of a task: HTTP(S) GET `127.0.0.1:<host port><path>`
/// every `interval_seconds` until the answer's status is one of
/// `http_status_codes_for_ready`. Times are seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadinessCheckSpec {
    #[serde(default = "readiness_name")]
    pub name: String,
    /// HTTP or HTTPS (the certificate is not verified).
    #[serde(default)]
    pub protocol: HealthProtocol,
    #[serde(default = "root")]
    pub path: String,
    /// Which of the task's host ports to ask.
    #[serde(default)]
    pub port_index: usize,
    #[serde(default = "secs_30")]
    pub interval_seconds: f64,
    #[serde(default = "secs_10")]
    pub timeout_seconds: f64,
    #[serde(default = "status_200")]
    pub http_status_codes_for_ready: Vec<u16>,
}

fn readiness_name() -> String {
    "readinessCheck".into()
}
fn secs_30() -> f64 {
    30.0
}
fn secs_10() -> f64 {
    10.0
}
fn status_200() -> Vec<u16> {
    vec![200]
}

impl ReadinessCheckSpec {
    /// Checks the fields against a task with `host_ports` host ports; the
    /// error starts with the field's name.
    pub fn validate(&self, host_ports: usize) -> Result<(), String> {
        if !matches!(self.protocol, HealthProtocol::Http | HealthProtocol::Https) {
            return Err(format!(
                "protocol: {} is not one of HTTP, HTTPS",
                self.protocol.name()
            ));
        }
        for (name, v) in [
            ("interval_seconds", self.interval_seconds),
            ("timeout_seconds", self.timeout_seconds),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(format!("{name}: must be a number more than 0"));
            }
        }
        if !self.path.starts_with('/') {
            return Err(format!("path: '{}' must start with '/'", self.path));
        }
        if self.port_index >= host_ports {
            return Err(format!(
                "port_index: {} is beyond the task's {host_ports} host port(s)",
                self.port_index
            ));
        }
        if self.http_status_codes_for_ready.is_empty() {
            return Err("http_status_codes_for_ready: must list at least one status".into());
        }
        Ok(())
    }
}

/// Where one check stands, as of the status update that carried it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckHealth {
    /// The last counted result was a success.
    pub alive: bool,
    pub consecutive_failures: u32,
    /// Seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_success: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_cause: Option<String>,
}

/// Every check of a task, in the order of `TaskSpec::health_checks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub checks: Vec<CheckHealth>,
}

/// Seconds since the epoch as Marathon writes times: ISO-8601 UTC with
/// milliseconds and `Z` (`2015-09-30T09:09:17.614Z`). None for a time that
/// is not one (negative, NaN, past the year 9999).
pub fn iso8601(secs: f64) -> Option<String> {
    if !secs.is_finite() || !(0.0..253_402_300_800.0).contains(&secs) {
        return None;
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs);
    Some(humantime::format_rfc3339_millis(at).to_string())
}

/// Marathon's `healthCheckResults` of a task (`/v2/apps/{id}/tasks`, task
/// JSON): one entry per check, null fields left out; empty until the agent
/// has reported a verdict.
pub fn health_check_results(task: &Task, instance_id: &str) -> Vec<Value> {
    let Some(report) = &task.health else {
        return Vec::new();
    };
    report
        .checks
        .iter()
        .map(|c| {
            let mut v = json!({
                "alive": c.alive,
                "consecutiveFailures": c.consecutive_failures,
                "instanceId": instance_id,
            });
            for (key, at) in [
                ("firstSuccess", c.first_success),
                ("lastSuccess", c.last_success),
                ("lastFailure", c.last_failure),
            ] {
                if let Some(text) = at.and_then(iso8601) {
                    v[key] = json!(text);
                }
            }
            if let Some(cause) = &c.last_failure_cause {
                v["lastFailureCause"] = json!(cause);
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marathon_fields_and_defaults_are_read() {
        let check: HealthCheckSpec =
            serde_json::from_str(r#"{"protocol": "MESOS_TCP", "port_index": 1}"#).unwrap();
        assert_eq!(check.protocol, HealthProtocol::Tcp);
        assert_eq!(check.grace_period_seconds, 300.0);
        assert_eq!(check.interval_seconds, 60.0);
        assert_eq!(check.timeout_seconds, 20.0);
        assert_eq!(check.max_consecutive_failures, 3);
        assert_eq!(check.delay_seconds, 15.0);
        assert_eq!(check.path, "/");
        let http: HealthCheckSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(http, HealthCheckSpec::default());
        let text = serde_json::to_string(&check).unwrap();
        assert!(text.contains(r#""protocol":"TCP""#), "{text}");
        assert!(serde_json::from_str::<HealthCheckSpec>(r#"{"protocol": "UDP"}"#).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let check = |json: &str| serde_json::from_str::<HealthCheckSpec>(json).unwrap();
        let err = |json: &str, ports| check(json).validate(ports).unwrap_err();
        assert!(err(r#"{"port_index": 2}"#, 2).starts_with("port_index: 2"));
        assert!(err("{}", 0).starts_with("port_index: 0"));
        assert!(err(r#"{"protocol": "COMMAND"}"#, 0).starts_with("command:"));
        assert!(err(r#"{"interval_seconds": 0}"#, 1).starts_with("interval_seconds"));
        assert!(err(r#"{"timeout_seconds": -1}"#, 1).starts_with("timeout_seconds"));
        assert!(err(r#"{"path": "health"}"#, 1).starts_with("path"));
        assert!(err(r#"{"port": 80, "port_index": 0}"#, 1).starts_with("port"));
        check(r#"{"port": 8080}"#).validate(0).unwrap();
        check(r#"{"protocol": "COMMAND", "command": "true"}"#)
            .validate(0)
            .unwrap();
        check(r#"{"protocol": "TCP", "port_index": 1}"#)
            .validate(2)
            .unwrap();
    }

    #[test]
    fn readiness_checks_read_defaults_and_name_bad_fields() {
        let check: ReadinessCheckSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(check.name, "readinessCheck");
        assert_eq!(check.protocol, HealthProtocol::Http);
        assert_eq!(check.http_status_codes_for_ready, [200]);
        assert_eq!(
            (check.interval_seconds, check.timeout_seconds),
            (30.0, 10.0)
        );
        check.validate(1).unwrap();
        assert!(check.validate(0).unwrap_err().starts_with("port_index: 0"));
        let err = |json: &str| {
            serde_json::from_str::<ReadinessCheckSpec>(json)
                .unwrap()
                .validate(1)
                .unwrap_err()
        };
        assert!(err(r#"{"protocol": "TCP"}"#).starts_with("protocol"));
        assert!(err(r#"{"interval_seconds": 0}"#).starts_with("interval_seconds"));
        assert!(err(r#"{"path": "ready"}"#).starts_with("path"));
        assert!(err(r#"{"http_status_codes_for_ready": []}"#).starts_with("http_status"));
    }

    #[test]
    fn times_are_marathons() {
        assert_eq!(
            iso8601(1_443_604_157.614).as_deref(),
            Some("2015-09-30T09:09:17.614Z")
        );
        assert_eq!(iso8601(0.0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(iso8601(f64::NAN), None);
        assert_eq!(iso8601(-1.0), None);
        assert_eq!(iso8601(1e300), None);
        assert_eq!(clamped_secs(f64::INFINITY), std::time::Duration::ZERO);
        assert_eq!(clamped_secs(1e300).as_secs(), 365 * 24 * 3600);
    }

    #[test]
    fn results_render_as_marathon_does() {
        let status = super::super::TaskStatus::new("t", "a", super::super::TaskState::Running, 1.0);
        let mut task = Task::new(Default::default(), status);
        assert!(health_check_results(&task, "i").is_empty());
        task.health = Some(HealthReport {
            checks: vec![CheckHealth {
                alive: true,
                consecutive_failures: 0,
                first_success: Some(1_443_604_157.614),
                last_success: Some(1_443_604_157.614),
                last_failure: None,
                last_failure_cause: None,
            }],
        });
        let results = health_check_results(&task, "app.instance-1");
        assert_eq!(
            results,
            vec![json!({
                "alive": true,
                "consecutiveFailures": 0,
                "firstSuccess": "2015-09-30T09:09:17.614Z",
                "lastSuccess": "2015-09-30T09:09:17.614Z",
                "instanceId": "app.instance-1",
            })]
        );
    }
}
