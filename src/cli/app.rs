//! `meso app deploy | list | show | scale | restart | rm`: Marathon apps
//! through the master's `/v2` API, as curl scripts for Marathon would do it.
//!
//! ```text
//!  deploy FILE ─▶ app_file (JSON|YAML) ─▶ PUT /v2/apps/ID?partialUpdate=false  (create or replace)
//!                                  a group ─▶ PUT /v2/groups/ID  (its apps, as the file has them)
//!  scale ID N  ─▶ PUT /v2/apps/ID {"instances": N}          (a partial update)
//!  restart ID  ─▶ POST /v2/apps/ID/restart
//!  rm ID       ─▶ DELETE /v2/apps/ID
//!     each ─▶ deploymentId ─▶ --wait: app_wait follows it to its end
//!  list, show  ─▶ GET /v2/apps, /v2/apps/ID, /v2/apps/ID/tasks
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::app_file::{self, Kind, absolute};
use super::app_wait::{Subject, Watch};
use super::out::{self, Style, Table, paint};
use super::target::{Api, ClusterArgs};

#[derive(Subcommand)]
pub enum AppCommand {
    /// Create or replace an app, or a group of apps, from a Marathon app or group file (JSON or YAML; - for stdin)
    Deploy {
        file: PathBuf,
        #[command(flatten)]
        wait: WaitArgs,
        /// Replace a deployment of this app that is still running
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// List the apps
    List {
        /// Print as JSON (Marathon's /v2/apps)
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Show one app and its tasks
    Show {
        id: String,
        /// Print as JSON (Marathon's /v2/apps/ID, with its tasks)
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Change how many instances an app runs
    Scale {
        id: String,
        instances: u32,
        #[command(flatten)]
        wait: WaitArgs,
        #[arg(long)]
        /// Replace a deployment of this app that is still running
        force: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Replace every instance of an app, as a rolling restart
    Restart {
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
        /// Replace a deployment of this app that is still running
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Remove an app and kill its tasks
    Rm {
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

#[derive(Args, Clone, Copy)]
pub struct WaitArgs {
    /// Follow the deployment until it succeeds (exit 0) or fails (exit 5)
    #[arg(long, short)]
    wait: bool,
    /// With --wait: give up (exit 5) after this long
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub async fn run(cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Deploy {
            file,
            wait,
            force,
            cluster,
        } => {
            let def = app_file::read(&file)?;
            let id = def.id;
            let (path, what, subject) = match def.kind {
                Kind::App => (
                    format!("/v2/apps{id}?partialUpdate=false&force={force}"),
                    format!("{} (app {id})", file.display()),
                    Subject::App(id),
                ),
                Kind::Group => (
                    format!("/v2/groups{id}?force={force}"),
                    format!("{} (group {id})", file.display()),
                    Subject::Group(id),
                ),
            };
            let change = Change {
                method: Method::PUT,
                path,
                body: Some(def.body),
                what,
                subject,
                verbs: ("deploying", "deployed"),
            };
            change.send(&cluster.api()?, wait).await
        }
        AppCommand::Scale {
            id,
            instances,
            wait,
            force,
            cluster,
        } => {
            let change = Change::of_app(Method::PUT, &id, ("scaling", "scaled"))
                .at(|id| format!("/v2/apps{id}?force={force}"))
                .with(json!({ "instances": instances }));
            let api = cluster.api()?;
            // A partial PUT would create a missing app (Marathon's rule).
            api.get(&format!("/v2/apps{}", change.subject.id()), &change.what)
                .await?;
            change.send(&api, wait).await
        }
        AppCommand::Restart {
            id,
            wait,
            force,
            cluster,
        } => {
            Change::of_app(Method::POST, &id, ("restarting", "restarted"))
                .at(|id| format!("/v2/apps{id}/restart?force={force}"))
                .send(&cluster.api()?, wait)
                .await
        }
        AppCommand::Rm { id, wait, cluster } => {
            Change::of_app(Method::DELETE, &id, ("removing", "removed"))
                .send(&cluster.api()?, wait)
                .await
        }
        AppCommand::List { json, cluster } => {
            let api = cluster.api()?;
            let apps = api.get("/v2/apps", "apps").await?;
            if json {
                return out::json(&apps);
            }
            list(&apps);
            Ok(())
        }
        AppCommand::Show { id, json, cluster } => {
            let id = absolute(&id);
            let api = cluster.api()?;
            let what = format!("app {id}");
            let mut app = api.get(&format!("/v2/apps{id}"), &what).await?;
            let tasks = api.get(&format!("/v2/apps{id}/tasks"), &what).await?;
            app["app"]["tasks"] = tasks["tasks"].clone();
            if json {
                return out::json(&app);
            }
            show(&app["app"]);
            Ok(())
        }
    }
}

/// One write to an app (or a group) through `/v2`, and how to tell the user about it.
struct Change {
    method: Method,
    path: String,
    body: Option<Value>,
    /// What the errors name (`app /web`, or the file).
    what: String,
    /// The app or group, by its absolute id.
    subject: Subject,
    /// While it runs, and once it is done: ("scaling", "scaled").
    verbs: (&'static str, &'static str),
}

impl Change {
    /// A write to `/v2/apps<id>` itself, without a body.
    fn of_app(method: Method, id: &str, verbs: (&'static str, &'static str)) -> Self {
        let id = absolute(id);
        Change {
            method,
            path: format!("/v2/apps{id}"),
            body: None,
            what: format!("app {id}"),
            subject: Subject::App(id),
            verbs,
        }
    }

    fn at(mut self, path: impl FnOnce(&str) -> String) -> Self {
        self.path = path(self.subject.id());
        self
    }

    fn with(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sends it; with `--wait`, follows the deployment it started to its end.
    async fn send(self, api: &Api, wait: WaitArgs) -> anyhow::Result<()> {
        // Open before the write, so a deployment that ends at once is seen.
        let watch = if wait.wait {
            Some(Watch::open(api).await)
        } else {
            None
        };
        let answer = api
            .expect(self.method, &self.path, self.body.as_ref(), &self.what)
            .await?;
        let deployment = answer["deploymentId"]
            .as_str()
            .or(answer["deployments"][0]["id"].as_str())
            .unwrap_or("")
            .to_string();
        let (doing, done) = self.verbs;
        match watch {
            Some(watch) if !deployment.is_empty() => {
                watch
                    .follow(&deployment, &self.subject, done, wait.timeout)
                    .await
            }
            _ => {
                println!(
                    "{doing} {} (deployment {deployment}); `meso status` shows it",
                    self.subject.id()
                );
                Ok(())
            }
        }
    }
}

fn list(apps: &Value) {
    let apps = apps["apps"].as_array().cloned().unwrap_or_default();
    if apps.is_empty() {
        println!("no apps (deploy one with `meso app deploy FILE`)");
        return;
    }
    let mut t = Table::new(&["ID", "RUNNING", "HEALTHY", "CPUS", "MEM", "COMMAND / IMAGE"]);
    for a in &apps {
        let checked = a["healthChecks"].as_array().is_some_and(|h| !h.is_empty());
        t.row(vec![
            a["id"].as_str().unwrap_or("-").into(),
            format!("{}/{}", a["tasksRunning"], a["instances"]),
            if checked {
                a["tasksHealthy"].to_string()
            } else {
                "-".into()
            },
            out::cpus(a["cpus"].as_f64().unwrap_or(0.0)),
            out::mb(a["mem"].as_f64().unwrap_or(0.0)),
            runs(a),
        ]);
    }
    t.print();
}

/// What an app runs: its image, else its command.
fn runs(a: &Value) -> String {
    if let Some(image) = a["container"]["docker"]["image"].as_str() {
        let cmd = a["cmd"]
            .as_str()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        return format!("docker {image}{cmd}");
    }
    a["cmd"]
        .as_str()
        .map(String::from)
        .or_else(|| {
            a["args"].as_array().map(|args| {
                args.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .unwrap_or_else(|| "-".into())
}

fn show(a: &Value) {
    let field = |k: &str, v: String| println!("{:<12} {v}", paint(k, Style::Bold));
    field("id", a["id"].as_str().unwrap_or("-").into());
    field("runs", out::cut(&runs(a), out::WIDTH - 13));
    field(
        "instances",
        format!(
            "{} ({} running, {} healthy, {} staged)",
            a["instances"], a["tasksRunning"], a["tasksHealthy"], a["tasksStaged"]
        ),
    );
    field(
        "resources",
        format!(
            "cpus {}  mem {}  disk {}",
            out::cpus(a["cpus"].as_f64().unwrap_or(0.0)),
            out::mb(a["mem"].as_f64().unwrap_or(0.0)),
            out::mb(a["disk"].as_f64().unwrap_or(0.0))
        ),
    );
    field("version", a["version"].as_str().unwrap_or("-").into());
    let deployments: Vec<&str> = a["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str())
        .collect();
    if !deployments.is_empty() {
        field("deploying", deployments.join(" "));
    }
    if let Some(m) = a["lastTaskFailure"]["message"].as_str() {
        field(
            "last failure",
            out::cut(
                &format!(
                    "{} {m}",
                    a["lastTaskFailure"]["state"].as_str().unwrap_or("")
                ),
                out::WIDTH - 13,
            ),
        );
    }
    let tasks = a["tasks"].as_array().cloned().unwrap_or_default();
    println!();
    if tasks.is_empty() {
        println!("no tasks");
        return;
    }
    print_marathon_tasks(&tasks);
}

/// Marathon's task shape (`/v2/apps/ID/tasks`) as a table.
pub fn print_marathon_tasks(tasks: &[Value]) {
    let mut t = Table::new(&["TASK", "HOST", "PORTS", "STATE", "HEALTH"]).keep(0);
    for task in tasks {
        let ports: Vec<String> = task["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect();
        let health = match task["healthCheckResults"].as_array() {
            Some(r) if !r.is_empty() => {
                if r.iter().all(|c| c["alive"] == true) {
                    "healthy"
                } else {
                    "unhealthy"
                }
            }
            _ => "-",
        };
        let state = task["state"].as_str().unwrap_or("-");
        t.row(vec![
            super::task::short_id(task["id"].as_str().unwrap_or("-")).into(),
            task["host"].as_str().unwrap_or("-").into(),
            if ports.is_empty() {
                "-".into()
            } else {
                ports.join(",")
            },
            state.trim_start_matches("TASK_").into(),
            health.into(),
        ]);
    }
    t.print();
}
