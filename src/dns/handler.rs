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
//! gets FORMERR from hickory's server before it reaches here; one with other
//! than one question gets FORMERR here.

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

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            edns
        });
        if request.metadata.op_code != OpCode::Query
            || request.metadata.message_type != MessageType::Query
        {
            return error(request, ResponseCode::NotImp, edns.as_ref(), response).await;
        }
        let Ok(info) = request.request_info() else {
            return error(request, ResponseCode::FormErr, edns.as_ref(), response).await;
        };
        let name = key(&info.query.name().to_string());
        let qtype = info.query.query_type();
        let found = {
            let zone = self.zone.read().unwrap_or_else(|e| e.into_inner());
            zone.contains(&name).then(|| answer(&zone, &name, qtype))
        };
        match found {
            Some(found) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = true;
                metadata.recursion_available = true;
                metadata.response_code = found.code;
                let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
                let message = builder.build(
                    metadata,
                    found.answers.iter(),
                    found.authority.iter(),
                    None.iter(),
                    found.additional.iter(),
                );
                send(response, message, request).await
            }
            None => self.forward(request, edns.as_ref(), response).await,
        }
    }
}

impl Handler {
    async fn forward<R: ResponseHandler>(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        response: R,
    ) -> ResponseInfo {
        if self.forwarder.resolvers.is_empty() {
            return error(request, ResponseCode::Refused, edns, response).await;
        }
        let transport = match request.protocol() {
            Protocol::Udp => Transport::Udp,
            _ => Transport::Tcp,
        };
        let upstream = self
            .forwarder
            .exchange(request.as_slice(), transport)
            .await
            .and_then(|bytes| Message::from_vec(&bytes).ok());
        let Some(upstream) = upstream else {
            return error(request, ResponseCode::ServFail, edns, response).await;
        };
        let mut metadata = upstream.metadata;
        metadata.id = request.metadata.id;
        let builder =
            MessageResponseBuilder::new(&request.queries, upstream.edns.as_ref().or(edns));
        let message = builder.build(
            metadata,
            upstream.answers.iter(),
            upstream.authorities.iter(),
            None.iter(),
            upstream.additionals.iter(),
        );
        send(response, message, request).await
    }
}

async fn error<R: ResponseHandler>(
    request: &Request,
    code: ResponseCode,
    edns: Option<&Edns>,
    response: R,
) -> ResponseInfo {
    let builder = MessageResponseBuilder::new(&request.queries, edns);
    let message = builder.error_msg(&request.metadata, code);
    send(response, message, request).await
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
