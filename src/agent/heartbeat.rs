//! HEARTBEAT calls to the leader, sent beside the event stream rather than in
//! its loop: the agent's session (session.rs) and every simulated agent
//! (`sim/agent.rs`) poll this future next to the stream's, so LAUNCH and KILL
//! events are read while a heartbeat waits for its answer.
//!
//! ```text
//!  SUBSCRIBED{interval} ─▶ beats(first, interval) ─┬─ 2xx, or no answer within
//!                                                   │  the interval: beat again
//!                                                   └─ refused (4xx, 5xx, 307)
//!                                                      ─▶ ends: the session
//!                                                         subscribes again
//! ```
//!
//! Awaited inline, a heartbeat to a leader slow to answer held every event
//! behind it for up to an interval (5 s by default): the launches of a busy
//! cluster waited on the very load that slowed the answer. A beat that is
//! late is not sent twice; the next one follows an interval after it.

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};

/// The interval a SUBSCRIBED event's `heartbeat_interval_seconds` names, when
/// it names a usable one (at most an hour).
pub(crate) fn interval_of(seconds: Option<f64>) -> Option<Duration> {
    seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// Sends agent `agent_id`'s HEARTBEAT to `url` every `interval` from `first`
/// until a beat is refused, and returns why. `heard` learns of each beat
/// whether it was answered with a success.
pub(crate) async fn beats(
    client: &reqwest::Client,
    url: &str,
    agent_id: String,
    first: Instant,
    interval: Duration,
    mut heard: impl FnMut(bool),
) -> String {
    let body = Bytes::from(json!({"type": "HEARTBEAT", "agent_id": agent_id}).to_string());
    let mut tick = tokio::time::interval_at(first, interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sent = client
            .post(url)
            .timeout(interval)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map(|r| r.status());
        heard(matches!(&sent, Ok(s) if s.is_success()));
        if let Err(refusal) = after_heartbeat(sent) {
            return refusal;
        }
    }
}

/// What a heartbeat's outcome means for the session: a refusal (the master
/// does not know this agent, or no longer leads) ends it, to subscribe
/// again; a heartbeat that went unanswered does not. A busy leader answers
/// late, and a fleet that resubscribed on every late heartbeat made it
/// busier still, until it marked agents unreachable (BENCHMARKS.md, Scale);
/// a leader that is gone ends the stream, or leaves it silent, and the
/// stream's silence ends the session.
fn after_heartbeat<E: std::fmt::Display>(sent: Result<StatusCode, E>) -> Result<(), String> {
    match sent {
        Ok(status) if status.is_success() => Ok(()),
        Ok(status) => Err(format!("heartbeat refused: {status}")),
        Err(e) => {
            tracing::debug!(error = %e, "heartbeat not answered; the stream decides");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{after_heartbeat, interval_of};
    use reqwest::StatusCode;

    #[test]
    fn a_usable_interval_is_positive_and_finite_and_at_most_an_hour() {
        assert_eq!(interval_of(Some(0.5)), Some(Duration::from_millis(500)));
        assert_eq!(interval_of(Some(86_400.0)), Some(Duration::from_secs(3600)));
        for unusable in [
            None,
            Some(0.0),
            Some(-1.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
        ] {
            assert_eq!(interval_of(unusable), None, "{unusable:?}");
        }
    }

    #[test]
    fn only_a_refused_heartbeat_ends_the_session() {
        assert_eq!(after_heartbeat::<String>(Ok(StatusCode::ACCEPTED)), Ok(()));
        // Unanswered within the interval (a busy leader): the stream decides.
        assert_eq!(after_heartbeat(Err("operation timed out")), Ok(()));
        let refused = after_heartbeat::<String>(Ok(StatusCode::BAD_REQUEST)).unwrap_err();
        assert!(refused.contains("400"), "{refused}");
        assert!(after_heartbeat::<String>(Ok(StatusCode::TEMPORARY_REDIRECT)).is_err());
    }
}
