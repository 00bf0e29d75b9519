//! Marathon's `container.docker.parameters`: `docker run` options as
//! key/value pairs (`{"key": "cap-add", "value": "NET_ADMIN"}` is
//! `--cap-add=NET_ADMIN`), parsed once into what they mean, so the scheduler
//! refuses at POST what the agent could not honour (422 naming the parameter)
//! and the agent maps the rest onto the engine's create body
//! (`agent/containerizer/docker/parameters.rs`).
//!
//! Mesos passed the pairs to the `docker` CLI unchecked; meso talks to the
//! engine's API, so it honours the options that have a field there and that
//! leave the task as meso runs it. Left out on purpose: `entrypoint` and
//! `workdir` (the task's command and sandbox decide them), `log-driver`
//! (meso reads the container's logs through the engine), `name`, `network`,
//! `publish` and `rm` (the agent owns them), and anything else unknown.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One `docker run` option as Marathon gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerParameter {
    pub key: String,
    pub value: String,
}

/// What a parameter means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerOption {
    User(String),
    /// `key=value`, or a bare key (an empty value).
    Label(String, String),
    /// `NAME=value`.
    Env(String, String),
    Hostname(String),
    /// `host:ip`.
    AddHost(String),
    CapAdd(String),
    CapDrop(String),
    Dns(String),
    DnsSearch(String),
    DnsOption(String),
    /// Bytes; -1 is unlimited swap.
    MemorySwap(i64),
    ShmSize(i64),
    /// name, soft, hard.
    Ulimit(String, i64, i64),
    Init(bool),
    ReadOnly(bool),
    SecurityOpt(String),
    /// `key=value`.
    Sysctl(String, String),
    /// A mount point and its options.
    Tmpfs(String, String),
    OomScoreAdj(i64),
    PidsLimit(i64),
    /// `host[:container[:permissions]]`.
    Device(String),
    /// `host:container[:mode]`, as `-v`.
    Volume(String),
}

/// The keys meso honours, for the error that names the rest.
pub const SUPPORTED_KEYS: &[&str] = &[
    "add-host",
    "cap-add",
    "cap-drop",
    "device",
    "dns",
    "dns-option",
    "dns-search",
    "env",
    "hostname",
    "init",
    "label",
    "memory-swap",
    "oom-score-adj",
    "pids-limit",
    "read-only",
    "security-opt",
    "shm-size",
    "sysctl",
    "tmpfs",
    "ulimit",
    "user",
    "volume",
];

impl DockerParameter {
    /// What it means, or why meso cannot honour it.
    pub fn parse(&self) -> Result<DockerOption, String> {
        let value = self.value.trim();
        let nonempty = || {
            if value.is_empty() {
                Err(format!("--{} needs a value", self.key))
            } else {
                Ok(value.to_string())
            }
        };
        let pair = |what: &str| {
            let (k, v) = value.split_once('=').unwrap_or((value, ""));
            if k.is_empty() {
                Err(format!("--{}: '{value}' is not {what}", self.key))
            } else {
                Ok((k.to_string(), v.to_string()))
            }
        };
        let number = || {
            value
                .parse::<i64>()
                .map_err(|_| format!("--{}: '{value}' is not a whole number", self.key))
        };
        // Keys as docker spells them; a leading "--" and the short forms
        // Marathon users write are accepted too.
        let key = self.key.trim().trim_start_matches('-');
        Ok(match key {
            "user" | "u" => DockerOption::User(nonempty()?),
            "label" | "l" => {
                let (k, v) = pair("a label (key=value)")?;
                DockerOption::Label(k, v)
            }
            "env" | "e" => {
                let (k, v) = pair("a variable (NAME=value)")?;
                DockerOption::Env(k, v)
            }
            "hostname" | "h" => DockerOption::Hostname(nonempty()?),
            "add-host" => {
                if !value.contains(':') {
                    return Err(format!("--add-host: '{value}' is not host:ip"));
                }
                DockerOption::AddHost(value.to_string())
            }
            "cap-add" => DockerOption::CapAdd(nonempty()?),
            "cap-drop" => DockerOption::CapDrop(nonempty()?),
            "dns" => DockerOption::Dns(nonempty()?),
            "dns-search" => DockerOption::DnsSearch(nonempty()?),
            "dns-option" | "dns-opt" => DockerOption::DnsOption(nonempty()?),
            "memory-swap" => DockerOption::MemorySwap(if value == "-1" {
                -1
            } else {
                bytes(value).map_err(|e| format!("--memory-swap: {e}"))?
            }),
            "shm-size" => {
                DockerOption::ShmSize(bytes(value).map_err(|e| format!("--shm-size: {e}"))?)
            }
            "ulimit" => {
                let (name, limits) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--ulimit: '{value}' is not name=soft[:hard]"))?;
                let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
                let limit = |s: &str| {
                    s.parse::<i64>()
                        .map_err(|_| format!("--ulimit: '{s}' in '{value}' is not a number"))
                };
                DockerOption::Ulimit(name.to_string(), limit(soft)?, limit(hard)?)
            }
            "init" => DockerOption::Init(boolean(&self.key, value)?),
            "read-only" => DockerOption::ReadOnly(boolean(&self.key, value)?),
            "security-opt" => DockerOption::SecurityOpt(nonempty()?),
            "sysctl" => {
                let (k, v) = pair("a sysctl (key=value)")?;
                DockerOption::Sysctl(k, v)
            }
            "tmpfs" => {
                let v = nonempty()?;
                let (path, options) = v.split_once(':').unwrap_or((&v, ""));
                DockerOption::Tmpfs(path.to_string(), options.to_string())
            }
            "oom-score-adj" => DockerOption::OomScoreAdj(number()?),
            "pids-limit" => DockerOption::PidsLimit(number()?),
            "device" => DockerOption::Device(nonempty()?),
            "volume" | "v" => {
                if value.split(':').count() < 2 {
                    return Err(format!("--volume: '{value}' is not host:container[:mode]"));
                }
                DockerOption::Volume(value.to_string())
            }
            other => {
                return Err(format!(
                    "'{other}' is not a docker option meso passes (it passes {})",
                    SUPPORTED_KEYS.join(", ")
                ));
            }
        })
    }
}

impl fmt::Display for DockerParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{}={}", self.key, self.value)
    }
}

/// `true`/`false` (docker's flags also take a bare key: an empty value is true).
fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("--{key}: '{value}' is not true or false")),
    }
}

/// A size as docker reads it: a number with an optional unit b, k, m or g
/// (binary multiples, an optional trailing `b`: `64m`, `1gb`, `512`).
fn bytes(value: &str) -> Result<i64, String> {
    let lower = value.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{value}' is not a size (like 64m or 1g)"))?;
    let scale: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("'{value}' is not a size (like 64m or 1g)")),
    };
    Ok((number * scale) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(key: &str, value: &str) -> Result<DockerOption, String> {
        DockerParameter {
            key: key.into(),
            value: value.into(),
        }
        .parse()
    }

    #[test]
    fn options_mean_what_docker_run_makes_of_them() {
        assert_eq!(
            p("user", "1000:1000"),
            Ok(DockerOption::User("1000:1000".into()))
        );
        assert_eq!(
            p("label", "team=web"),
            Ok(DockerOption::Label("team".into(), "web".into()))
        );
        assert_eq!(
            p("label", "canary"),
            Ok(DockerOption::Label("canary".into(), "".into()))
        );
        assert_eq!(
            p("e", "A=b=c"),
            Ok(DockerOption::Env("A".into(), "b=c".into()))
        );
        assert_eq!(
            p("--cap-add", "NET_ADMIN"),
            Ok(DockerOption::CapAdd("NET_ADMIN".into()))
        );
        assert_eq!(p("shm-size", "64m"), Ok(DockerOption::ShmSize(64 << 20)));
        assert_eq!(
            p("memory-swap", "1g"),
            Ok(DockerOption::MemorySwap(1 << 30))
        );
        assert_eq!(p("memory-swap", "-1"), Ok(DockerOption::MemorySwap(-1)));
        assert_eq!(
            p("ulimit", "nofile=1024:2048"),
            Ok(DockerOption::Ulimit("nofile".into(), 1024, 2048))
        );
        assert_eq!(
            p("ulimit", "nproc=64"),
            Ok(DockerOption::Ulimit("nproc".into(), 64, 64))
        );
        assert_eq!(p("init", "true"), Ok(DockerOption::Init(true)));
        assert_eq!(p("read-only", "false"), Ok(DockerOption::ReadOnly(false)));
        assert_eq!(
            p("tmpfs", "/run:rw,size=1m"),
            Ok(DockerOption::Tmpfs("/run".into(), "rw,size=1m".into()))
        );
        assert_eq!(
            p("tmpfs", "/scratch"),
            Ok(DockerOption::Tmpfs("/scratch".into(), "".into()))
        );
    }

    #[test]
    fn what_cannot_be_honoured_says_why() {
        let unknown = p("log-driver", "syslog").unwrap_err();
        assert!(
            unknown.starts_with("'log-driver' is not a docker option meso passes"),
            "{unknown}"
        );
        assert!(unknown.contains("cap-add"), "{unknown}");
        assert_eq!(
            p("shm-size", "lots").unwrap_err(),
            "--shm-size: 'lots' is not a size (like 64m or 1g)"
        );
        assert!(
            p("ulimit", "nofile")
                .unwrap_err()
                .contains("name=soft[:hard]")
        );
        assert!(p("add-host", "nohost").unwrap_err().contains("host:ip"));
        assert!(p("user", " ").unwrap_err().contains("needs a value"));
        assert!(p("init", "maybe").unwrap_err().contains("true or false"));
        assert!(p("label", "=x").is_err());
    }
}
