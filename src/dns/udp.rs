//! DNS over UDP, answered on a thread per socket (the sockets share the port,
//! and the kernel spreads clients over them), without the async server that
//! serves TCP: a UDP query is one packet in and one out, and going through a
//! task, a request object and a response builder cost more than the answer.
//!
//! ```text
//!  recv ─▶ one question (and a bare EDNS record, or none), asked before
//!          since the zone last changed? ─▶ the answer encoded then, with the id, the RD and CD
//!          flags and the question (as the client spelled it) put in ─▶ send
//!       └ else ─▶ parse (hickory-proto) ─▶ handler::respond ─▶ encoded within
//!                 the client's size (TC when cut) ─▶ send; kept for next time
//!                 unless cut
//!                 └ outside the domain ─▶ forwarded on the DNS runtime
//! ```
//!
//! Each thread keeps its own answers, so no lock is taken per query; the
//! zone's generation (bumped on every change) tells a thread when to drop
//! them.
//!
//! Answers are shuffled (handler.rs), so a name with several records is kept
//! as one shuffled order and each query gets one of its rotations, drawn at
//! random and encoded the first time it is drawn: every record comes first
//! equally often, which is what clients that take the first record (most of
//! them) spread on. The other orders come back when the zone changes. Before
//! this, such names were answered anew every time: an SRV query of a
//! 10-instance app, with the targets' addresses, was two thirds of the
//! responder's CPU in the DNS benchmark.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use tokio_util::sync::CancellationToken;

use super::forward::Transport;
use super::handler::{self, Handler, Reply};

/// What a packet gets.
enum Outcome {
    Bytes(Vec<u8>),
    Forward,
}

/// How often a thread blocked on its socket looks at the stop token.
const STOP_CHECK: Duration = Duration::from_millis(250);
/// Answers kept per thread, at most: past it, they are dropped and kept anew.
const KEPT: usize = 65_536;
/// Names with more records than this are answered anew every time (their
/// rotations would be as many encodings, each as long as the answer).
const MAX_ROTATIONS: usize = 64;
/// A DNS header's size, and where the question starts.
const HEADER: usize = 12;

/// Answers the queries that come to `socket` until `stop`.
pub fn serve(
    socket: UdpSocket,
    handler: Arc<Handler>,
    generation: Arc<AtomicU64>,
    runtime: tokio::runtime::Handle,
    stop: CancellationToken,
) {
    if let Err(e) = socket.set_read_timeout(Some(STOP_CHECK)) {
        tracing::error!(error = %e, "DNS: cannot set a UDP socket's timeout");
        return;
    }
    let mut kept = Kept::default();
    let mut buf = vec![0u8; 65_535];
    while !stop.is_cancelled() {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "DNS: UDP receive failed");
                continue;
            }
        };
        let query = &buf[..n];
        kept.follow(generation.load(Ordering::Acquire));
        let answer = match kept.answer(query) {
            Some(answer) => answer,
            None => match answer_anew(&handler, query, &mut kept) {
                Some(Outcome::Bytes(bytes)) => bytes,
                Some(Outcome::Forward) => {
                    forward(&handler, &socket, &runtime, query, peer);
                    continue;
                }
                None => continue,
            },
        };
        if let Err(e) = socket.send_to(&answer, peer) {
            tracing::debug!(error = %e, %peer, "DNS: cannot send a UDP answer");
        }
    }
}

/// Parses, answers and encodes a query; keeps the answer when it can serve
/// again. None for a packet to drop (too short, or not a query).
fn answer_anew(handler: &Handler, query: &[u8], kept: &mut Kept) -> Option<Outcome> {
    if query.len() < HEADER || query[2] & 0x80 != 0 {
        // No header to answer to, or a response: never answered (no loops).
        return None;
    }
    let request = match Message::from_vec(query) {
        Ok(request) => request,
        Err(_) => {
            let id = u16::from_be_bytes([query[0], query[1]]);
            let op = OpCode::from_u8((query[2] >> 3) & 0x0f);
            let error = Message::error_msg(id, op, ResponseCode::FormErr);
            return encode(&error, 512).map(Outcome::Bytes);
        }
    };
    let Reply::Message(message, max) = handler::respond(handler, &request) else {
        return Some(Outcome::Forward);
    };
    let bytes = encode(&message, max)?;
    if let Some((key, _)) = key_of(query)
        && !truncated(&bytes)
    {
        let answers = message.answers.len();
        if answers <= 1 {
            kept.keep(key, KeptAnswer::One(bytes.clone()));
        } else if answers <= MAX_ROTATIONS {
            let mut encoded = vec![None; answers];
            encoded[0] = Some(bytes.clone());
            let message = Box::new(message);
            kept.keep(
                key,
                KeptAnswer::Rotations {
                    message,
                    max,
                    encoded,
                },
            );
        }
    }
    Some(Outcome::Bytes(bytes))
}

/// Whether an encoded answer was cut to the client's size (TC).
fn truncated(bytes: &[u8]) -> bool {
    bytes.get(2).is_some_and(|flags| flags & 0x02 != 0)
}

/// The message's bytes, cut to `max` (TC set) when longer.
fn encode(message: &Message, max: u16) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max);
    match message.emit(&mut encoder) {
        Ok(()) => Some(bytes),
        Err(e) => {
            tracing::debug!(error = %e, "DNS: cannot encode an answer");
            None
        }
    }
}

/// A standard query's key for a kept answer, and where its question ends:
/// the question (lower case), and for a query with EDNS the OPT record's
/// size and flags (the answer's OPT follows them). Only for one question and
/// nothing else but a bare OPT (version 0, no options).
fn key_of(query: &[u8]) -> Option<(Vec<u8>, usize)> {
    let counts = query.get(4..HEADER)?;
    // QR (a response) and the opcode (QUERY is 0) are the flags' top 5 bits.
    if query[2] & 0xf8 != 0 || counts[..6] != [0, 1, 0, 0, 0, 0] {
        return None;
    }
    // The name's labels, then type and class; no compression in a question.
    let mut at = HEADER;
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    let question_end = at + 1 + 4;
    let mut key = query.get(HEADER..question_end)?.to_ascii_lowercase();
    match (&counts[6..], query.get(question_end..)?) {
        ([0, 0], []) => {}
        // Root name, type OPT (41), size, extended rcode, version 0, flags,
        // no options.
        ([0, 1], [0, 0, 41, size @ .., _rcode, 0, f1, f2, 0, 0]) if size.len() == 2 => {
            key.extend_from_slice(size);
            key.extend_from_slice(&[*f1, *f2]);
        }
        _ => return None,
    }
    Some((key, question_end))
}

/// One thread's answers, by question, for the zone's generation they were
/// made in.
#[derive(Default)]
struct Kept {
    generation: u64,
    answers: HashMap<Vec<u8>, KeptAnswer>,
}

/// What is kept of one question's answer.
enum KeptAnswer {
    /// At most one record: one encoding.
    One(Vec<u8>),
    /// Several: a shuffled order, and the encoding of each rotation of it
    /// drawn so far (rotation 0 is the order itself).
    Rotations {
        message: Box<Message>,
        max: u16,
        encoded: Vec<Option<Vec<u8>>>,
    },
}

impl KeptAnswer {
    /// The bytes to send, one rotation drawn at random when there are several.
    fn draw(&mut self) -> Option<Vec<u8>> {
        let (message, max, encoded) = match self {
            KeptAnswer::One(bytes) => return Some(bytes.clone()),
            KeptAnswer::Rotations {
                message,
                max,
                encoded,
            } => (message, *max, encoded),
        };
        let k = rand::random_range(0..encoded.len());
        if let Some(bytes) = &encoded[k] {
            return Some(bytes.clone());
        }
        let mut rotated = (**message).clone();
        rotated.answers.rotate_left(k);
        let bytes = encode(&rotated, max)?;
        // Names compress differently in another order: one that no longer
        // fits is sent cut, and not kept.
        if !truncated(&bytes) {
            encoded[k] = Some(bytes.clone());
        }
        Some(bytes)
    }
}

impl Kept {
    fn follow(&mut self, generation: u64) {
        if generation != self.generation {
            self.answers.clear();
            self.generation = generation;
        }
    }

    fn keep(&mut self, key: Vec<u8>, answer: KeptAnswer) {
        if self.answers.len() >= KEPT {
            self.answers.clear();
        }
        self.answers.insert(key, answer);
    }

    /// The kept answer to `query`, made its own: the id, the RD and CD flags
    /// and the question's spelling (resolvers check it) are the query's.
    fn answer(&mut self, query: &[u8]) -> Option<Vec<u8>> {
        let (key, question_end) = key_of(query)?;
        let mut answer = self.answers.get_mut(&key)?.draw()?;
        answer[..2].copy_from_slice(&query[..2]);
        answer[2] = (answer[2] & !0x01) | (query[2] & 0x01);
        answer[3] = (answer[3] & !0x10) | (query[3] & 0x10);
        answer[HEADER..question_end].copy_from_slice(&query[HEADER..question_end]);
        Some(answer)
    }
}

/// Relays a query for a name outside the domain, on the DNS runtime; the
/// answer goes back through a clone of the socket it came on.
fn forward(
    handler: &Arc<Handler>,
    socket: &UdpSocket,
    runtime: &tokio::runtime::Handle,
    query: &[u8],
    peer: SocketAddr,
) {
    let Ok(socket) = socket.try_clone() else {
        return;
    };
    let (handler, query) = (handler.clone(), query.to_vec());
    runtime.spawn(async move {
        let Ok(request) = Message::from_vec(&query) else {
            return;
        };
        let (message, max) = handler.relay(&request, &query, Transport::Udp).await;
        if let Some(bytes) = encode(&message, max) {
            let _ = socket.send_to(&bytes, peer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, Query};
    use hickory_proto::rr::{Name, RecordType};

    fn query(name: &str, id: u16) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    #[test]
    fn a_kept_answer_takes_the_querys_id_flags_and_spelling() {
        let first = query("web.marathon.mesos.", 1);
        let (key, _) = key_of(&first).expect("a plain question");
        let mut answer = first.clone();
        answer[2] |= 0x80 | 0x04; // QR, AA
        answer[2] &= !0x01; // RD off in what was kept
        let mut kept = Kept::default();
        kept.keep(key, KeptAnswer::One(answer));
        let again = query("Web.Marathon.MESOS.", 77);
        let got = kept.answer(&again).expect("kept");
        assert_eq!(u16::from_be_bytes([got[0], got[1]]), 77);
        assert_eq!(got[2] & 0x01, 0x01, "RD as asked");
        assert_eq!(got[2] & 0x84, 0x84, "QR and AA as answered");
        let parsed = Message::from_vec(&got).expect("parses");
        assert_eq!(parsed.queries[0].name().to_ascii(), "Web.Marathon.MESOS.");
        kept.follow(1);
        assert!(
            kept.answer(&again).is_none(),
            "a change drops what was kept"
        );
    }

    #[test]
    fn several_answers_are_kept_as_rotations_each_first_as_often() {
        use hickory_proto::rr::{RData, Record, rdata::A};
        let ask = query("web.marathon.mesos.", 1);
        let (key, _) = key_of(&ask).expect("a plain question");
        let mut message = Message::from_vec(&ask).unwrap();
        message.metadata.message_type = MessageType::Response;
        let name = Name::from_ascii("web.marathon.mesos.").unwrap();
        for last in 1..=3u8 {
            let ip = A::new(10, 0, 0, last);
            message
                .answers
                .push(Record::from_rdata(name.clone(), 60, RData::A(ip)));
        }
        let base = encode(&message, 512).unwrap();
        let mut kept = Kept::default();
        let mut encoded = vec![None; 3];
        encoded[0] = Some(base);
        let message = Box::new(message);
        kept.keep(
            key,
            KeptAnswer::Rotations {
                message,
                max: 512,
                encoded,
            },
        );
        let mut first = std::collections::BTreeMap::new();
        for id in 0..300u16 {
            let got = kept
                .answer(&query("web.marathon.mesos.", id))
                .expect("kept");
            let parsed = Message::from_vec(&got).expect("parses");
            assert_eq!(parsed.metadata.id, id);
            assert_eq!(parsed.answers.len(), 3);
            let ips: std::collections::BTreeSet<String> =
                parsed.answers.iter().map(|r| r.data.to_string()).collect();
            assert_eq!(ips.len(), 3, "every record, once: {ips:?}");
            *first.entry(parsed.answers[0].data.to_string()).or_insert(0) += 1;
        }
        assert_eq!(first.len(), 3, "each record comes first: {first:?}");
        assert!(
            first.values().all(|&n| n > 50),
            "about a third each: {first:?}"
        );
    }

    #[test]
    fn keys_tell_apart_what_changes_the_answer() {
        let plain = key_of(&query("a.mesos.", 1)).expect("plain").0;
        let with_edns = |size: u16| {
            let mut m = Message::new(1, MessageType::Query, OpCode::Query);
            m.add_query(Query::query(
                Name::from_ascii("a.mesos.").unwrap(),
                RecordType::A,
            ));
            let mut edns = hickory_proto::op::Edns::new();
            edns.set_max_payload(size);
            m.set_edns(edns);
            m.to_vec().unwrap()
        };
        let big = key_of(&with_edns(4096)).expect("a bare OPT is kept").0;
        let small = key_of(&with_edns(1232)).expect("a bare OPT is kept").0;
        assert!(plain != big && big != small);
        assert_eq!(key_of(&query("A.Mesos.", 9)).map(|k| k.0), Some(plain));
        let mut trailing = query("a.mesos.", 1);
        trailing.push(0);
        assert!(key_of(&trailing).is_none());
        let mut response = query("a.mesos.", 1);
        response[2] |= 0x80;
        assert!(key_of(&response).is_none());
        assert!(key_of(&[0u8; 5]).is_none());
    }
}
