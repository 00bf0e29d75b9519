//! Raft traffic between masters: one TCP stream per peer and direction, each a
//! sequence of length-delimited frames (4-byte big-endian length, then a
//! protobuf-encoded raft `Message`).
//!
//! ```text
//!  driver ──send(msgs)──▶ per-peer queue ──▶ writer task: feed every queued frame,
//!                                             then one flush (a batch per syscall)
//!  listener ──accept──▶ reader task per connection ──▶ driver inbox
//! ```
//!
//! Raft tolerates loss, so a full queue or a broken connection drops messages
//! instead of blocking the driver; the writer reconnects with a short backoff.
//! Each stream opens with a hello frame naming the protocol and the sender's id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use protobuf::Message as _;
use raft::prelude::Message;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

const HELLO: &[u8] = b"meso-raft/1";
const QUEUE: usize = 4096;
/// Large enough for a snapshot of a big registry.
const MAX_FRAME: usize = 512 * 1024 * 1024;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

/// (peer, delivered) for every snapshot message: raft-rs holds back appends to a
/// follower while its snapshot is in flight, until told how the send went. A
/// snapshot lost with a dying peer would otherwise stall that follower forever.
pub type SnapshotReports = mpsc::UnboundedSender<(u64, bool)>;

fn is_snapshot(m: &Message) -> bool {
    m.get_msg_type() == raft::prelude::MessageType::MsgSnapshot
}

fn report(reports: &SnapshotReports, peer: u64, msgs: &[Message], delivered: bool) {
    for _ in msgs.iter().filter(|m| is_snapshot(m)) {
        let _ = reports.send((peer, delivered));
    }
}

struct Inner {
    reports: SnapshotReports,
    /// The transport's own runtime (see `spawn_runtime`): writers run there,
    /// not on the driver's thread, which blocks on every fsync.
    runtime: tokio::runtime::Handle,
    self_id: u64,
    /// Our own Raft address, sent in every hello.
    self_addr: String,
    peers: Mutex<HashMap<u64, Peer>>,
    shutdown: CancellationToken,
}

struct Peer {
    addr: String,
    /// Given on this node's command line: the registry's (possibly older) record
    /// of the address must not override it, or a restarted cluster whose ports
    /// changed could never reach itself to elect the leader that records them.
    pinned: bool,
    queue: mpsc::Sender<Message>,
}

impl Transport {
    /// A transport whose connections live on `runtime` (from [`spawn_runtime`]).
    pub fn new(
        runtime: tokio::runtime::Handle,
        self_id: u64,
        self_addr: String,
        reports: SnapshotReports,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                reports,
                runtime,
                self_id,
                self_addr,
                peers: Mutex::new(HashMap::new()),
                shutdown,
            }),
        }
    }

    /// Points peer `id` at `addr` as the registry knows it, unless the command
    /// line pinned it elsewhere.
    pub fn set_peer(&self, id: u64, addr: &str) {
        self.point(id, addr, false);
    }

    /// Points peer `id` at `addr` for good: an address given by the operator.
    pub fn pin_peer(&self, id: u64, addr: &str) {
        self.point(id, addr, true);
    }

    fn point(&self, id: u64, addr: &str, pinned: bool) {
        if id == self.inner.self_id {
            return;
        }
        let mut peers = self.inner.peers.lock().expect("peer map lock");
        if let Some(p) = peers.get_mut(&id)
            && (p.addr == addr || (p.pinned && !pinned))
        {
            p.pinned |= pinned;
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        self.inner.runtime.spawn(write_loop(
            hello(self.inner.self_id, &self.inner.self_addr),
            (id, addr.to_string()),
            rx,
            self.inner.reports.clone(),
            self.inner.shutdown.clone(),
        ));
        // Replacing the entry drops the old sender, which ends the old writer.
        peers.insert(
            id,
            Peer {
                addr: addr.to_string(),
                pinned,
                queue: tx,
            },
        );
    }

    pub fn remove_peer(&self, id: u64) {
        self.inner.peers.lock().expect("peer map lock").remove(&id);
    }

    pub fn send(&self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        let peers = self.inner.peers.lock().expect("peer map lock");
        for m in msgs {
            if let Some(peer) = peers.get(&m.to) {
                // Full queue: the peer is slow or gone; Raft resends what matters.
                if let Err(e) = peer.queue.try_send(m) {
                    let m = e.into_inner();
                    report(&self.inner.reports, m.to, &[m], false);
                }
            }
        }
    }
}

/// `meso-raft/1`, the sender's id (8 bytes, big-endian), its Raft address.
fn hello(self_id: u64, self_addr: &str) -> Bytes {
    let mut hello = HELLO.to_vec();
    hello.extend_from_slice(&self_id.to_be_bytes());
    hello.extend_from_slice(self_addr.as_bytes());
    Bytes::from(hello)
}

fn parse_hello(frame: &[u8]) -> Option<(u64, String)> {
    let rest = frame.strip_prefix(HELLO)?;
    let id = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let addr = std::str::from_utf8(rest.get(8..)?).ok()?;
    Some((id, addr.to_string()))
}

async fn write_loop(
    hello: Bytes,
    (peer, addr): (u64, String),
    mut rx: mpsc::Receiver<Message>,
    reports: SnapshotReports,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(10);
    // A batch whose write failed is sent again once on the next connection: the
    // first write after a peer restarts lands in the dead socket and fails only
    // on the next one, and losing that batch (often a vote) costs an election.
    let mut unsent: Vec<Message> = Vec::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = TcpStream::connect(&addr) => s,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "raft peer not reachable");
                // Drop what queued up meanwhile: stale heartbeats help nobody.
                report(&reports, peer, &unsent, false);
                unsent.clear();
                while let Ok(m) = rx.try_recv() {
                    report(&reports, peer, &[m], false);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_millis(200));
                if rx.is_closed() {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        let _ = stream.set_nodelay(true);
        let (mut read_half, write_half) = stream.into_split();
        let mut frames = FramedWrite::new(write_half, codec());
        if frames.send(hello.clone()).await.is_err() {
            continue;
        }
        let mut probe = [0u8; 1];
        loop {
            let mut batch = std::mem::take(&mut unsent);
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    // The peer never writes on this stream: a read returning means
                    // it closed (it died or restarted). Reconnect now, before a
                    // message is lost in a dead socket.
                    _ = read_half.read(&mut probe) => {
                        tracing::debug!(%addr, "raft peer closed the stream; reconnecting");
                        break;
                    }
                    m = rx.recv() => match m {
                        Some(m) => batch.push(m),
                        None => return,
                    },
                }
            }
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            if let Err(e) = write_batch(&mut frames, &batch).await {
                tracing::debug!(%addr, error = %e, "raft stream broke; reconnecting");
                unsent = batch;
                break;
            }
            report(&reports, peer, &batch, true);
        }
    }
}

async fn write_batch(
    frames: &mut FramedWrite<tokio::net::tcp::OwnedWriteHalf, LengthDelimitedCodec>,
    batch: &[Message],
) -> std::io::Result<()> {
    for m in batch {
        match m.write_to_bytes() {
            Ok(bytes) => frames.feed(Bytes::from(bytes)).await?,
            Err(e) => tracing::error!(error = %e, "cannot encode raft message"),
        }
    }
    SinkExt::<Bytes>::flush(frames).await
}

/// A thread of its own with a one-thread runtime for the masters' traffic,
/// running until `shutdown`. On the node's runtime, a leader serving
/// thousands of agent streams queued its heartbeats and acks behind them;
/// late past an election timeout, it lost its quorum. A thread of its own is
/// scheduled by the kernel as soon as a frame arrives.
pub fn spawn_runtime(
    id: u64,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("raft-net-{id}"))
        .spawn(move || runtime.block_on(shutdown.cancelled()))?;
    Ok(handle)
}

/// Accepts peers' streams and feeds their messages to the driver's inbox, on
/// the transport's runtime. A peer's hello names its current Raft address, so
/// a master that restarted on a new port is reachable again at once, before
/// the registry learns of it (which needs that master to hear from the
/// leader first).
pub fn serve(
    transport: Transport,
    listener: TcpListener,
    inbox: mpsc::Sender<Message>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Registered again with the transport's runtime, not the node's.
    let listener = listener.into_std()?;
    let runtime = transport.inner.runtime.clone();
    runtime.spawn(async move {
        match TcpListener::from_std(listener) {
            Ok(listener) => accept_loop(transport, listener, inbox, shutdown).await,
            Err(e) => tracing::error!(error = %e, "cannot serve raft traffic"),
        }
    });
    Ok(())
}

async fn accept_loop(
    transport: Transport,
    listener: TcpListener,
    inbox: mpsc::Sender<Message>,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "raft accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let inbox = inbox.clone();
        let shutdown = shutdown.clone();
        let transport = transport.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(stream, codec());
            let hello = match frames.next().await {
                Some(Ok(h)) => parse_hello(&h),
                _ => None,
            };
            let Some((peer, peer_addr)) = hello else {
                tracing::warn!(%from, "dropped a raft connection without a meso hello");
                return;
            };
            if !peer_addr.is_empty() {
                transport.set_peer(peer, &peer_addr);
            }
            loop {
                let frame = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    f = frames.next() => f,
                };
                let Some(Ok(frame)) = frame else { return };
                match Message::parse_from_bytes(&frame) {
                    Ok(m) => {
                        if inbox.send(m).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%from, error = %e, "dropped a malformed raft frame");
                        return;
                    }
                }
            }
        });
    }
}
