//! Which cluster a client command talks to, and the HTTP calls it makes.
//!
//! ```text
//!  --master / $MESOS_MASTER ─▶ that address
//!     else <data-dir>/meso-up.json (data dir: --data-dir, $MESO_DATA_DIR,
//!          the --preset's, ./.meso) ─▶ its first master
//!     else 127.0.0.1:5050
//! ```
//!
//! Every failure becomes one line with the exit code that says what kind it
//! is (see [`super::code`]): nothing answering is [`code::NO_CLUSTER`] with a
//! hint to start one, a 404 is [`code::NOT_FOUND`], a 4xx naming fields is
//! [`code::BAD_INPUT`] with the field paths.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::state_file::UpState;
use super::{Exit, code};
use crate::config::{Extra, NodeFlags, Settings};

/// The flags that find a cluster `meso up` started: its data dir.
#[derive(Debug, Clone, Default, Args)]
pub struct LocalArgs {
    /// The data dir of a cluster started by `meso up`
    #[arg(long, env = "MESO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The preset the cluster was started with (for its data dir)
    #[arg(long, env = "MESO_PRESET", value_name = "NAME|FILE")]
    pub preset: Option<String>,
}

impl LocalArgs {
    /// The data dir as `meso up` would resolve it from the same flags.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let settings = Settings::resolve(
            &NodeFlags {
                data_dir: self.data_dir.clone(),
                preset: self.preset.clone(),
                ..Default::default()
            },
            Extra {
                default_preset: Some("local"),
                default_log: "warn",
                ..Default::default()
            },
        )?;
        Ok(settings.data_dir)
    }

    /// The state file of a running `meso up`, if one is recorded and alive.
    pub fn running(&self) -> anyhow::Result<Option<UpState>> {
        let dir = self.data_dir()?;
        Ok(UpState::read(&dir)?.filter(UpState::alive))
    }
}

/// The flags that pick a cluster, shared by every client command.
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// HTTP address of any master (default: the one `meso up` recorded in
    /// the data dir, else 127.0.0.1:5050)
    #[arg(long, env = "MESOS_MASTER", value_name = "ADDR")]
    pub master: Option<String>,
    #[command(flatten)]
    pub local: LocalArgs,
}

impl ClusterArgs {
    /// The master to talk to.
    pub fn addr(&self) -> anyhow::Result<String> {
        if let Some(m) = &self.master {
            // MESOS_MASTER may list several masters; any one answers.
            let first = m.split(',').map(str::trim).find(|s| !s.is_empty());
            return Ok(first.unwrap_or("127.0.0.1:5050").to_string());
        }
        if let Some(state) = self.local.running()? {
            return Ok(state.api().to_string());
        }
        Ok("127.0.0.1:5050".into())
    }

    pub fn api(&self) -> anyhow::Result<Api> {
        Api::new(&self.addr()?)
    }
}

/// A master's HTTP API.
#[derive(Clone)]
pub struct Api {
    pub addr: String,
    base: String,
    client: reqwest::Client,
}

/// A request's answer: its status and its body, as JSON when it is JSON
/// (else as a JSON string).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Api {
    pub fn new(addr: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .context("cannot make an HTTP client")?;
        Ok(Self {
            addr: addr.to_string(),
            base: crate::api::base_url(addr),
            client,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The error for a cluster that does not answer.
    pub fn unreachable(&self) -> Exit {
        Exit::new(
            code::NO_CLUSTER,
            format!(
                "no cluster at {} — start one with `meso up`, or pass --master",
                self.addr
            ),
        )
    }

    /// Sends a request; only "nothing answers" is an error here.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let mut req = self
            .client
            .request(method, self.url(path))
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() || e.is_timeout() => return Err(self.unreachable().into()),
            Err(e) => return Err(e).with_context(|| format!("request to {} failed", self.addr)),
        };
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// A request that must succeed; `what` names the thing asked about in
    /// the error ("app /web").
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> anyhow::Result<Value> {
        let answer = self.call(method, path, body).await?;
        answer.ok(what)
    }

    pub async fn get(&self, path: &str, what: &str) -> anyhow::Result<Value> {
        self.expect(Method::GET, path, None, what).await
    }
}

impl Answer {
    /// The body of a 2xx; any other status as an [`Exit`] with its code.
    pub fn ok(self, what: &str) -> anyhow::Result<Value> {
        if self.status.is_success() {
            return Ok(self.body);
        }
        let message = describe(&self.body);
        let (code, text) = match self.status {
            StatusCode::NOT_FOUND => (code::NOT_FOUND, format!("{what}: not found ({message})")),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                (code::BAD_INPUT, format!("{what}: refused: {message}"))
            }
            StatusCode::CONFLICT => (
                code::FAILURE,
                format!("{what}: {message} (wait for it, or add --force)"),
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                code::NO_CLUSTER,
                format!("{what}: the cluster has no leader yet ({message}); try again"),
            ),
            s => (code::FAILURE, format!("{what}: {s}: {message}")),
        };
        Err(Exit::new(code, text).into())
    }
}

/// Marathon's error body in one line: the message, then each field's path
/// and errors (`/cpus: must be positive`).
pub fn describe(body: &Value) -> String {
    let message = body["message"]
        .as_str()
        .or(body.as_str())
        .filter(|m| !m.trim().is_empty())
        .unwrap_or("no details");
    let details: Vec<String> = body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let errors: Vec<&str> = d["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "{}: {}",
                d["path"].as_str().unwrap_or("/"),
                errors.join(", ")
            )
        })
        .collect();
    // Some answers put the details in the message already; say them once.
    if details.is_empty() || details.iter().all(|d| message.contains(d.as_str())) {
        message.to_string()
    } else {
        format!("{message}: {}", details.join("; "))
    }
}
