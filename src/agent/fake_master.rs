//! A master's agent API (`POST /api/v1/agent`) as the tests of an agent's
//! session need it, real and simulated: it answers SUBSCRIBE with a RecordIO
//! stream that the test writes to, holds every HEARTBEAT without answering
//! (a leader too busy to), and hands each UPDATE's body to the test.
//!
//! ```text
//!  agent ──SUBSCRIBE──▶ 200, stream: SUBSCRIBED{agent_id, interval}, then
//!                       whatever the test sends
//!        ──HEARTBEAT──▶ counted, never answered
//!        ──UPDATE─────▶ to the test, 202
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::api::recordio;

pub(crate) struct FakeMaster {
    addr: SocketAddr,
    shared: Arc<Shared>,
    heartbeats: watch::Receiver<usize>,
    updates: mpsc::UnboundedReceiver<Value>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    interval: Duration,
    stream: Mutex<Option<mpsc::UnboundedSender<Bytes>>>,
    heartbeats: watch::Sender<usize>,
    updates: mpsc::UnboundedSender<Value>,
}

impl FakeMaster {
    /// Listens on a port of 127.0.0.1; SUBSCRIBED names `interval` as the
    /// heartbeat interval.
    pub(crate) async fn start(interval: Duration) -> FakeMaster {
        let (heartbeats_tx, heartbeats) = watch::channel(0);
        let (updates_tx, updates) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            interval,
            stream: Mutex::new(None),
            heartbeats: heartbeats_tx,
            updates: updates_tx,
        });
        let app = axum::Router::new()
            .route("/api/v1/agent", post(call))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port on 127.0.0.1");
        let addr = listener.local_addr().expect("the port bound");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeMaster {
            addr,
            shared,
            heartbeats,
            updates,
            server,
        }
    }

    /// `host:port`, as a master address is given to an agent.
    pub(crate) fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Waits until a HEARTBEAT has arrived (and is being held).
    pub(crate) async fn heartbeat_held(&mut self) {
        let arrived = self.heartbeats.wait_for(|n| *n > 0);
        tokio::time::timeout(Duration::from_secs(30), arrived)
            .await
            .expect("a heartbeat within 30 s")
            .expect("the fake master runs");
    }

    /// HEARTBEATs arrived so far.
    pub(crate) fn heartbeats(&self) -> usize {
        *self.heartbeats.borrow()
    }

    /// Writes an event to the latest subscription's stream.
    pub(crate) fn send(&self, event: Value) {
        let stream = self.shared.stream.lock().expect("stream lock");
        let stream = stream.as_ref().expect("an agent subscribed");
        stream
            .send(recordio::encode(&event))
            .expect("the agent reads its stream");
    }

    /// The next UPDATE call's body, if one arrives within `wait`.
    pub(crate) async fn update_within(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.updates.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn call(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let call: Value = serde_json::from_slice(&body).unwrap_or_default();
    match call["type"].as_str() {
        Some("SUBSCRIBE") => {
            let (tx, rx) = mpsc::unbounded_channel();
            let subscribed = json!({"type": "SUBSCRIBED", "subscribed": {
                "agent_id": "fake-S1",
                "heartbeat_interval_seconds": shared.interval.as_secs_f64(),
            }});
            let _ = tx.send(recordio::encode(&subscribed));
            *shared.stream.lock().expect("stream lock") = Some(tx);
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                let chunk = rx.recv().await?;
                Some((Ok::<_, std::io::Error>(chunk), rx))
            });
            Body::from_stream(stream).into_response()
        }
        Some("HEARTBEAT") => {
            shared.heartbeats.send_modify(|n| *n += 1);
            std::future::pending::<()>().await;
            StatusCode::ACCEPTED.into_response()
        }
        Some("UPDATE") => {
            let _ = shared.updates.send(call);
            StatusCode::ACCEPTED.into_response()
        }
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}
