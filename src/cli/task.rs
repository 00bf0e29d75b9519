//! `meso task list [APP]`, and how `logs` and `exec` find the tasks a name
//! means.
//!
//! ```text
//!  /master/tasks (every task: Marathon's and the operator API's, live then
//!  the last ended) + /master/slaves (agent hosts) ─▶ Task rows
//!  a NAME ─▶ a task id ─▶ that task
//!         ─▶ an app id ─▶ its live tasks
//!         ─▶ the start of one task id ─▶ that task (ids are long to type)
//! ```

use std::collections::BTreeMap;

use clap::Subcommand;
use serde_json::{Value, json};

use super::app_file::absolute;
use super::out::{self, Table};
use super::target::{Api, ClusterArgs};
use super::{Exit, code};
use crate::model::TaskState;

#[derive(Subcommand)]
pub enum TaskCommand {
    /// List live tasks (all of an app's, with APP), one a line
    List {
        /// Only this app's tasks
        app: Option<String>,
        /// Also the tasks that have ended (the last 1,000)
        #[arg(long)]
        all: bool,
        /// Print as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

/// A task as the CLI needs it.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub app: Option<String>,
    pub state: String,
    pub live: bool,
    pub agent_id: String,
    pub host: String,
    pub ports: String,
    /// `DOCKER` or `MESOS` (a process).
    pub container: String,
}

impl Task {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "app": self.app,
            "state": self.state,
            "agent_id": self.agent_id,
            "host": self.host,
            "ports": self.ports,
            "container": self.container,
        })
    }
}

pub async fn run(cmd: TaskCommand) -> anyhow::Result<()> {
    let TaskCommand::List {
        app,
        all,
        json,
        cluster,
    } = cmd;
    let api = cluster.api()?;
    let mut tasks = all_tasks(&api).await?;
    if let Some(app) = &app {
        let app = absolute(app);
        // An unknown app is an error, not an empty list: likely a typo.
        api.get(&format!("/v2/apps{app}"), &format!("app {app}"))
            .await?;
        tasks.retain(|t| t.app.as_deref() == Some(app.as_str()));
    }
    if !all {
        tasks.retain(|t| t.live);
    }
    if json {
        return out::json(&Value::Array(tasks.iter().map(Task::json).collect()));
    }
    if tasks.is_empty() {
        println!("no tasks");
        return Ok(());
    }
    let mut t = Table::new(&["TASK", "STATE", "HOST", "PORTS"]).keep(0);
    for task in &tasks {
        t.row(vec![
            short_id(&task.id).to_string(),
            task.state.trim_start_matches("TASK_").into(),
            task.host.clone(),
            if task.ports.is_empty() {
                "-".into()
            } else {
                task.ports.clone()
            },
        ]);
    }
    t.print();
    Ok(())
}

/// Every task the master knows, live ones first (its order).
pub async fn all_tasks(api: &Api) -> anyhow::Result<Vec<Task>> {
    let tasks = api.get("/master/tasks", "tasks").await?;
    let slaves = api.get("/master/slaves", "agents").await?;
    let hosts: BTreeMap<&str, &str> = slaves["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["id"].as_str()?, s["hostname"].as_str()?)))
        .collect();
    Ok(tasks["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let id = t["id"].as_str()?.to_string();
            let state = t["state"].as_str().unwrap_or("?").to_string();
            let live = serde_json::from_value::<TaskState>(t["state"].clone())
                .is_ok_and(|s| !s.is_terminal());
            let agent_id = t["agent_id"].as_str().unwrap_or("").to_string();
            let ports: Vec<String> = t["discovery"]["ports"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["number"].to_string())
                .collect();
            let ports = ports.join(",");
            Some(Task {
                app: crate::scheduler::app::app_id_of_task(&id).map(|p| p.to_string()),
                host: hosts.get(agent_id.as_str()).unwrap_or(&"-").to_string(),
                container: t["container"]["type"]
                    .as_str()
                    .unwrap_or("MESOS")
                    .to_string(),
                id,
                state,
                live,
                agent_id,
                ports,
            })
        })
        .collect())
}

/// A Marathon task id cut after 8 hex digits of its uuid
/// (`web.instance-3f2a9c1b`): still a start of the id, which every command
/// that names a task takes, and short enough for 80 columns.
pub fn short_id(id: &str) -> &str {
    match id.find(".instance-") {
        Some(at) => {
            let end = at + ".instance-".len() + 8;
            id.get(..end).unwrap_or(id)
        }
        None => id,
    }
}

/// The tasks `name` means: a task id, else an app's live tasks, else the
/// one task whose id starts so. Unknown, or a prefix of several: exit 4.
pub async fn resolve(api: &Api, name: &str) -> anyhow::Result<Vec<Task>> {
    let tasks = all_tasks(api).await?;
    if let Some(t) = tasks.iter().find(|t| t.id == name) {
        return Ok(vec![t.clone()]);
    }
    let app = absolute(name);
    let of_app: Vec<Task> = tasks
        .iter()
        .filter(|t| t.live && t.app.as_deref() == Some(app.as_str()))
        .cloned()
        .collect();
    if !of_app.is_empty() {
        return Ok(of_app);
    }
    let prefixed: Vec<&Task> = tasks.iter().filter(|t| t.id.starts_with(name)).collect();
    match prefixed[..] {
        [one] => Ok(vec![one.clone()]),
        [] => Err(Exit::new(
            code::NOT_FOUND,
            format!("no task or app with live tasks named {name:?} — `meso task list` lists them"),
        )
        .into()),
        _ => Err(Exit::new(
            code::NOT_FOUND,
            format!(
                "{name:?} starts {} task ids ({}, ...); give more of one",
                prefixed.len(),
                prefixed[0].id
            ),
        )
        .into()),
    }
}
