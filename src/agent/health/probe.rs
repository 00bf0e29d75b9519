//! One probe of one check: HTTP(S) GET, TCP connect, or a command next to
//! the task, bounded by the check's timeout.
//!
//! Network checks go to `127.0.0.1` on the task's *host* port (`port_index`
//! into `TaskSpec::ports`, or `port`): a process task and a HOST-network
//! container listen there, and a BRIDGE container's mapped ports are
//! published on every host address, so one rule covers all three and the
//! agent never needs the container's IP. A fixed `port` of a BRIDGE task is
//! probed on the host as well.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::verdict::Outcome;
use crate::agent::containerizer::{ContainerHandle, Containerizer, ExecRequest};
use crate::api::error::error_chain;
use crate::model::health::clamped_secs;
use crate::model::{HealthCheckSpec, HealthProtocol, ReadinessCheckSpec};

/// Where the task is, for its probes.
pub struct Target {
    pub ports: Vec<u16>,
    pub env: BTreeMap<String, String>,
    pub sandbox: PathBuf,
    pub handle: ContainerHandle,
    pub containerizer: Arc<dyn Containerizer>,
}

/// The HTTP client of every check: no certificate verification (a task's
/// certificate is rarely for `127.0.0.1`), no redirects followed (a 3xx is
/// healthy), no proxy, and a fresh connection per probe, so a server that
/// stopped accepting connections is noticed.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot build the health checks' HTTP client; using a plain one");
            reqwest::Client::new()
        })
}

pub async fn probe(check: &HealthCheckSpec, target: &Target, http: &reqwest::Client) -> Outcome {
    let timeout = clamped_secs(check.timeout_seconds);
    if check.protocol == HealthProtocol::Command {
        // The exec owns the timeout: it kills what it started.
        return command(check, target, timeout).await;
    }
    let Some(port) = port_of(check, &target.ports) else {
        let index = check.port_index.unwrap_or(0);
        return Outcome::Unhealthy(format!("the task has no host port at index {index}"));
    };
    let probe = async {
        match check.protocol {
            HealthProtocol::Tcp => tcp(port).await,
            HealthProtocol::Https => get(check, "https", port, http).await,
            _ => get(check, "http", port, http).await,
        }
    };
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or_else(|_| Outcome::Unhealthy(format!("no answer within {timeout:?}")))
}

/// One ask of a readiness check: Ok with what it answered when the status
/// is one it takes for ready, else Err saying what came back.
pub async fn readiness(
    check: &ReadinessCheckSpec,
    target: &Target,
    http: &reqwest::Client,
) -> Result<String, String> {
    let Some(port) = target.ports.get(check.port_index).copied() else {
        return Err(format!(
            "the task has no host port at index {}",
            check.port_index
        ));
    };
    let scheme = match check.protocol {
        HealthProtocol::Https => "https",
        _ => "http",
    };
    let url = format!("{scheme}://127.0.0.1:{port}{}", check.path);
    let timeout = clamped_secs(check.timeout_seconds);
    match tokio::time::timeout(timeout, http.get(&url).send()).await {
        Err(_) => Err(format!("GET {url}: no answer within {timeout:?}")),
        Ok(Err(e)) => Err(format!("GET {url}: {}", error_chain(&e))),
        Ok(Ok(r))
            if check
                .http_status_codes_for_ready
                .contains(&r.status().as_u16()) =>
        {
            Ok(format!("ready: GET {url} answered {}", r.status()))
        }
        Ok(Ok(r)) => Err(format!("GET {url} answered {}", r.status())),
    }
}

fn port_of(check: &HealthCheckSpec, ports: &[u16]) -> Option<u16> {
    match check.port {
        Some(port) => Some(port),
        None => ports.get(check.port_index.unwrap_or(0)).copied(),
    }
}

async fn get(check: &HealthCheckSpec, scheme: &str, port: u16, http: &reqwest::Client) -> Outcome {
    let url = format!("{scheme}://127.0.0.1:{port}{}", check.path);
    match http.get(&url).send().await {
        Ok(r) => {
            let status = r.status();
            match status.as_u16() {
                200..=399 => Outcome::Healthy,
                100..=199 if check.ignore_http1xx => Outcome::Discarded,
                _ => Outcome::Unhealthy(format!("GET {url} answered {status}")),
            }
        }
        Err(e) => Outcome::Unhealthy(format!("GET {url}: {}", error_chain(&e))),
    }
}

async fn tcp(port: u16) -> Outcome {
    match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(_) => Outcome::Healthy,
        Err(e) => Outcome::Unhealthy(format!("connect to 127.0.0.1:{port}: {e}")),
    }
}

async fn command(check: &HealthCheckSpec, target: &Target, timeout: Duration) -> Outcome {
    let command = check.command.as_deref().unwrap_or("");
    let req = ExecRequest {
        command,
        env: &target.env,
        sandbox: &target.sandbox,
        timeout,
    };
    match target.containerizer.exec(&target.handle, req).await {
        Ok(out) if out.code == 0 => Outcome::Healthy,
        Ok(out) if out.tail.is_empty() => {
            Outcome::Unhealthy(format!("`{command}` exited with status {}", out.code))
        }
        Ok(out) => Outcome::Unhealthy(format!(
            "`{command}` exited with status {}: {}",
            out.code, out.tail
        )),
        Err(e) => Outcome::Unhealthy(format!("`{command}`: {e}")),
    }
}
