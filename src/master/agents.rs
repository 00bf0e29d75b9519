//! The master's side of the agent protocol (`POST /api/v1/agent`), in the shape
//! of Mesos's v1 streaming APIs: JSON calls in, RecordIO events out.
//!
//! ```text
//!  agent ── SUBSCRIBE {key, hostname, addr, resources, attributes, tasks} ──▶ leader
//!        ◀─ 200, stream: SUBSCRIBED {agent_id, heartbeat_interval_seconds},
//!                        catch-up LAUNCH/KILL (tasks.rs), then LAUNCH, KILL as
//!                        they commit, HEARTBEAT every interval
//!  agent ── HEARTBEAT {agent_id} an interval after its last call ──▶ leader: last seen = now
//!  agent ── UPDATE {agent_id, update: {statuses}} ──▶ last seen = now; committed ──▶ 202 (the ack)
//!  leader: liveness loop ── silent past agent_timeout ──▶ MarkAgentUnreachable
//! ```
//!
//! Only the leader serves it; a follower answers 307 to the leader (as Mesos
//! does), because a stream cannot go through the buffering forwarder. When its
//! leadership ends, or it leads again in a later term, the leader closes
//! every stream and the agents resubscribe wherever the leader now is. "Last
//! seen" is the leader's soft state: a new leader starts every agent's clock
//! afresh, so a failover alone never marks an agent unreachable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Master;
use super::command::{Command, ReportedTask};
use super::registry::{Registry, Used};
use crate::api::error::{ApiError, parse_json, propose_error};
use crate::api::recordio;
use crate::model::{AgentState, PortRange, Resources, TaskStatus};

/// How often each side says it is alive, and how long the master waits.
#[derive(Debug, Clone, Copy)]
pub struct AgentTimers {
    pub heartbeat: Duration,
    pub timeout: Duration,
}

/// When the leader last heard from each agent.
#[derive(Default)]
pub struct Liveness {
    last_seen: Mutex<HashMap<String, Instant>>,
}

impl Liveness {
    fn seen(&self, id: &str) {
        let now = Instant::now();
        let mut last_seen = self.last_seen.lock().expect("liveness lock");
        // Every call of every agent comes here: no new key for a known one.
        match last_seen.get_mut(id) {
            Some(at) => *at = now,
            None => {
                last_seen.insert(id.to_string(), now);
            }
        }
    }
}

/// The event streams of the agents subscribed to this leader.
#[derive(Default)]
pub struct Streams {
    senders: Mutex<HashMap<String, mpsc::UnboundedSender<Bytes>>>,
}

impl Streams {
    /// A new stream for an agent; the one it had before ends.
    fn open(&self, agent_id: &str) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.senders
            .lock()
            .expect("streams lock")
            .insert(agent_id.to_string(), tx);
        rx
    }

    /// Queues an event on the agent's stream. False when it has none (the
    /// agent then gets what it needs when it subscribes again).
    pub fn send<T: serde::Serialize + ?Sized>(&self, agent_id: &str, event: &T) -> bool {
        let mut senders = self.senders.lock().expect("streams lock");
        let delivered = senders
            .get(agent_id)
            .is_some_and(|tx| tx.send(recordio::encode(event)).is_ok());
        if !delivered {
            senders.remove(agent_id);
        }
        delivered
    }
}

#[derive(Deserialize)]
struct Call {
    #[serde(rename = "type")]
    kind: String,
    subscribe: Option<Subscribe>,
    agent_id: Option<String>,
    update: Option<Update>,
}

#[derive(Deserialize)]
struct Update {
    statuses: Vec<TaskStatus>,
}

#[derive(Deserialize)]
struct Subscribe {
    key: String,
    hostname: String,
    addr: String,
    resources: Resources,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    tasks: Vec<ReportedTask>,
}

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn not_registered(id: &str) -> ApiError {
    ApiError::not_found(format!("agent {id} is not registered; subscribe again"))
}

pub async fn call(State(master): State<Arc<Master>>, body: Bytes) -> Result<Response, ApiError> {
    if !master.status().is_leader {
        return Ok(match master.leader_http() {
            Some(leader) => (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, format!("//{leader}/api/v1/agent"))],
            )
                .into_response(),
            None => ApiError::unavailable("No leader elected").into_response(),
        });
    }
    let call: Call = parse_json(&body, "")?;
    match call.kind.as_str() {
        "SUBSCRIBE" => {
            let s = call
                .subscribe
                .ok_or_else(|| ApiError::bad_request("subscribe: missing"))?;
            subscribe(master, s).await
        }
        "HEARTBEAT" => {
            let id = call
                .agent_id
                .ok_or_else(|| ApiError::bad_request("agent_id: missing"))?;
            // An agent marked unreachable meanwhile must subscribe again, so
            // that its tasks are reconciled.
            if !master
                .registry()
                .agents
                .get(&id)
                .is_some_and(|a| a.state == AgentState::Active)
            {
                return Err(not_registered(&id));
            }
            master.liveness.seen(&id);
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "UPDATE" => {
            let id = call
                .agent_id
                .ok_or_else(|| ApiError::bad_request("agent_id: missing"))?;
            let update = call
                .update
                .ok_or_else(|| ApiError::bad_request("update: missing"))?;
            // A new leader that has not applied an entry of its own term may
            // not yet hold the launches the statuses are about: "unknown
            // task, nothing to do" would acknowledge what it then never records.
            if !master.status().caught_up {
                return Err(ApiError::unavailable(
                    "the leader is catching up; send the update again",
                ));
            }
            let registered = |master: &Master| {
                master
                    .registry()
                    .agents
                    .get(&id)
                    .is_some_and(|a| a.state == AgentState::Active)
            };
            if !registered(&master) {
                return Err(not_registered(&id));
            }
            master.liveness.seen(&id);
            master.update_statuses(&id, update.statuses).await?;
            // Marked unreachable while the statuses waited: the registry
            // ignored them, so they are not acknowledged either.
            if !registered(&master) {
                return Err(not_registered(&id));
            }
            Ok(StatusCode::ACCEPTED.into_response())
        }
        other => Err(ApiError::bad_request(format!(
            "type: unsupported call type '{other}'"
        ))),
    }
}

async fn subscribe(master: Arc<Master>, s: Subscribe) -> Result<Response, ApiError> {
    if s.key.trim().is_empty() {
        return Err(ApiError::bad_request("subscribe.key: must not be empty"));
    }
    if let Some(gone) = master
        .registry()
        .agent_by_key(&s.key)
        .filter(|a| a.state == AgentState::Gone)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "agent {} was marked gone; start it with a new work dir",
                gone.id
            ),
        ));
    }
    let reported = s.tasks.clone();
    master
        .raft
        .propose(Command::RegisterAgent {
            key: s.key.clone(),
            hostname: s.hostname,
            addr: s.addr,
            resources: s.resources,
            attributes: s.attributes,
            time: now_secs(),
            tasks: s.tasks,
        })
        .await
        .map_err(propose_error)?;
    let id = master
        .registry()
        .agent_by_key(&s.key)
        .map(|a| a.id.clone())
        .ok_or_else(|| ApiError::unavailable("the registration did not apply; retry"))?;
    master.liveness.seen(&id);
    let interval = master.agent_timers.heartbeat;
    let mut first = recordio::encode(&json!({
        "type": "SUBSCRIBED",
        "subscribed": {"agent_id": id, "heartbeat_interval_seconds": interval.as_secs_f64()},
    }))
    .to_vec();
    // Open the stream before reading the registry: an event committed from
    // here on is either in the catch-up or sent on this stream (maybe both:
    // the agent ignores a LAUNCH it has and a KILL of what has ended).
    let events = master.streams.open(&id);
    // The term whose leadership this stream belongs to (see event_stream).
    let term = master.status().term;
    for event in super::tasks::catch_up(&master.registry(), &id, &reported) {
        first.extend_from_slice(&recordio::encode(&event));
    }
    let stream = event_stream(
        Bytes::from(first),
        events,
        interval,
        term,
        master.raft.watch(),
        master.shutdown.clone(),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/recordio")
        .header("Message-Content-Type", "application/json")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The most bytes of queued events one write of a stream carries.
const MAX_BATCH: usize = 256 * 1024;

/// The event stream: SUBSCRIBED (and the catch-up), then events as they are
/// queued and a HEARTBEAT each quiet interval, until this master stops leading
/// in `term`, shuts down, or the agent subscribes again elsewhere.
///
/// A master that loses its leadership and wins it back between two writes
/// leads in another term: the stream ends all the same. In between another
/// leader may have committed launches that their proposer could not send
/// (its proposal's answer was lost with its term); the agent's new
/// subscription is what sends them (`tasks::catch_up`). A 10,000-agent
/// deployment whose leader lost its quorum twice (an experiment with rounds
/// of 25,000 launches) left 11,694 of 100,000 tasks STAGING for minutes;
/// a stream kept across a re-election is a way that happens.
fn event_stream(
    first: Bytes,
    events: mpsc::UnboundedReceiver<Bytes>,
    interval: Duration,
    term: u64,
    status: tokio::sync::watch::Receiver<super::raft::RaftStatus>,
    shutdown: CancellationToken,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let heartbeat = recordio::encode(&json!({"type": "HEARTBEAT"}));
    futures::stream::unfold(
        (Some(first), events, status),
        move |(next, mut events, mut status)| {
            let (heartbeat, shutdown) = (heartbeat.clone(), shutdown.clone());
            async move {
                if let Some(first) = next {
                    return Some((Ok(first), (None, events, status)));
                }
                let mut chunk = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    event = events.recv() => event?,
                    _ = tokio::time::sleep(interval) => heartbeat,
                };
                // What else is queued goes out in the same write: a batch of
                // launches for one agent was a write (and a chunk) per task,
                // a third of a leader's HTTP time in a large deployment.
                if let Ok(next) = events.try_recv() {
                    let mut batch = bytes::BytesMut::from(&chunk[..]);
                    batch.extend_from_slice(&next);
                    while batch.len() < MAX_BATCH
                        && let Ok(next) = events.try_recv()
                    {
                        batch.extend_from_slice(&next);
                    }
                    chunk = batch.freeze();
                }
                let now = status.borrow_and_update();
                if !now.is_leader || now.term != term {
                    return None;
                }
                drop(now);
                Some((Ok(chunk), (None, events, status)))
            }
        },
    )
}

/// The leader's watch over agents: every agent silent for longer than the
/// timeout is marked unreachable, one proposal at a time.
pub async fn liveness_loop(master: Arc<Master>, shutdown: CancellationToken) {
    let mut was_leader = false;
    let tick =
        (master.agent_timers.timeout / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let leads = master.status().is_leader;
        if !leads {
            was_leader = false;
            continue;
        }
        let now = Instant::now();
        let active: Vec<String> = master
            .registry()
            .agents
            .values()
            .filter(|a| a.state == AgentState::Active)
            .map(|a| a.id.clone())
            .collect();
        let silent: Vec<String> = {
            let mut seen = master.liveness.last_seen.lock().expect("liveness lock");
            if !was_leader {
                // A new leader: every agent's clock starts now.
                seen.clear();
            }
            active
                .into_iter()
                .filter(|id| {
                    now.duration_since(*seen.entry(id.clone()).or_insert(now))
                        > master.agent_timers.timeout
                })
                .collect()
        };
        was_leader = true;
        tracing::trace!(silent = silent.len(), "agent liveness check");
        for id in silent {
            tracing::warn!(agent = %id, "agent silent past its timeout; marking it unreachable");
            let cmd = Command::MarkAgentUnreachable {
                id,
                time: now_secs(),
            };
            if let Err(e) = master.raft.propose(cmd).await {
                tracing::debug!(error = %e, "could not mark an agent unreachable yet");
            }
        }
    }
}

/// `/master/state`'s `slaves[]`, one entry per agent, with what its tasks
/// hold from the registry's index (a scan of every task for each agent took
/// `/master/slaves` to 370 ms at 1,000 agents and 10,000 tasks).
pub fn agents_json(registry: &Registry) -> Vec<Value> {
    let usage = registry.agent_usage();
    registry
        .agents
        .values()
        .map(|a| {
            let used = usage
                .get(a.id.as_str())
                .map(used_resources)
                .unwrap_or_default();
            agent_json(a, used)
        })
        .collect()
}

/// One agent's `slaves[]` entry; `used` is what its live tasks hold.
fn agent_json(a: &crate::model::AgentInfo, used: Resources) -> Value {
    let free = Resources {
        cpus: (a.resources.cpus - used.cpus).max(0.0),
        mem: (a.resources.mem - used.mem).max(0.0),
        disk: (a.resources.disk - used.disk).max(0.0),
        ports: a.resources.ports.clone(),
    };
    let port = a
        .addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(0);
    let mut v = json!({
        "id": a.id,
        "hostname": a.hostname,
        "port": port,
        "pid": format!("slave(1)@{}", a.addr),
        "attributes": a.attributes,
        "resources": a.resources.to_mesos_json(),
        "used_resources": used.to_mesos_json(),
        "offered_resources": Resources::default().to_mesos_json(),
        "reserved_resources": {},
        "unreserved_resources": a.resources.to_mesos_json(),
        "available_resources": free.to_mesos_json(),
        "registered_time": a.registered_time,
        "active": a.state == AgentState::Active,
        "deactivated": false,
        "version": super::MESOS_API_VERSION,
        "capabilities": [],
    });
    if let Some(t) = a.reregistered_time {
        v["reregistered_time"] = json!(t);
    }
    v
}

/// What an agent's live tasks hold, each host port a one-port range.
fn used_resources(used: &Used) -> Resources {
    Resources {
        cpus: used.cpus(),
        mem: used.mem(),
        disk: used.disk(),
        ports: used
            .ports
            .iter()
            .map(|&p| PortRange {
                begin: u64::from(p),
                end: u64::from(p),
            })
            .collect(),
    }
}

pub async fn slaves(State(master): State<Arc<Master>>) -> Json<Value> {
    let slaves = agents_json(&master.registry());
    Json(json!({"slaves": slaves, "recovered_slaves": []}))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Bytes;
    use futures::StreamExt;
    use tokio::sync::{mpsc, watch};
    use tokio_util::sync::CancellationToken;

    use super::event_stream;
    use crate::master::raft::RaftStatus;

    fn leading(term: u64) -> RaftStatus {
        RaftStatus {
            is_leader: true,
            term,
            ..Default::default()
        }
    }

    /// A stream ends when its master stops leading, and when it leads again
    /// in a later term: the agent must subscribe anew to hear what another
    /// leader committed in between.
    #[tokio::test]
    async fn a_stream_ends_with_the_term_it_was_opened_in() {
        for (later, ends) in [
            (leading(2), false),
            (leading(3), true),
            (RaftStatus::default(), true),
        ] {
            let (status_tx, status) = watch::channel(leading(2));
            let (events_tx, events) = mpsc::unbounded_channel();
            let stream = event_stream(
                Bytes::from_static(b"first"),
                events,
                Duration::from_secs(3600),
                2,
                status,
                CancellationToken::new(),
            );
            let mut stream = std::pin::pin!(stream);
            let first = stream
                .next()
                .await
                .expect("the first chunk")
                .expect("bytes");
            assert_eq!(&first[..], b"first");
            status_tx.send_replace(later.clone());
            events_tx
                .send(Bytes::from_static(b"launch"))
                .expect("the stream is open");
            let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("an answer at once");
            assert_eq!(next.is_none(), ends, "{later:?}");
        }
    }
}
