//! Sandbox garbage collection, as Mesos's `--gc_delay` and disk watch: the
//! sandbox (and checkpoint) of an ended task whose last status is acknowledged
//! goes once it is older than the delay, or sooner, oldest first, while the
//! work dir's filesystem is fuller than the threshold.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::tasks::Tasks;
use crate::master::now_secs;

#[derive(Debug, Clone, Copy)]
pub struct GcPolicy {
    pub delay: Duration,
    /// Fraction of the filesystem in use above which sandboxes go early.
    pub disk_usage: f64,
}

pub async fn run(
    tasks: Arc<Tasks>,
    work_dir: std::path::PathBuf,
    policy: GcPolicy,
    shutdown: CancellationToken,
) {
    let every = (policy.delay / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let mut finished = tasks.finished();
        finished.sort_by(|a, b| a.1.total_cmp(&b.1));
        let cutoff = now_secs() - policy.delay.as_secs_f64();
        for (id, ended) in &finished {
            let full = disk_usage(&work_dir).is_some_and(|u| u > policy.disk_usage);
            if *ended <= cutoff || full {
                tracing::debug!(task = %id, full, "removing an ended task's sandbox");
                tasks.forget(id);
            } else {
                break;
            }
        }
    }
}

/// How full the filesystem holding `dir` is, 0.0 to 1.0.
fn disk_usage(dir: &std::path::Path) -> Option<f64> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    let total = stat.blocks() as f64;
    (total > 0.0).then(|| 1.0 - stat.blocks_available() as f64 / total)
}
