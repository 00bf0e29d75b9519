//! What becomes of a simulated task: nothing runs, so the task's command
//! decides how it would have ended, read the way a shell would for the few
//! commands whose end is known without running them.
//!
//! | command | fate |
//! |---|---|
//! | `true`, `:`, `exit 0` | TASK_FINISHED at once (exit code 0) |
//! | `false`, `exit N` | TASK_FAILED at once (exit code 1, N) |
//! | `sleep N` (`N`, `Ns`, `Nm`, `Nh`) | TASK_FINISHED after N |
//! | anything else | runs until killed, or TASK_FINISHED after `--task-duration` |
//!
//! So a Marathon app of `sleep 600` holds its instances, one of `true`
//! restarts them as Marathon would (with its backoff), and a load test can
//! churn tasks at a chosen rate with `--task-duration`.

use std::time::Duration;

use crate::model::TaskState;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fate {
    /// RUNNING until killed.
    Run,
    /// RUNNING, then this state (with this exit code) after the delay.
    End {
        after: Duration,
        state: TaskState,
        exit_code: i32,
    },
}

impl Fate {
    /// The fate of a task whose command is `command` (`None`: a docker task
    /// without one), with `default` the run time of tasks that would not end.
    pub fn of(command: Option<&str>, default: Option<Duration>) -> Fate {
        let forever = || match default {
            Some(after) => Fate::End {
                after,
                state: TaskState::Finished,
                exit_code: 0,
            },
            None => Fate::Run,
        };
        let Some(command) = command else {
            return forever();
        };
        let words: Vec<&str> = command.split_whitespace().collect();
        let now = |state, exit_code| Fate::End {
            after: Duration::ZERO,
            state,
            exit_code,
        };
        match words.as_slice() {
            ["true"] | [":"] | ["exit"] | ["exit", "0"] => now(TaskState::Finished, 0),
            ["false"] => now(TaskState::Failed, 1),
            ["exit", code] => match code.parse::<i32>() {
                // A shell takes the exit code modulo 256.
                Ok(code) if code.rem_euclid(256) == 0 => now(TaskState::Finished, 0),
                Ok(code) => now(TaskState::Failed, code.rem_euclid(256)),
                Err(_) => forever(),
            },
            ["sleep", time] => match sleep_time(time) {
                Some(after) => Fate::End {
                    after,
                    state: TaskState::Finished,
                    exit_code: 0,
                },
                None => forever(),
            },
            _ => forever(),
        }
    }
}

/// `sleep`'s argument: seconds, with GNU's optional `s`, `m`, `h` or `d`.
fn sleep_time(text: &str) -> Option<Duration> {
    let (number, unit) = match text.char_indices().last()? {
        (i, c @ ('s' | 'm' | 'h' | 'd')) => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite())?;
    let scale = match unit {
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => 1.0,
    };
    // A year is as good as forever here, and keeps the Duration in range.
    Duration::try_from_secs_f64((n * scale).min(365.0 * 86400.0)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(after: f64, state: TaskState, exit_code: i32) -> Fate {
        Fate::End {
            after: Duration::from_secs_f64(after),
            state,
            exit_code,
        }
    }

    #[test]
    fn commands_whose_end_is_known_end_so() {
        assert_eq!(
            Fate::of(Some("true"), None),
            ends(0.0, TaskState::Finished, 0)
        );
        assert_eq!(
            Fate::of(Some(" exit 0 "), None),
            ends(0.0, TaskState::Finished, 0)
        );
        assert_eq!(
            Fate::of(Some("false"), None),
            ends(0.0, TaskState::Failed, 1)
        );
        assert_eq!(
            Fate::of(Some("exit 3"), None),
            ends(0.0, TaskState::Failed, 3)
        );
        assert_eq!(
            Fate::of(Some("exit 256"), None),
            ends(0.0, TaskState::Finished, 0)
        );
        assert_eq!(
            Fate::of(Some("exit -1"), None),
            ends(0.0, TaskState::Failed, 255)
        );
        assert_eq!(
            Fate::of(Some("sleep 2"), None),
            ends(2.0, TaskState::Finished, 0)
        );
        assert_eq!(
            Fate::of(Some("sleep 1.5m"), None),
            ends(90.0, TaskState::Finished, 0)
        );
        assert_eq!(
            Fate::of(Some("sleep 0.25s"), None),
            ends(0.25, TaskState::Finished, 0)
        );
    }

    #[test]
    fn other_commands_run_until_killed_or_for_the_default_time() {
        assert_eq!(
            Fate::of(Some("python3 -m http.server $PORT0"), None),
            Fate::Run
        );
        assert_eq!(Fate::of(Some("sleep infinity"), None), Fate::Run);
        assert_eq!(Fate::of(Some("sleep 1; true"), None), Fate::Run);
        assert_eq!(Fate::of(None, None), Fate::Run);
        let ten = Some(Duration::from_secs(10));
        assert_eq!(
            Fate::of(Some("nginx"), ten),
            ends(10.0, TaskState::Finished, 0)
        );
        assert_eq!(Fate::of(None, ten), ends(10.0, TaskState::Finished, 0));
        // The command's own end wins over the default.
        assert_eq!(
            Fate::of(Some("false"), ten),
            ends(0.0, TaskState::Failed, 1)
        );
        assert_eq!(Fate::of(Some("sleep 1e400"), None), Fate::Run);
    }
}
