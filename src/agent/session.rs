//! The agent's subscription to the leading master: subscribe (following the
//! 307 a follower answers to wherever the leader is), read the RecordIO event
//! stream, and send a HEARTBEAT call beside it an interval after the last call
//! the leader accepted (heartbeat.rs: a slow answer holds no event back, and
//! an accepted UPDATE stands for a beat). When the stream ends, the
//! master falls silent for three intervals, or a heartbeat is refused, start
//! over with the next master address, backing off up to the heartbeat
//! interval the master asked for (at most 2 s): a master marks an agent
//! unreachable after a few intervals of silence, so an agent that waited
//! longer between tries could lose its place to a master failover alone.
//! Nothing here stops the agent: its tasks keep running while no master
//! answers.
//!
//! LAUNCH and KILL events go to `tasks/`; while subscribed, the leader's URL
//! is published for the status update sender (`updates.rs`).

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::heartbeat;
use super::tasks::Tasks;
use super::updates::Link;
use crate::api::base_url;
use crate::api::recordio::EventStream;
use crate::model::{Resources, TaskSpec};

/// What the agent tells the master about itself.
#[derive(Debug, Clone)]
pub struct Identity {
    pub key: String,
    pub hostname: String,
    pub addr: String,
    pub resources: Resources,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// What a session reports to and acts on.
pub struct Channels {
    pub agent_id: watch::Sender<Option<String>>,
    pub link: watch::Sender<Option<Link>>,
    pub tasks: Arc<Tasks>,
    /// The last call the leader accepted (heartbeat.rs).
    pub contact: Arc<heartbeat::Contact>,
}

pub async fn run(
    masters: Vec<String>,
    me: Identity,
    channels: Channels,
    client: reqwest::Client,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    let mut interval = MAX_BACKOFF;
    for master in masters.iter().cycle() {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session(&client, master, &me, &channels, &mut interval) => r,
        };
        channels.link.send_replace(None);
        match outcome {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(e) => tracing::info!(%master, error = %e, "agent not subscribed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(interval.min(MAX_BACKOFF));
    }
}

/// The longest wait between two tries to subscribe.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One subscription, until it breaks. Ok means it was established first.
/// `heartbeat` is set to the interval the master asks for.
async fn session(
    client: &reqwest::Client,
    master: &str,
    me: &Identity,
    channels: &Channels,
    heartbeat: &mut Duration,
) -> Result<(), String> {
    let url = format!("{}/api/v1/agent", base_url(master));
    let subscribe = json!({
        "type": "SUBSCRIBE",
        "subscribe": {
            "key": me.key,
            "hostname": me.hostname,
            "addr": me.addr,
            "resources": me.resources,
            "attributes": me.attributes,
            "tasks": channels.tasks.report(),
        },
    });
    let response = client
        .post(&url)
        .header("Accept", "application/recordio")
        .json(&subscribe)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        let status = response.status();
        return Err(format!(
            "{status}: {}",
            response.text().await.unwrap_or_default().trim()
        ));
    }
    // After redirects, this is the leader's URL: heartbeats go there too.
    let leader_url = response.url().clone();
    let mut events = EventStream::new(response);
    let mut interval = Duration::from_secs(5);
    let mut subscribed = false;
    // Beats once subscribed, polled beside the stream (heartbeat.rs).
    let mut beats: BoxFuture<'_, String> = Box::pin(std::future::pending());
    loop {
        let silence = interval * 3;
        tokio::select! {
            record = events.next(silence) => {
                let Some(record) = record? else {
                    return if subscribed { Ok(()) } else { Err("the master closed the stream".into()) };
                };
                let event: Value = serde_json::from_slice(&record).map_err(|e| e.to_string())?;
                if event["type"] == "SUBSCRIBED" {
                    let sub = &event["subscribed"];
                    let new_id = sub["agent_id"].as_str().ok_or("SUBSCRIBED without agent_id")?.to_string();
                    if let Some(asked) = heartbeat::interval_of(sub["heartbeat_interval_seconds"].as_f64()) {
                        interval = asked;
                        *heartbeat = interval;
                    }
                    tracing::info!(agent_id = %new_id, master = %leader_url, "agent subscribed");
                    channels.agent_id.send_replace(Some(new_id.clone()));
                    channels.link.send_replace(Some(Link { url: leader_url.clone(), agent_id: new_id.clone() }));
                    beats = Box::pin(heartbeat::beats(client, &leader_url, new_id, Instant::now(), interval, &channels.contact, |_| {}));
                    subscribed = true;
                } else {
                    dispatch(&event, &channels.tasks);
                }
            }
            refusal = &mut beats => return Err(refusal),
        }
    }
}

/// Hands a LAUNCH or KILL to the tasks; anything else is a heartbeat or
/// news this agent does not need.
fn dispatch(event: &Value, tasks: &Arc<Tasks>) {
    match event["type"].as_str() {
        Some("LAUNCH") => match serde_json::from_value::<TaskSpec>(event["launch"]["task"].clone())
        {
            Ok(spec) => tasks.launch(spec),
            Err(e) => tracing::warn!(error = %e, "LAUNCH with a task this agent cannot read"),
        },
        Some("KILL") => {
            let kill = &event["kill"];
            match kill["task_id"].as_str() {
                Some(id) => {
                    let grace = kill["grace_period_seconds"]
                        .as_f64()
                        .filter(|g| g.is_finite() && *g >= 0.0)
                        .unwrap_or(3.0);
                    tasks.kill(id, Duration::from_secs_f64(grace.min(3600.0)));
                }
                None => tracing::warn!("KILL without a task_id"),
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use tokio::sync::watch;
    use tokio_util::sync::{CancellationToken, DropGuard};

    use super::{Channels, Identity, run};
    use crate::agent::fake_master::FakeMaster;
    use crate::agent::heartbeat::Contact;
    use crate::agent::tasks::Tasks;
    use crate::agent::tasks::testing::{Starter, tasks_with};

    /// An agent's session against `master`, until the guard drops.
    fn session_with(master: &FakeMaster, tasks: Arc<Tasks>, contact: Arc<Contact>) -> DropGuard {
        let channels = Channels {
            agent_id: watch::Sender::new(None),
            link: watch::Sender::new(None),
            tasks,
            contact,
        };
        let me = Identity {
            key: "k".into(),
            hostname: "host".into(),
            addr: "127.0.0.1:1".into(),
            resources: Default::default(),
            attributes: Default::default(),
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(run(
            vec![master.addr()],
            me,
            channels,
            reqwest::Client::new(),
            shutdown.clone(),
        ));
        shutdown.drop_guard()
    }

    /// A leader that holds a heartbeat unanswered does not hold the events
    /// behind it: a KILL sent meanwhile reaches the tasks at once, where it
    /// used to wait out the heartbeat's timeout (here 30 s, the interval).
    #[tokio::test]
    async fn events_are_read_while_a_heartbeat_waits_for_its_answer() {
        let mut master = FakeMaster::start(Duration::from_secs(30)).await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let tasks = tasks_with(dir.path(), Starter::open(), Duration::from_millis(10));
        let _stop = session_with(&master, tasks.clone(), Default::default());

        master.heartbeat_held().await;
        master.send(json!({"type": "KILL", "kill": {"task_id": "t1"}}));
        let reached = async {
            while !tasks.report().iter().any(|t| t.task_id == "t1") {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), reached)
            .await
            .expect("the KILL reached the tasks while the heartbeat was held");
    }

    /// A call the leader accepted stands for a heartbeat: while the status
    /// sender's calls are accepted more often than the interval, no beat
    /// goes; once they stop, the beats come back an interval later.
    #[tokio::test]
    async fn accepted_calls_stand_for_heartbeats() {
        let interval = Duration::from_millis(300);
        let mut master = FakeMaster::start(interval).await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let tasks = tasks_with(dir.path(), Starter::open(), Duration::from_millis(10));
        let contact = Arc::new(Contact::default());
        let _stop = session_with(&master, tasks, contact.clone());
        // The first beat goes on subscribing. The master's own heartbeat
        // events keep the stream from falling silent (three intervals).
        master.heartbeat_held().await;
        let busy_until = tokio::time::Instant::now() + interval * 6;
        while tokio::time::Instant::now() < busy_until {
            contact.accepted();
            master.send(json!({"type": "HEARTBEAT"}));
            tokio::time::sleep(interval / 6).await;
        }
        assert_eq!(master.heartbeats(), 1, "no beat while calls were accepted");
        for _ in 0..6 {
            master.send(json!({"type": "HEARTBEAT"}));
            tokio::time::sleep(interval / 2).await;
        }
        assert!(
            master.heartbeats() > 1,
            "the beats came back once the calls stopped"
        );
    }
}
