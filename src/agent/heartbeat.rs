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
//!
//! **Any accepted call is a heartbeat.** The leader marks an agent seen on
//! every UPDATE it accepts as on a HEARTBEAT, so a beat is due an interval
//! after the last call the leader accepted ([`Contact`]), not after the last
//! beat: a busy agent, whose statuses go out more often than the interval,
//! sends none. At 10,000 simulated agents in a deployment the beats were a
//! quarter of the calls the leader served, each telling it nothing new.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::json;
use tokio::time::Instant;

/// The interval a SUBSCRIBED event's `heartbeat_interval_seconds` names, when
/// it names a usable one (at most an hour).
pub(crate) fn interval_of(seconds: Option<f64>) -> Option<Duration> {
    seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// When the leader last accepted a call of this agent other than a beat:
/// the status update sender records each 202, and [`beats`] waits an
/// interval from it.
#[derive(Debug, Default)]
pub(crate) struct Contact(Mutex<Option<Instant>>);

impl Contact {
    /// The leader accepted a call just now.
    pub(crate) fn accepted(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn last(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// When the next beat is due, `due` being when it was: an interval after
/// the last accepted call, if one came since the session began (`since`:
/// a call accepted by an earlier leader tells the new one nothing).
fn next_due(
    due: Instant,
    last_call: Option<Instant>,
    since: Instant,
    interval: Duration,
) -> Instant {
    match last_call {
        Some(call) if call >= since => due.max(call + interval),
        _ => due,
    }
}

/// Sends agent `agent_id`'s HEARTBEAT to `url` from `first` on, each an
/// interval after the last beat or the last call the leader accepted
/// (`contact`), whichever is later, until a beat is refused, and returns
/// why. `heard` learns of each beat whether it was answered with a success.
pub(crate) async fn beats(
    client: &reqwest::Client,
    url: &reqwest::Url,
    agent_id: String,
    first: Instant,
    interval: Duration,
    contact: &Contact,
    mut heard: impl FnMut(bool),
) -> String {
    let body = Bytes::from(json!({"type": "HEARTBEAT", "agent_id": agent_id}).to_string());
    let since = Instant::now();
    let mut due = first;
    loop {
        tokio::time::sleep_until(due).await;
        let later = next_due(due, contact.last(), since, interval);
        if later > due {
            due = later;
            continue;
        }
        // A late beat is not sent twice: the next is an interval after this.
        due = Instant::now() + interval;
        let sent = client
            .post(url.clone())
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

    use super::{after_heartbeat, interval_of, next_due};
    use reqwest::StatusCode;
    use tokio::time::Instant;

    #[test]
    fn a_beat_is_due_an_interval_after_the_last_accepted_call_of_this_session() {
        let since = Instant::now();
        let interval = Duration::from_secs(5);
        let due = since + Duration::from_secs(2);
        // No call yet, or one accepted before this session (by an earlier
        // leader): the beat goes when it was due.
        assert_eq!(next_due(due, None, since, interval), due);
        let before = since - Duration::from_secs(1);
        assert_eq!(next_due(due, Some(before), since, interval), due);
        // A call accepted since: the beat waits an interval from it.
        let call = since + Duration::from_secs(1);
        assert_eq!(next_due(due, Some(call), since, interval), call + interval);
        // An old call never brings a beat forward.
        let late_due = since + Duration::from_secs(9);
        assert_eq!(next_due(late_due, Some(call), since, interval), late_due);
    }

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
