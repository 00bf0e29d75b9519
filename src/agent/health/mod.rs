//! Health checks, run by the agent next to each task, as Mesos runs them
//! (Marathon's HTTP/HTTPS/TCP checks too: here they are all agent-side).
//!
//! ```text
//!  tasks/: RUNNING (or recovered RUNNING) ─▶ Checkers::start ─▶ one tokio task per check:
//!     delay ─▶ probe (probe.rs: GET 127.0.0.1:<host port>, TCP connect,
//!              containerizer.exec `/bin/sh -c`) within timeout ─▶ verdict.rs
//!           ─▶ the task's health flips ─▶ Reporter::health_flipped
//!                  (tasks/: a RUNNING status with `healthy`, checkpointed, sent)
//!           ─▶ max_consecutive_failures in a row ─▶ Reporter::kill_unhealthy
//!                  (tasks/: the normal kill, SIGTERM … grace … SIGKILL ─▶
//!                   TASK_KILLED, healthy false, REASON_TASK_HEALTH_CHECK_STATUS_UPDATED)
//!     ─▶ sleep interval ─▶ probe …
//!  readiness check (if any, and not reported ready yet): every interval ─▶ GET
//!     ─▶ status in http_status_codes_for_ready ─▶ Reporter::ready (once), and it ends
//!  tasks/: KILLING, or the task ended ─▶ Checkers::stop: every check of the task ends
//! ```
//!
//! Decisions (the README's design notes say the same):
//! - A status update goes out only when the task's health *flips* (its first
//!   verdict included), not after every probe: each one is a Raft write. So
//!   `consecutive_failures` and the `last_*` times the registry holds are as of
//!   the last flip (and of the final status, when a kill ends the task).
//! - The task is healthy when every check is, unhealthy when any is; with no
//!   verdict yet (in the grace period, no success) nothing is reported.
//! - `max_consecutive_failures: 0` never kills: Marathon's meaning for its
//!   checks (Mesos's own would kill at once).
//! - After an agent restart the checks of recovered RUNNING tasks start over,
//!   grace period included; the verdict last reported and each check's times
//!   come from the checkpoint, so an unchanged verdict is not sent again.
//! - Readiness is asked from the start (no delay, no grace: a task that is
//!   not ready yet is simply not ready) until it first passes; it is reported
//!   once and not asked again, after a restart either.

mod probe;
mod verdict;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::master::now_secs;
use crate::model::health::clamped_secs;
use crate::model::{HealthCheckSpec, HealthReport, ReadinessCheckSpec};
pub use probe::Target;
use verdict::{CheckState, Outcome, Step, overall};

/// What the checkers ask of the agent's task book.
pub trait Reporter: Send + Sync + 'static {
    /// The task's health flipped: report it (a RUNNING status with `healthy`).
    fn health_flipped(&self, task_id: &str, healthy: bool, report: HealthReport, message: String);
    /// A check failed too often: kill the task, saying why.
    fn kill_unhealthy(&self, task_id: &str, report: HealthReport, message: String);
    /// The readiness check passed: report it (a RUNNING status with `ready`).
    fn ready(&self, task_id: &str, message: String);
}

/// A task to check.
pub struct Checked {
    pub task_id: String,
    pub checks: Vec<HealthCheckSpec>,
    pub target: Target,
    /// The verdict last reported for the task, if any (from the checkpoint).
    pub reported: Option<bool>,
    /// The report sent with it: each check's times carry over.
    pub prior: Option<HealthReport>,
    /// Asked until it passes, unless `ready` says it did already.
    pub readiness: Option<ReadinessCheckSpec>,
    pub ready: bool,
}

/// The running checkers of every task.
pub struct Checkers {
    running: Mutex<HashMap<String, CancellationToken>>,
    http: reqwest::Client,
}

impl Default for Checkers {
    fn default() -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
            http: probe::http_client(),
        }
    }
}

impl Checkers {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts checking a task (nothing for a task without checks); the grace
    /// periods count from now.
    pub fn start(&self, task: Checked, reporter: Arc<dyn Reporter>) {
        let readiness = task.readiness.clone().filter(|_| !task.ready);
        if task.checks.is_empty() && readiness.is_none() {
            return;
        }
        let token = CancellationToken::new();
        if let Some(old) = self.running().insert(task.task_id.clone(), token.clone()) {
            old.cancel();
        }
        let prior = |i: usize| task.prior.as_ref().and_then(|p| p.checks.get(i));
        let book = Arc::new(Book {
            task_id: task.task_id.clone(),
            checks: task.checks.clone(),
            state: Mutex::new(Standing {
                states: (0..task.checks.len())
                    .map(|i| CheckState::new(prior(i)))
                    .collect(),
                reported: task.reported,
            }),
            started: Instant::now(),
            target: task.target,
            reporter,
            token,
        });
        tracing::debug!(task = %task.task_id, checks = task.checks.len(), "health checks started");
        for index in 0..task.checks.len() {
            tokio::spawn(run_check(book.clone(), index, self.http.clone()));
        }
        if let Some(check) = readiness {
            tokio::spawn(run_readiness(book, check, self.http.clone()));
        }
    }

    /// Stops checking a task (it is being killed, or it ended).
    pub fn stop(&self, task_id: &str) {
        if let Some(token) = self.running().remove(task_id) {
            token.cancel();
        }
    }
}

/// One task's checks, shared by their loops.
struct Book {
    task_id: String,
    checks: Vec<HealthCheckSpec>,
    state: Mutex<Standing>,
    started: Instant,
    target: Target,
    reporter: Arc<dyn Reporter>,
    token: CancellationToken,
}

struct Standing {
    states: Vec<CheckState>,
    reported: Option<bool>,
}

/// What a result calls for, done outside the lock.
enum Action {
    Flip {
        healthy: bool,
        report: HealthReport,
        message: String,
    },
    Kill {
        report: HealthReport,
        message: String,
    },
}

impl Book {
    fn record(&self, index: usize, outcome: Outcome) -> Vec<Action> {
        let check = &self.checks[index];
        let in_grace = self.started.elapsed() < clamped_secs(check.grace_period_seconds);
        let mut standing = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let step = standing.states[index].record(
            outcome,
            now_secs(),
            in_grace,
            check.max_consecutive_failures,
        );
        let report = HealthReport {
            checks: standing.states.iter().map(|s| s.health.clone()).collect(),
        };
        let this = &standing.states[index].health;
        let cause = this.last_failure_cause.clone().unwrap_or_default();
        let failures = this.consecutive_failures;
        let mut actions = Vec::new();
        let now = overall(&standing.states);
        if let Some(healthy) = now.filter(|h| Some(*h) != standing.reported) {
            standing.reported = Some(healthy);
            let message = if healthy {
                "healthy: every health check passes".to_string()
            } else {
                let (i, failing) = standing
                    .states
                    .iter()
                    .enumerate()
                    .find(|(_, s)| s.verdict() == Some(false))
                    .map(|(i, s)| (i, s.health.last_failure_cause.clone().unwrap_or_default()))
                    .unwrap_or((index, cause.clone()));
                format!("unhealthy: {} failed: {failing}", self.checks[i].describe())
            };
            actions.push(Action::Flip {
                healthy,
                report: report.clone(),
                message,
            });
        }
        if step == Step::Kill {
            let message = format!(
                "killed: {} failed {failures} time(s) in a row: {cause}",
                check.describe()
            );
            actions.push(Action::Kill { report, message });
        }
        actions
    }
}

async fn run_check(book: Arc<Book>, index: usize, http: reqwest::Client) {
    let check = &book.checks[index];
    let token = &book.token;
    tokio::select! {
        _ = token.cancelled() => return,
        _ = tokio::time::sleep(clamped_secs(check.delay_seconds)) => {}
    }
    let interval = clamped_secs(check.interval_seconds);
    loop {
        let outcome = tokio::select! {
            _ = token.cancelled() => return,
            o = probe::probe(check, &book.target, &http) => o,
        };
        if token.is_cancelled() {
            return;
        }
        tracing::trace!(task = %book.task_id, check = index, ?outcome, "health probe");
        for action in book.record(index, outcome) {
            match action {
                Action::Flip {
                    healthy,
                    report,
                    message,
                } => {
                    tracing::info!(task = %book.task_id, healthy, %message, "task health changed");
                    book.reporter
                        .health_flipped(&book.task_id, healthy, report, message);
                }
                Action::Kill { report, message } => {
                    tracing::info!(task = %book.task_id, %message, "killing an unhealthy task");
                    token.cancel();
                    book.reporter.kill_unhealthy(&book.task_id, report, message);
                    return;
                }
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Asks the readiness check until it passes, then reports it and ends.
async fn run_readiness(book: Arc<Book>, check: ReadinessCheckSpec, http: reqwest::Client) {
    let token = &book.token;
    let interval = clamped_secs(check.interval_seconds);
    loop {
        let answer = tokio::select! {
            _ = token.cancelled() => return,
            a = probe::readiness(&check, &book.target, &http) => a,
        };
        if token.is_cancelled() {
            return;
        }
        match answer {
            Ok(message) => {
                tracing::info!(task = %book.task_id, %message, "task ready");
                book.reporter.ready(&book.task_id, message);
                return;
            }
            Err(why) => tracing::trace!(task = %book.task_id, %why, "not ready yet"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
