//! `--wait`: follows a deployment to its end, with a progress bar on a
//! terminal.
//!
//! ```text
//!  Watch::open ── GET /v2/events (SSE, opened before the write, so a quick
//!       │         deployment's end is not missed)
//!  the write (PUT/DELETE/POST) ─▶ deploymentId
//!  Watch::follow:
//!     deployment_success(id) ─▶ Ok            deployment_failed(id) ─▶ exit 5 with its reason
//!     status_update / health events of the app (of a group: any app under
//!         it) ─▶ refresh the bar from /v2/apps/ID (a group: /v2/apps, summed)
//!     every 2 s: /v2/deployments lacks the id? ─▶ ended (a missed event, or
//!                the stream dropped on a leader change) ─▶ Ok
//!     --timeout passed ─▶ exit 5 with the app's counts and last task failure
//! ```

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use serde_json::Value;

use super::target::Api;
use super::{Exit, code};

const EVENTS: &str = "/v2/events?event_type=deployment_success&event_type=deployment_failed\
&event_type=status_update_event&event_type=health_status_changed_event\
&event_type=instance_health_changed_event";

/// An open event stream (None when the cluster would not give one: then
/// [`Watch::follow`] polls).
pub struct Watch {
    api: Api,
    stream: Option<reqwest::Response>,
    buffer: String,
}

/// What a deployment is followed for: one app, or every app under a group.
#[derive(Clone, Debug)]
pub enum Subject {
    App(String),
    Group(String),
}

impl Subject {
    pub fn id(&self) -> &str {
        match self {
            Subject::App(id) | Subject::Group(id) => id,
        }
    }

    /// Whether the app `app_id` is (under) this subject.
    fn owns(&self, app_id: &str) -> bool {
        match self {
            Subject::App(id) => app_id == id,
            Subject::Group(id) => app_id
                .strip_prefix(id.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
        }
    }
}

/// How far an app (or a group's apps, summed) is: for the bar and the final line.
#[derive(Default)]
struct Counts {
    instances: u64,
    in_service: u64,
    running: u64,
    failure: Option<String>,
}

impl Watch {
    pub async fn open(api: &Api) -> Self {
        let stream = api
            .client()
            .get(api.url(EVENTS))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .ok()
            .filter(|r| r.status() == StatusCode::OK);
        Self {
            api: api.clone(),
            stream,
            buffer: String::new(),
        }
    }

    /// Waits for deployment `id` of `subject` to end; prints one line (`done`
    /// is its verb: deployed, scaled, ...) when it has.
    pub async fn follow(
        mut self,
        id: &str,
        subject: &Subject,
        done: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let app = subject.id();
        let bar = bar();
        let started = Instant::now();
        let mut last_poll = Instant::now();
        let mut counts = self.counts(subject).await;
        show(&bar, app, &counts);
        loop {
            if started.elapsed() > timeout {
                bar.finish_and_clear();
                let mut message = format!(
                    "deployment {id} of {app} did not finish within {} s: {}/{} in service",
                    timeout.as_secs(),
                    counts.in_service,
                    counts.instances
                );
                if let Some(f) = &counts.failure {
                    message.push_str(&format!("; last task failure: {f}"));
                }
                return Err(Exit::new(code::DEPLOY_FAILED, message).into());
            }
            match self.next_event(Duration::from_millis(500)).await {
                Some((kind, data)) if data["id"] == id => match kind.as_str() {
                    "deployment_success" => {
                        bar.finish_and_clear();
                        let counts = self.counts(subject).await;
                        println!(
                            "{done} {app}: {}/{} in service (deployment {id})",
                            counts.in_service, counts.instances
                        );
                        return Ok(());
                    }
                    "deployment_failed" => {
                        bar.finish_and_clear();
                        let reason = data["reason"].as_str().unwrap_or("no reason given");
                        return Err(Exit::new(
                            code::DEPLOY_FAILED,
                            format!("deployment {id} of {app} failed: {reason}"),
                        )
                        .into());
                    }
                    _ => {}
                },
                Some((_, data)) if data["appId"].as_str().is_some_and(|a| subject.owns(a)) => {
                    counts = self.counts(subject).await;
                    show(&bar, app, &counts);
                }
                _ => {}
            }
            if last_poll.elapsed() > Duration::from_secs(2) {
                last_poll = Instant::now();
                counts = self.counts(subject).await;
                show(&bar, app, &counts);
                if !self.deployment_live(id).await? {
                    bar.finish_and_clear();
                    println!(
                        "{done} {app}: {}/{} in service (deployment {id})",
                        counts.in_service, counts.instances
                    );
                    return Ok(());
                }
            }
        }
    }

    /// The next whole event within `wait`, if any.
    async fn next_event(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut kind = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        kind = k.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim());
                    }
                }
                if let Ok(value) = serde_json::from_str(&data) {
                    return Some((kind, value));
                }
                continue;
            }
            let Some(stream) = self.stream.as_mut() else {
                tokio::time::sleep_until(deadline).await;
                return None;
            };
            match tokio::time::timeout_at(deadline, stream.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    self.buffer
                        .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n"));
                }
                // The stream ended (a leader change): poll from now on.
                Ok(_) => self.stream = None,
                Err(_) => return None,
            }
        }
    }

    async fn deployment_live(&self, id: &str) -> anyhow::Result<bool> {
        let list = self.api.get("/v2/deployments", "deployments").await?;
        Ok(list.as_array().into_iter().flatten().any(|d| d["id"] == id))
    }

    async fn counts(&self, subject: &Subject) -> Counts {
        let mut counts = Counts::default();
        match subject {
            Subject::App(id) => {
                let info = self.api.get(&format!("/v2/apps{id}"), "app").await;
                counts.add(&info.unwrap_or(Value::Null)["app"]);
            }
            Subject::Group(id) => {
                // `id` filters by substring: keep the apps under the group.
                let path = format!("/v2/apps?id={}/", urlencode(id));
                let list = self.api.get(&path, "apps").await.unwrap_or(Value::Null);
                for a in list["apps"].as_array().into_iter().flatten() {
                    if a["id"].as_str().is_some_and(|a| subject.owns(a)) {
                        counts.add(a);
                    }
                }
            }
        }
        counts
    }
}

impl Counts {
    /// Adds one app's counts (Marathon's AppInfo); the first failure stays.
    fn add(&mut self, a: &Value) {
        let checked = a["healthChecks"].as_array().is_some_and(|h| !h.is_empty());
        let running = a["tasksRunning"].as_u64().unwrap_or(0);
        self.instances += a["instances"].as_u64().unwrap_or(0);
        self.in_service += if checked {
            a["tasksHealthy"].as_u64().unwrap_or(0)
        } else {
            running
        };
        self.running += running;
        if self.failure.is_none() {
            self.failure = a["lastTaskFailure"]["message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(|m| {
                    format!(
                        "{} {m}",
                        a["lastTaskFailure"]["state"].as_str().unwrap_or("")
                    )
                });
        }
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner:.cyan} {prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn show(bar: &ProgressBar, app: &str, c: &Counts) {
    bar.set_prefix(super::out::cut(app, 24));
    bar.set_length(c.instances);
    bar.set_position(c.in_service.min(c.instances));
    let mut msg = format!("{} running", c.running);
    if let Some(f) = &c.failure {
        msg.push_str(&format!(" · last failure: {}", super::out::cut(f, 40)));
    }
    bar.set_message(msg);
}
