//! Health and readiness checks as an app declares them, with Marathon's
//! defaults filled in. Running them is the agent's business (agent/health);
//! this file only says what was asked for.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthProtocol {
    Http,
    Https,
    Tcp,
    Command,
    MesosHttp,
    MesosHttps,
    MesosTcp,
}

impl HealthProtocol {
    pub const ALL: [Self; 7] = [
        Self::Http,
        Self::Https,
        Self::Tcp,
        Self::Command,
        Self::MesosHttp,
        Self::MesosHttps,
        Self::MesosTcp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
            Self::Tcp => "TCP",
            Self::Command => "COMMAND",
            Self::MesosHttp => "MESOS_HTTP",
            Self::MesosHttps => "MESOS_HTTPS",
            Self::MesosTcp => "MESOS_TCP",
        }
    }

    /// Asks something over HTTP(S), so it has a path.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Self::Http | Self::Https | Self::MesosHttp | Self::MesosHttps
        )
    }

    /// Talks to one of the task's ports (all but COMMAND).
    pub fn uses_port(self) -> bool {
        self != Self::Command
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandCheck {
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub protocol: HealthProtocol,
    /// `/` for HTTP(S) checks unless given; none for the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index into the app's ports (portDefinitions, or portMappings with
    /// container networking); 0 when neither it nor `port` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheck>,
    pub grace_period_seconds: u32,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    /// 0: never kill (Marathon checks) or kill at once (MESOS_* checks).
    pub max_consecutive_failures: u32,
    pub delay_seconds: u32,
    pub ignore_http1xx: bool,
    /// `IPv4` or `IPv6`; meaningful for MESOS_* checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_protocol: Option<String>,
}

impl HealthCheck {
    pub const DEFAULT_GRACE_PERIOD_SECONDS: u32 = 300;
    pub const DEFAULT_INTERVAL_SECONDS: u32 = 60;
    pub const DEFAULT_TIMEOUT_SECONDS: u32 = 20;
    pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 3;
    pub const DEFAULT_DELAY_SECONDS: u32 = 15;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReadinessProtocol {
    Http,
    Https,
}

/// Asked after a new task is healthy, before a deployment counts it ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    pub name: String,
    pub protocol: ReadinessProtocol,
    pub path: String,
    /// Names one of the app's ports.
    pub port_name: String,
    pub interval_seconds: u32,
    /// Less than `interval_seconds`.
    pub timeout_seconds: u32,
    pub http_status_codes_for_ready: Vec<u16>,
    pub preserve_last_response: bool,
}

impl ReadinessCheck {
    pub const DEFAULT_NAME: &str = "readinessCheck";
    pub const DEFAULT_PORT_NAME: &str = "http-api";
    pub const DEFAULT_INTERVAL_SECONDS: u32 = 30;
    pub const DEFAULT_TIMEOUT_SECONDS: u32 = 10;
}
