//! Answers one query, as Mesos-DNS does (`resolver/resolver.go`):
//!
//! ```text
//!  query ─▶ in the domain? ── yes ─▶ records of the zone (read lock, cloned)
//!                            │        A, AAAA: answers; SRV: answers + the
//!                            │        targets' addresses (additional);
//!                            │        SOA, NS: in the authority section;
//!                            │        ANY: SRV + A + AAAA, SOA + NS;
//!                            │        nothing: NXDOMAIN + SOA, or NOERROR +
//!                            │        SOA when the name has other types
//!                            └ no ──▶ upstream, the client's bytes as they came
//!                                     (none configured: REFUSED; none
//!                                     answering: SERVFAIL)
//! ```
//!
//! Answers are shuffled; AA and RA are set. Truncation (TC) to 512 bytes, or
//! the client's EDNS size, is the encoder's. A message that does not parse
//! gets FORMERR (udp.rs, or hickory's server for TCP); one with other than
//! one question gets FORMERR here.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use rand::seq::SliceRandom;

use super::forward::{Forwarder, Transport};
use super::zone::Zone;

/// The largest UDP answer we send, whatever the client offers.
const MAX_UDP_PAYLOAD: u16 = 4096;

pub struct Handler {
    pub zone: Arc<RwLock<Zone>>,
    pub forwarder: Forwarder,
}

/// What goes in each section of an answer from the zone.
#[derive(Debug, Default)]
pub struct Answer {
    pub code: ResponseCode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

/// The zone's answer to `name` (lower case, fully qualified) of `qtype`.
pub fn answer(zone: &Zone, name: &str, qtype: RecordType) -> Answer {
    let mut out = Answer::default();
    match qtype {
        RecordType::A | RecordType::AAAA => out.answers = zone.lookup(name, qtype),
        RecordType::SRV => {
            out.answers = zone.lookup(name, RecordType::SRV);
            out.additional = target_addresses(zone, &out.answers);
        }
        RecordType::SOA => out.authority.push(zone.soa().clone()),
        RecordType::NS => out.authority.push(zone.ns().clone()),
        RecordType::ANY => {
            for t in [RecordType::SRV, RecordType::A, RecordType::AAAA] {
                out.answers.extend(zone.lookup(name, t));
            }
            if out.answers.is_empty() && !zone.exists(name) {
                out.code = ResponseCode::NXDomain;
            }
            out.authority.push(zone.soa().clone());
            out.authority.push(zone.ns().clone());
        }
        _ => {}
    }
    if out.answers.is_empty() && out.authority.is_empty() {
        out.authority.push(zone.soa().clone());
        if !zone.exists(name) {
            out.code = ResponseCode::NXDomain;
        }
    }
    out.answers.shuffle(&mut rand::rng());
    out
}

/// One A and one AAAA record of each SRV target, for the additional section.
fn target_addresses(zone: &Zone, srvs: &[Record]) -> Vec<Record> {
    let targets: BTreeSet<String> = srvs
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.target.to_ascii().to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    targets
        .iter()
        .flat_map(|t| {
            [RecordType::A, RecordType::AAAA]
                .into_iter()
                .filter_map(|rtype| zone.lookup(t, rtype).into_iter().next())
        })
        .collect()
}

/// A query name as the zone keys it: lower case, with the trailing dot.
pub fn key(name: &str) -> String {
    let mut key = name.to_ascii_lowercase();
    if !key.ends_with('.') {
        key.push('.');
    }
    key
}

/// What a query gets: a message (to encode within the size, in bytes, the
/// client can take over UDP), or a trip upstream.
pub enum Reply {
    Message(Message, u16),
    Forward,
}

/// The answer to a parsed query, or Forward for a name outside the domain.
pub fn respond(handler: &Handler, request: &Message) -> Reply {
    let edns = answer_edns(request);
    let max = edns.as_ref().map_or(512, Edns::max_payload);
    let mut out = Message::response(request.metadata.id, request.metadata.op_code);
    out.metadata = Metadata::response_from_request(&request.metadata);
    out.queries = request.queries.clone();
    if let Some(edns) = edns {
        out.set_edns(edns);
    }
    if request.metadata.op_code != OpCode::Query
        || request.metadata.message_type != MessageType::Query
    {
        out.metadata.response_code = ResponseCode::NotImp;
        return Reply::Message(out, max);
    }
    let [query] = request.queries.as_slice() else {
        out.metadata.response_code = ResponseCode::FormErr;
        return Reply::Message(out, max);
    };
    let name = key(&query.name().to_ascii());
    let found = {
        let zone = handler.zone.read().unwrap_or_else(|e| e.into_inner());
        zone.contains(&name)
            .then(|| answer(&zone, &name, query.query_type()))
    };
    let Some(found) = found else {
        return Reply::Forward;
    };
    out.metadata.authoritative = true;
    out.metadata.recursion_available = true;
    out.metadata.response_code = found.code;
    out.answers = found.answers;
    out.authorities = found.authority;
    out.additionals = found.additional;
    Reply::Message(out, max)
}

/// The OPT record of an answer to a client that sent one: our size, within
/// what it offers.
fn answer_edns(request: &Message) -> Option<Edns> {
    request.edns.as_ref().map(|asked| {
        let mut edns = Edns::new();
        edns.set_max_payload(asked.max_payload().clamp(512, MAX_UDP_PAYLOAD));
        edns.set_version(0);
        edns
    })
}

impl Handler {
    /// Relays `raw` (the query's bytes as they came) to an upstream over
    /// `transport`: its answer under the query's id, REFUSED when there is
    /// no upstream, SERVFAIL when none answers.
    pub async fn relay(
        &self,
        request: &Message,
        raw: &[u8],
        transport: Transport,
    ) -> (Message, u16) {
        let edns = answer_edns(request);
        let max = edns.as_ref().map_or(512, Edns::max_payload);
        let failed = |code| {
            let mut out = Message::response(request.metadata.id, request.metadata.op_code);
            out.metadata = Metadata::response_from_request(&request.metadata);
            out.metadata.response_code = code;
            out.queries = request.queries.clone();
            if let Some(edns) = edns.clone() {
                out.set_edns(edns);
            }
            (out, max)
        };
        if self.forwarder.resolvers.is_empty() {
            return failed(ResponseCode::Refused);
        }
        let upstream = self
            .forwarder
            .exchange(raw, transport)
            .await
            .and_then(|bytes| Message::from_vec(&bytes).ok());
        let Some(mut upstream) = upstream else {
            return failed(ResponseCode::ServFail);
        };
        upstream.metadata.id = request.metadata.id;
        if upstream.edns.is_none() {
            upstream.edns = edns;
        }
        (upstream, max)
    }
}

/// TCP (UDP has its own loop, udp.rs): hickory's server frames the
/// messages; the answers are [`respond`]'s and [`Handler::relay`]'s.
#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let Ok(parsed) = Message::from_vec(request.as_slice()) else {
            let builder = MessageResponseBuilder::new(&request.queries, None);
            let message = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return send(response, message, request).await;
        };
        let answer = match respond(self, &parsed) {
            Reply::Message(message, _) => message,
            Reply::Forward => {
                let transport = match request.protocol() {
                    Protocol::Udp => Transport::Udp,
                    _ => Transport::Tcp,
                };
                self.relay(&parsed, request.as_slice(), transport).await.0
            }
        };
        let builder = MessageResponseBuilder::new(&request.queries, answer.edns.as_ref());
        let message = builder.build(
            answer.metadata,
            answer.answers.iter(),
            answer.authorities.iter(),
            None.iter(),
            answer.additionals.iter(),
        );
        send(response, message, request).await
    }
}

async fn send<'a, R: ResponseHandler>(
    mut response: R,
    message: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match response.send_response(message).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, src = %request.src(), "cannot send a DNS answer");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}
