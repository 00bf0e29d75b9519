//! Where one check stands, result by result: Mesos's and Marathon's rules,
//! without clocks or I/O (the caller says when, and whether the grace period
//! is still on), so they are tested on their own.
//!
//! - A success ends the grace period for good and resets the failure count.
//! - A failure within the grace period, before any success, is not counted:
//!   the check has no verdict yet.
//! - A counted failure makes the check unhealthy; `max` of them in a row
//!   (`max > 0`) call for a kill.
//! - A discarded result (a 1xx with `ignore_http1xx`) changes nothing.

use crate::model::CheckHealth;

/// What one probe found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Healthy,
    Unhealthy(String),
    Discarded,
}

/// What the caller must do after a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Nothing,
    /// The task failed this check `max` times in a row: kill it.
    Kill,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckState {
    /// Reported as is (its `alive` follows the verdict).
    pub health: CheckHealth,
    /// None until a success, or a failure past the grace period.
    verdict: Option<bool>,
    /// A success since the checker started: the grace period is over.
    succeeded: bool,
}

impl CheckState {
    /// A fresh state; `prior` (from before an agent restart) lends its times
    /// and last cause, but no verdict and no failure count: the checker starts
    /// over, grace period included.
    pub fn new(prior: Option<&CheckHealth>) -> Self {
        let health = match prior {
            Some(p) => CheckHealth {
                alive: false,
                consecutive_failures: 0,
                ..p.clone()
            },
            None => CheckHealth::default(),
        };
        Self {
            health,
            verdict: None,
            succeeded: false,
        }
    }

    pub fn verdict(&self) -> Option<bool> {
        self.verdict
    }

    pub fn record(&mut self, outcome: Outcome, at: f64, in_grace: bool, max: u32) -> Step {
        let h = &mut self.health;
        match outcome {
            Outcome::Discarded => return Step::Nothing,
            Outcome::Healthy => {
                h.consecutive_failures = 0;
                h.first_success.get_or_insert(at);
                h.last_success = Some(at);
                self.succeeded = true;
                self.verdict = Some(true);
            }
            Outcome::Unhealthy(cause) => {
                h.last_failure = Some(at);
                h.last_failure_cause = Some(cause);
                if in_grace && !self.succeeded {
                    return Step::Nothing;
                }
                h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                self.verdict = Some(false);
            }
        }
        h.alive = self.verdict == Some(true);
        if max > 0 && h.consecutive_failures >= max {
            Step::Kill
        } else {
            Step::Nothing
        }
    }
}

/// The task's health by all its checks: unhealthy when any check is, healthy
/// when every check is, else no verdict yet.
pub fn overall<'a>(states: impl IntoIterator<Item = &'a CheckState>) -> Option<bool> {
    let mut all_healthy = true;
    for state in states {
        match state.verdict {
            Some(false) => return Some(false),
            Some(true) => {}
            None => all_healthy = false,
        }
    }
    all_healthy.then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Outcome {
        Outcome::Unhealthy("refused".into())
    }

    #[test]
    fn failures_in_grace_do_not_count_until_a_success() {
        let mut s = CheckState::new(None);
        assert_eq!(s.record(fail(), 1.0, true, 1), Step::Nothing);
        assert_eq!(s.verdict(), None);
        assert_eq!(s.health.last_failure, Some(1.0));
        assert_eq!(s.health.consecutive_failures, 0);
        assert_eq!(s.record(Outcome::Healthy, 2.0, true, 1), Step::Nothing);
        assert_eq!(s.verdict(), Some(true));
        assert!(s.health.alive);
        // After a success, the grace period is over.
        assert_eq!(s.record(fail(), 3.0, true, 1), Step::Kill);
        assert_eq!(s.verdict(), Some(false));
        assert!(!s.health.alive);
        assert_eq!(s.health.first_success, Some(2.0));
        assert_eq!(s.health.last_failure_cause.as_deref(), Some("refused"));
    }

    #[test]
    fn max_failures_in_a_row_kill_and_zero_never_does() {
        let mut s = CheckState::new(None);
        assert_eq!(s.record(fail(), 1.0, false, 3), Step::Nothing);
        assert_eq!(s.record(fail(), 2.0, false, 3), Step::Nothing);
        assert_eq!(s.record(Outcome::Healthy, 3.0, false, 3), Step::Nothing);
        assert_eq!(s.record(fail(), 4.0, false, 3), Step::Nothing);
        assert_eq!(s.record(Outcome::Discarded, 5.0, false, 3), Step::Nothing);
        assert_eq!(s.record(fail(), 6.0, false, 3), Step::Nothing);
        assert_eq!(s.record(fail(), 7.0, false, 3), Step::Kill);
        assert_eq!(s.health.consecutive_failures, 3);
        let mut never = CheckState::new(None);
        for at in 0..100 {
            assert_eq!(never.record(fail(), f64::from(at), false, 0), Step::Nothing);
        }
    }

    #[test]
    fn a_recovered_check_keeps_its_times_but_starts_over() {
        let mut before = CheckState::new(None);
        before.record(Outcome::Healthy, 1.0, false, 3);
        before.record(fail(), 2.0, false, 3);
        let s = CheckState::new(Some(&before.health));
        assert_eq!(s.verdict(), None);
        assert_eq!(s.health.first_success, Some(1.0));
        assert_eq!(s.health.last_failure, Some(2.0));
        assert_eq!(s.health.consecutive_failures, 0);
    }

    #[test]
    fn the_task_is_as_healthy_as_its_worst_check() {
        let (mut a, mut b) = (CheckState::new(None), CheckState::new(None));
        assert_eq!(overall([&a, &b]), None);
        a.record(Outcome::Healthy, 1.0, false, 0);
        assert_eq!(overall([&a, &b]), None);
        b.record(Outcome::Healthy, 1.0, false, 0);
        assert_eq!(overall([&a, &b]), Some(true));
        b.record(fail(), 2.0, false, 0);
        assert_eq!(overall([&a, &b]), Some(false));
        assert_eq!(overall([]), Some(true));
    }
}
