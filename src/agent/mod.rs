//! The agent role: where work runs.
//!
//! ```text
//!  start ─▶ identity: key from <work_dir>/agent.key (made once), detected
//!           resources overridden by --resources, --attributes
//!        ─▶ containerizers: process (cgroups if the host has them), docker
//!           (disabled with a warning when no engine answers)
//!        ─▶ tasks/ recover: checkpointed tasks watched again, orphans killed
//!        ─▶ session (session.rs): SUBSCRIBE{tasks} ──307──▶ leader ──▶ SUBSCRIBED{id}
//!                                 ◀── LAUNCH, KILL, HEARTBEAT; HEARTBEAT calls ──▶
//!           stream broken or silent ─▶ back off, subscribe again (any master)
//!        ─▶ health/: each RUNNING task's health checks; a flip of its health is
//!           a RUNNING status with `healthy`, too many failures a kill
//!        ─▶ updates.rs: status updates to the leader until acknowledged
//!        ─▶ gc.rs: sandboxes of ended tasks removed after a delay
//! ```
//!
//! Layout of the work dir: `agent.key`, `sandboxes/<task_id>/` (stdout, stderr,
//! fetched files), `meta/tasks.log` (the checkpoint of every task, checkpoint.rs),
//! `meta/tasks/<task_id>/` (the task's exit file). `sandboxes/` and `meta/tasks/`
//! are marked top directories so ext4 spreads the tasks' inodes (topdir.rs).
//!
//! The key, not the id, is the agent's identity: the registry maps it to the
//! Mesos-style id `<cluster-id>-S<n>`, so an agent that restarts (or comes back
//! after being marked unreachable) gets the same id again.

mod checkpoint;
pub mod containerizer;
mod detect;
mod env;
#[cfg(test)]
pub(crate) mod fake_master;
pub mod fetcher;
pub mod files;
mod gc;
mod health;
pub(crate) mod heartbeat;
mod session;
mod tasks;
mod topdir;
pub(crate) mod updates;
mod written_once;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::AgentSettings;
use crate::model::Resources;
use checkpoint::Dirs;
use containerizer::Containerizer;
use containerizer::docker::DockerContainerizer;
use containerizer::process::ProcessContainerizer;
pub use gc::GcPolicy;
use session::{Channels, Identity};
use tasks::Tasks;

pub struct Agent {
    agent_id: watch::Receiver<Option<String>>,
    pub resources: Resources,
}

impl Agent {
    /// Prepares the work dir, recovers checkpointed tasks and starts
    /// subscribing. `addr` is where this node's HTTP API listens.
    pub async fn start(
        settings: &AgentSettings,
        hostname: &str,
        addr: &str,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let dir = &settings.work_dir;
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!("work dir {} is not a directory", dir.display());
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create work dir {}", dir.display()))?;
        let key = load_or_make_key(dir)?;
        let detected = detect::detect(dir);
        let resources = match &settings.resources {
            Some(text) => detected
                .override_with(text)
                .map_err(|e| anyhow::anyhow!(e))?,
            None => detected,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("cannot build the agent's HTTP client")?;
        let cgroups = containerizer::cgroups::detect();
        if cgroups.is_none() {
            tracing::warn!("no usable cgroups: tasks run without memory and cpu limits");
        }
        let process: Arc<dyn Containerizer> = Arc::new(ProcessContainerizer::new(
            tasks::meso_path(),
            key.clone(),
            cgroups,
        ));
        let docker = match DockerContainerizer::connect(key.clone()).await {
            Ok(d) => Ok(Arc::new(d) as Arc<dyn Containerizer>),
            Err(why) => {
                tracing::warn!(%why, "docker containerizer disabled: docker tasks will fail");
                Err(why)
            }
        };
        let (id_tx, id_rx) = watch::channel(None);
        let (link_tx, link_rx) = watch::channel(None);
        let dirs = Dirs::new(dir);
        dirs.create_parents()
            .with_context(|| format!("cannot create the task dirs in {}", dir.display()))?;
        let tasks = Arc::new(Tasks::new(
            dirs,
            hostname.to_string(),
            addr.to_string(),
            process,
            docker,
            id_rx.clone(),
        ));
        tasks.recover().await;
        let contact = Arc::new(heartbeat::Contact::default());
        tokio::spawn(updates::run(
            tasks.clone(),
            link_rx,
            contact.clone(),
            client.clone(),
            updates::LINGER,
            shutdown.clone(),
        ));
        tokio::spawn(gc::run(
            tasks.clone(),
            dir.clone(),
            settings.gc,
            shutdown.clone(),
        ));
        let me = Identity {
            key,
            hostname: hostname.to_string(),
            addr: addr.to_string(),
            resources: resources.clone(),
            attributes: settings.attributes.clone(),
        };
        let channels = Channels {
            agent_id: id_tx,
            link: link_tx,
            tasks,
            contact,
        };
        tokio::spawn(session::run(
            settings.masters.clone(),
            me,
            channels,
            client,
            shutdown,
        ));
        Ok(Self {
            agent_id: id_rx,
            resources,
        })
    }

    /// The id the master gave this agent, once subscribed.
    pub fn id(&self) -> Option<String> {
        self.agent_id.borrow().clone()
    }

    /// Waits until the agent is subscribed.
    pub async fn registered(&self, timeout: std::time::Duration) -> anyhow::Result<String> {
        let mut rx = self.agent_id.clone();
        let wait = rx.wait_for(|id| id.is_some());
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(id)) => Ok(id.clone().unwrap_or_default()),
            _ => anyhow::bail!("the agent did not register with a master within {timeout:?}"),
        }
    }
}

/// The agent's identity survives restarts in `<work_dir>/agent.key`.
fn load_or_make_key(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("agent.key");
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_string()),
        Ok(_) => anyhow::bail!("{} is empty; remove it to make a new agent", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, &key)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
