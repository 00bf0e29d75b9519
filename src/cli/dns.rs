//! `meso dns lookup NAME`: one real DNS query to meso's responder (or any
//! server), so that checking a name needs no `dig` on the machine.
//!
//! The query goes over UDP, again over TCP when the answer came truncated
//! (or only over TCP with `--tcp`), through the same exchange code the
//! responder forwards with. SOA and NS answers come in the authority section
//! (Mesos-DNS puts them there), so those are shown as answers too.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use serde_json::json;

use super::Exit;
use crate::dns::forward::{Forwarder, Transport};

/// How long the server may take to answer, per transport.
const TIMEOUT: Duration = Duration::from_secs(2);

const EXIT_CODES: &str = "\
Exit codes:
  0  the name has records of the type asked
  1  no such name (NXDOMAIN), no records of that type, or another answer code
     from the server (SERVFAIL, REFUSED)
  2  usage: a bad flag, type, name or server address
  3  no DNS server answering at the address";

#[derive(Subcommand)]
pub enum DnsCommand {
    /// Look a name up in meso's DNS (or any DNS server) and print its records
    #[command(after_help = EXIT_CODES)]
    Lookup(LookupArgs),
}

#[derive(Args)]
pub struct LookupArgs {
    /// The name, e.g. web.marathon.mesos or _web._tcp.marathon.mesos (the
    /// trailing dot is optional)
    name: String,
    /// The record type to ask for
    #[arg(
        long = "type",
        short = 't',
        value_name = "TYPE",
        value_enum,
        ignore_case = true,
        default_value = "A"
    )]
    rtype: QueryType,
    /// The DNS server, HOST:PORT or an IP (port 53)
    #[arg(long, env = "MESO_DNS", default_value = "127.0.0.1:8053")]
    server: String,
    /// Ask over TCP only (by default: UDP, and TCP when the answer is truncated)
    #[arg(long)]
    tcp: bool,
    /// Print as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum QueryType {
    #[value(name = "A")]
    A,
    #[value(name = "AAAA")]
    Aaaa,
    #[value(name = "SRV")]
    Srv,
    #[value(name = "SOA")]
    Soa,
    #[value(name = "NS")]
    Ns,
    #[value(name = "ANY")]
    Any,
}

impl QueryType {
    fn record_type(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Srv => RecordType::SRV,
            Self::Soa => RecordType::SOA,
            Self::Ns => RecordType::NS,
            Self::Any => RecordType::ANY,
        }
    }
}

pub async fn run(cmd: DnsCommand) -> anyhow::Result<()> {
    match cmd {
        DnsCommand::Lookup(args) => lookup(args).await,
    }
}

async fn lookup(args: LookupArgs) -> anyhow::Result<()> {
    let qtype = args.rtype.record_type();
    let name = fqdn(&args.name)?;
    let server = server_addr(&args.server).await?;
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name.clone(), qtype));
    let bytes = query.to_vec()?;

    let answer = ask(server, &bytes, args.tcp).await?;
    let rcode = answer.metadata.response_code;
    let records = shown(&answer, qtype);
    if args.json {
        let answers: Vec<_> = records
            .iter()
            .map(|r| {
                json!({
                    "name": r.name.to_ascii(),
                    "type": r.record_type().to_string(),
                    "ttl": r.ttl,
                    "data": r.data.to_string(),
                })
            })
            .collect();
        let out = json!({
            "name": name.to_ascii(),
            "type": qtype.to_string(),
            "rcode": rcode_name(rcode),
            "answers": answers,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for r in &records {
            println!("{} {} {}", r.name, r.record_type(), r.data);
        }
    }
    let failure = match rcode {
        ResponseCode::NoError if records.is_empty() => format!("{name} has no {qtype} records"),
        ResponseCode::NoError => return Ok(()),
        ResponseCode::NXDomain => format!("no such name: {name} (NXDOMAIN)"),
        other => format!(
            "the server at {server} answered {} for {name} {qtype}",
            rcode_name(other)
        ),
    };
    Err(Exit::new(1, failure).into())
}

/// The name as asked, fully qualified.
fn fqdn(text: &str) -> anyhow::Result<Name> {
    let mut name = Name::from_ascii(text.trim())
        .ok()
        .filter(|n| !n.is_root() && !text.trim().is_empty())
        .ok_or_else(|| Exit::new(2, format!("dns lookup: '{text}' is not a DNS name")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// `--server`: an IP (port 53), IP:PORT, or HOST:PORT looked up here.
async fn server_addr(text: &str) -> anyhow::Result<SocketAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let found = tokio::net::lookup_host(text)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next());
    found.ok_or_else(|| {
        Exit::new(
            2,
            format!("dns lookup: server '{text}' (--server or MESO_DNS) is not HOST:PORT or an IP"),
        )
        .into()
    })
}

/// The server's answer: over TCP when asked to, else UDP and TCP after a
/// truncated UDP answer (the truncated one if TCP then fails).
async fn ask(server: SocketAddr, query: &[u8], tcp: bool) -> anyhow::Result<Message> {
    let forwarder = Forwarder {
        resolvers: vec![server],
        timeout: TIMEOUT,
    };
    let no_server = || {
        Exit::new(
            3,
            format!(
                "no DNS server answering at {server} (start a cluster with `meso up`, or pass --server)"
            ),
        )
    };
    let parse = |bytes: Vec<u8>| {
        Message::from_vec(&bytes).map_err(|e| {
            Exit::new(
                3,
                format!("the answer from {server} is not a DNS message: {e}"),
            )
        })
    };
    if !tcp {
        let udp = forwarder
            .exchange(query, Transport::Udp)
            .await
            .ok_or_else(no_server)?;
        let udp = parse(udp)?;
        if !udp.metadata.truncation {
            return Ok(udp);
        }
        return match forwarder.exchange(query, Transport::Tcp).await {
            Some(bytes) => Ok(parse(bytes)?),
            None => {
                eprintln!("warning: the answer is truncated and {server} does not answer over TCP");
                Ok(udp)
            }
        };
    }
    let bytes = forwarder
        .exchange(query, Transport::Tcp)
        .await
        .ok_or_else(no_server)?;
    Ok(parse(bytes)?)
}

/// The records to show: the answer section, and the authority's records
/// of the type asked (SOA, NS; both for ANY).
fn shown(answer: &Message, qtype: RecordType) -> Vec<Record> {
    let wanted = |t: RecordType| match qtype {
        RecordType::ANY => matches!(t, RecordType::SOA | RecordType::NS),
        RecordType::SOA | RecordType::NS => t == qtype,
        _ => false,
    };
    // An NXDOMAIN's SOA is there to say how long to cache the absence.
    let authority = answer.metadata.response_code == ResponseCode::NoError;
    answer
        .answers
        .iter()
        .chain(
            answer
                .authorities
                .iter()
                .filter(|r| authority && wanted(r.record_type())),
        )
        .cloned()
        .collect()
}

/// A response code as dig prints it.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}
