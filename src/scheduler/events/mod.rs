//! Marathon's event bus: `GET /v2/events` (server-sent events) and HTTP
//! callbacks, fed from the registry's changes.
//!
//! ```text
//!  registry apply (every master) ─▶ Change ─▶ publisher: render.rs turns each
//!     change into Marathon events, reading the applied registry
//!        ─▶ Bus (broadcast) ─▶ each /v2/events stream (sse.rs), filtered by event_type
//!                           ─▶ callbacks.rs, on the leader only: POST to each URL
//! ```
//!
//! The publisher renders only the event types someone listens for
//! (`listeners.rs`): nothing while no stream is attached and no callback URL
//! is set, only status updates while the one stream attached asks for them.
//!
//! Events come from the replicated changes, not from the leader's actions, so
//! every master serves the same stream and a client needs no redirect to the
//! leader (Marathon answered standbys' streams with a 302). As in Marathon,
//! events carry no delivery guarantee: a client that falls behind by more
//! than [`BUS_CAPACITY`] events misses some, and should treat events as cache
//! invalidation and read the API.

mod callbacks;
mod listeners;
mod marathon;
mod render;
mod sse;

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::master::Master;

use listeners::Listeners;
pub use listeners::{Listening, Wanted};
pub use sse::stream;

/// Events a slow stream may fall behind by before it misses some.
pub const BUS_CAPACITY: usize = 4096;

/// One event: its type, and its JSON on one line (what `data:` carries).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: String,
    pub json: String,
}

impl Event {
    /// Stamps `eventType` and `timestamp` into a JSON object.
    pub fn new(event_type: &str, mut body: serde_json::Value, time: f64) -> Self {
        if let Some(obj) = body.as_object_mut() {
            obj.insert("eventType".into(), event_type.into());
            obj.insert(
                "timestamp".into(),
                crate::scheduler::app::marathon_timestamp(time).into(),
            );
        }
        Self {
            event_type: event_type.to_string(),
            json: body.to_string(),
        }
    }
}

impl Event {
    /// As [`Event::new`], for a body that serializes to a JSON object,
    /// written straight to text: no `serde_json::Value` tree is built. What
    /// a deployment's events carry (every affected app, twice) made the tree
    /// the publisher's largest cost.
    pub fn of<T: Serialize>(event_type: &str, body: &T, time: f64) -> Self {
        let stamped = Stamped {
            body,
            event_type,
            timestamp: crate::scheduler::app::marathon_timestamp(time),
        };
        // Plain data into a String: only a map with non-string keys could
        // fail, and no event body has one.
        let json = serde_json::to_string(&stamped).unwrap_or_else(|e| {
            tracing::warn!(event_type, error = %e, "event not serializable; sent without its body");
            serde_json::json!({"eventType": event_type, "timestamp": stamped.timestamp}).to_string()
        });
        Self {
            event_type: event_type.to_string(),
            json,
        }
    }
}

/// An event's body with the two keys every event has.
#[derive(Serialize)]
struct Stamped<'a, T> {
    #[serde(flatten)]
    body: &'a T,
    #[serde(rename = "eventType")]
    event_type: &'a str,
    timestamp: String,
}

/// The events rendered from the registry's changes, and who listens for
/// which.
#[derive(Clone)]
pub struct Bus {
    sender: broadcast::Sender<Arc<Event>>,
    listeners: Arc<Listeners>,
}

impl Bus {
    /// A stream's receiver and its interest in `event_types` (every type
    /// when empty); keep both for as long as the stream lasts.
    pub fn listen(&self, event_types: &[String]) -> (broadcast::Receiver<Arc<Event>>, Listening) {
        (self.sender.subscribe(), self.listeners.listen(event_types))
    }
}

/// Starts the publisher (and the callback sender) for a master.
pub fn start(master: Arc<Master>, shutdown: CancellationToken) -> Bus {
    let (sender, _) = broadcast::channel(BUS_CAPACITY);
    let bus = Bus {
        sender,
        listeners: Arc::default(),
    };
    tokio::spawn(publish(master.clone(), bus.clone(), shutdown.clone()));
    tokio::spawn(callbacks::run(master, bus.sender.subscribe(), shutdown));
    bus
}

async fn publish(master: Arc<Master>, bus: Bus, shutdown: CancellationToken) {
    let mut changes = master.subscribe();
    loop {
        let change = tokio::select! {
            _ = shutdown.cancelled() => return,
            got = changes.recv() => match got {
                Ok(change) => change,
                Err(RecvError::Closed) => return,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event bus fell behind the registry; events lost");
                    continue;
                }
            },
        };
        let events = {
            let registry = master.registry();
            // A callback URL takes every event; otherwise what the streams
            // ask for. Nobody listening: rendering every change was a tenth
            // of a leader's CPU in a large deployment (BENCHMARKS.md, Scale)
            // with no one to read it.
            let wanted = if registry.marathon.subscriptions.is_empty() {
                bus.listeners.wanted()
            } else {
                Wanted::All
            };
            if wanted.nothing() {
                continue;
            }
            render::events(&registry, &change, crate::master::now_secs(), &wanted)
        };
        for event in events {
            // No subscriber is no error.
            let _ = bus.sender.send(Arc::new(event));
        }
    }
}
