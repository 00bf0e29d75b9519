//! The log pumps: one task per running container that copies its output into
//! the sandbox, so that `stdout` and `stderr` read as they do for a process
//! task (and through `/files`).
//!
//! ```text
//!  start(id, sandbox, since, after) ─▶ (sleep `after`) ─▶ GET /logs?follow&since
//!        ─▶ <sandbox>/stdout, stderr (append)
//!        stream ends (container stopped, engine gone) ─▶ the pump leaves the map
//!  running(id) ─▶ its completion, for `wait` to let it drain, and when it attaches
//!  dropped with the containerizer ─▶ every pump aborted
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::LogsOptionsBuilder;
use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::why;

/// A log pump's completion, awaited by whoever waits on its container.
pub(super) type PumpDone = Shared<BoxFuture<'static, ()>>;

/// A running log pump: its completion, when it asks the engine for the
/// output, and the means to stop it.
struct Pump {
    done: PumpDone,
    attaches_at: Instant,
    abort: tokio::task::AbortHandle,
}

/// What `running` tells of a pump.
pub(super) struct Running {
    pub done: PumpDone,
    /// When the pump sends (or sent) its logs request.
    pub attaches_at: Instant,
}

/// Running log pumps by container id. A pump removes itself when its stream
/// ends (the container stopped, or the engine went away), and stops when this
/// is dropped, as it would with the agent.
#[derive(Default)]
pub(super) struct LogPumps {
    // Shared with the pumps themselves, so that each can remove itself.
    running: Arc<Mutex<HashMap<String, Pump>>>,
}

impl LogPumps {
    /// Copies the container's output into the sandbox from `since` (seconds
    /// since the epoch; 0: from its start) until it stops, asking the engine
    /// for it `after` from now. Nothing is lost by asking late: the engine
    /// keeps a container's output from its start (json-file, local, and
    /// dual logging alike). One pump per container: a second call while one
    /// runs does nothing.
    pub(super) fn start(
        &self,
        docker: &Docker,
        id: &str,
        sandbox: PathBuf,
        since: i32,
        after: Duration,
    ) -> PumpDone {
        let mut pumps = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pump) = pumps.get(id) {
            return pump.done.clone();
        }
        let (docker, pumps_ref, key) = (docker.clone(), self.running.clone(), id.to_string());
        let attaches_at = Instant::now() + after;
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(attaches_at).await;
            if let Err(e) = pump_logs(&docker, &key, &sandbox, since).await {
                tracing::warn!(container = %key, sandbox = %sandbox.display(), error = %e, "container output not copied");
            }
            pumps_ref
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        });
        let abort = task.abort_handle();
        let done = task.map(|_| ()).boxed().shared();
        let pump = Pump {
            done: done.clone(),
            attaches_at,
            abort,
        };
        pumps.insert(id.to_string(), pump);
        done
    }

    /// The pump copying `id`'s output, while one runs.
    pub(super) fn running(&self, id: &str) -> Option<Running> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|p| Running {
                done: p.done.clone(),
                attaches_at: p.attaches_at,
            })
    }
}

impl Drop for LogPumps {
    fn drop(&mut self) {
        let pumps = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for pump in pumps.values() {
            pump.abort.abort();
        }
    }
}

/// Now, in seconds since the epoch, as docker's `since` counts it.
pub(super) fn now_secs() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Appends the container's stdout and stderr to the sandbox's files until the
/// log stream ends (the container stopped, or the engine went away).
async fn pump_logs(docker: &Docker, id: &str, sandbox: &Path, since: i32) -> std::io::Result<()> {
    let open = |file: &str| {
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).append(true);
        let path = sandbox.join(file);
        async move { options.open(path).await }
    };
    let (mut stdout, mut stderr) = (open("stdout").await?, open("stderr").await?);
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(since)
        .build();
    let mut logs = docker.logs(id, Some(options));
    while let Some(chunk) = logs.next().await {
        use bollard::container::LogOutput;
        match chunk {
            Ok(LogOutput::StdErr { message }) => {
                stderr.write_all(&message).await?;
                stderr.flush().await?;
            }
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                stdout.write_all(&message).await?;
                stdout.flush().await?;
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => return Err(std::io::Error::other(why(&e))),
        }
    }
    Ok(())
}
