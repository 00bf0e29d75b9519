//! Mesos-DNS's HTTP API (`resolver/resolver.go`, `docs/http.md`) on meso's
//! HTTP port, so that tools written against Mesos-DNS's port 8123 work when
//! pointed here:
//!
//! ```text
//!  GET /v1/version            who answers
//!  GET /v1/config             the settings, under Mesos-DNS's Go field names
//!  GET /v1/hosts/{host}       A then AAAA of a name   ─┐ read lock on this
//!  GET /v1/services/{srv}     SRV targets, their IPs   │ node's zone: no
//!  GET /v1/enumerate          every task's records     │ forwarding to the
//!  GET /v1/axfr               every record of the zone ┘ leader
//!  GET /v1/hosts/{host}/ports 501, as in Mesos-DNS
//! ```
//!
//! Mesos-DNS answers a name it does not know with 200 and one record of
//! empty strings, not 404; clients test for the empty `host`, so this does
//! the same.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use hickory_proto::rr::{RData, Record, RecordType};
use serde::Serialize;
use serde_json::{Value, json};

use super::handler::key;
use super::records::{framework_name, task_name};
use super::zone::{SOA_EXPIRE, SOA_REFRESH, SOA_RETRY, Zone};
use super::{Dns, UPSTREAM_TIMEOUT};
use crate::master::Master;

/// What the endpoints read: the node's DNS role, its registry (task and
/// framework names for `/v1/enumerate`) and where its HTTP listens.
pub struct Api {
    pub dns: Dns,
    pub master: Arc<Master>,
    pub http: SocketAddr,
}

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/version", get(version))
        .route("/v1/config", get(config))
        .route("/v1/hosts/{host}", get(hosts))
        .route("/v1/hosts/{host}/ports", get(ports))
        .route("/v1/services/{service}", get(services))
        .route("/v1/enumerate", get(enumerate))
        .route("/v1/axfr", get(axfr))
        .with_state(Arc::new(api))
}

type Ctx = State<Arc<Api>>;

async fn version() -> Json<Value> {
    Json(json!({
        "Service": "Mesos-DNS",
        "URL": "https://github.com/mesosphere/mesos-dns",
        "Version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Mesos-DNS's `Config` as far as its fields mean something here: records
/// are pushed, not polled (`RefreshSeconds` 0); labels are RFC 1123
/// (`EnforceRFC952` false); answers are truncated with TC set.
async fn config(State(api): Ctx) -> Json<Value> {
    let dns = &api.dns;
    let zone = dns.zone.read().unwrap_or_else(|e| e.into_inner());
    let resolvers: Vec<String> = dns.resolvers.iter().map(ToString::to_string).collect();
    let ip_sources: Vec<&str> = dns.settings.ip_sources.iter().map(|s| s.name()).collect();
    Json(json!({
        "RefreshSeconds": 0,
        "TTL": zone.ttl(),
        "Port": dns.addr.port(),
        "Domain": zone.domain().trim_end_matches('.'),
        "Resolvers": resolvers,
        "Timeout": UPSTREAM_TIMEOUT.as_secs(),
        "SOAMname": zone.mname(),
        "SOARname": zone.rname(),
        "SOASerial": zone.serial(),
        "SOARefresh": SOA_REFRESH,
        "SOARetry": SOA_RETRY,
        "SOAExpire": SOA_EXPIRE,
        "SOAMinttl": zone.ttl(),
        "RecurseOn": true,
        "Listener": dns.addr.ip().to_string(),
        "HTTPListener": api.http.ip().to_string(),
        "HttpPort": api.http.port(),
        "DnsOn": true,
        "HttpOn": true,
        "ExternalOn": !dns.resolvers.is_empty(),
        "EnforceRFC952": false,
        "SetTruncateBit": true,
        "EnumerationOn": true,
        "IPSources": ip_sources,
    }))
}

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct HostRow {
    pub host: String,
    pub ip: String,
}

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct ServiceRow {
    pub service: String,
    pub host: String,
    pub ip: String,
    pub port: String,
}

async fn hosts(State(api): Ctx, Path(host): Path<String>) -> Json<Vec<HostRow>> {
    let zone = api.dns.zone.read().unwrap_or_else(|e| e.into_inner());
    Json(host_rows(&zone, &host))
}

async fn ports() -> impl IntoResponse {
    (StatusCode::NOT_IMPLEMENTED, "To be implemented...")
}

async fn services(State(api): Ctx, Path(service): Path<String>) -> Json<Vec<ServiceRow>> {
    let zone = api.dns.zone.read().unwrap_or_else(|e| e.into_inner());
    Json(service_rows(&zone, &service))
}

async fn enumerate(State(api): Ctx) -> Json<Enumeration> {
    let names = task_names(&api.master);
    let zone = api.dns.zone.read().unwrap_or_else(|e| e.into_inner());
    Json(enumeration(&zone, &names))
}

async fn axfr(State(api): Ctx) -> Json<Value> {
    let zone = api.dns.zone.read().unwrap_or_else(|e| e.into_inner());
    Json(transfer(&zone))
}

/// The IP of an A or AAAA record.
fn address(record: &Record) -> Option<String> {
    match &record.data {
        RData::A(a) => Some(a.0.to_string()),
        RData::AAAA(aaaa) => Some(aaaa.0.to_string()),
        _ => None,
    }
}

/// The target (lower case, fully qualified) and port of an SRV record.
fn target(record: &Record) -> Option<(String, u16)> {
    match &record.data {
        RData::SRV(srv) => Some((srv.target.to_ascii().to_ascii_lowercase(), srv.port)),
        _ => None,
    }
}

/// `/v1/hosts/{host}`: the name's A records, then its AAAA.
pub fn host_rows(zone: &Zone, host: &str) -> Vec<HostRow> {
    let name = key(host);
    let mut rows: Vec<HostRow> = [RecordType::A, RecordType::AAAA]
        .into_iter()
        .flat_map(|rtype| zone.lookup(&name, rtype))
        .filter_map(|r| address(&r))
        .map(|ip| HostRow {
            host: name.clone(),
            ip,
        })
        .collect();
    if rows.is_empty() {
        rows.push(HostRow::default());
    }
    rows
}

/// `/v1/services/{service}`: one row per SRV record with the target's first
/// A, and one more with its first AAAA; a target with neither has no row.
pub fn service_rows(zone: &Zone, service: &str) -> Vec<ServiceRow> {
    let mut rows = Vec::new();
    for (host, port) in zone
        .lookup(&key(service), RecordType::SRV)
        .iter()
        .filter_map(target)
    {
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Some(ip) = zone.lookup(&host, rtype).first().and_then(address) {
                rows.push(ServiceRow {
                    service: service.to_string(),
                    host: host.clone(),
                    ip,
                    port: port.to_string(),
                });
            }
        }
    }
    if rows.is_empty() {
        rows.push(ServiceRow::default());
    }
    rows
}

/// A record as `/v1/enumerate` and `/v1/axfr` show it: its type and its
/// value (an IP, or an SRV's `target:port`).
fn value(record: &Record) -> Option<(RecordType, String)> {
    let rtype = record.record_type();
    match rtype {
        RecordType::A | RecordType::AAAA => Some((rtype, address(record)?)),
        RecordType::SRV => target(record).map(|(t, port)| (rtype, format!("{t}:{port}"))),
        _ => None,
    }
}

/// `/v1/axfr`: every A, AAAA and SRV record of the zone, by name.
pub fn transfer(zone: &Zone) -> Value {
    type Set = BTreeMap<String, BTreeSet<String>>;
    let (mut a, mut aaaa, mut srv) = (Set::new(), Set::new(), Set::new());
    for (name, records) in zone.all() {
        for (rtype, v) in records.filter_map(value) {
            let set = match rtype {
                RecordType::A => &mut a,
                RecordType::AAAA => &mut aaaa,
                _ => &mut srv,
            };
            set.entry(name.to_string()).or_default().insert(v);
        }
    }
    json!({
        "TTL": zone.ttl(),
        "Serial": zone.serial(),
        "RefreshSeconds": 0,
        "Mname": zone.mname(),
        "Rname": zone.rname(),
        "Domain": zone.domain().trim_end_matches('.'),
        "Records": {"As": a, "AAAAs": aaaa, "SRVs": srv},
    })
}

#[derive(Debug, Serialize)]
pub struct Enumeration {
    pub frameworks: Vec<EnumFramework>,
}

#[derive(Debug, Serialize)]
pub struct EnumFramework {
    pub name: String,
    pub tasks: Vec<EnumTask>,
}

#[derive(Debug, Serialize)]
pub struct EnumTask {
    pub name: String,
    pub id: String,
    pub records: Vec<EnumRecord>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EnumRecord {
    pub name: String,
    pub host: String,
    pub rtype: String,
}

/// A task's name and its framework's, by task id.
pub type TaskNames = HashMap<String, (String, String)>;

/// The names `/v1/enumerate` shows, read from the registry at once so that
/// its lock is not held while the zone's is.
fn task_names(master: &Master) -> TaskNames {
    let registry = master.registry();
    let marathon = crate::scheduler::driver::reconcile::framework_id(&registry);
    registry
        .tasks
        .values()
        .map(|t| {
            let names = (task_name(t).to_string(), framework_name(t, &marathon));
            (t.spec.task_id.clone(), names)
        })
        .collect()
}

/// `/v1/enumerate`: each framework's tasks with their records, in name
/// order. A task the registry no longer has (its records are on their way
/// out) is left out.
pub fn enumeration(zone: &Zone, names: &TaskNames) -> Enumeration {
    let mut frameworks: BTreeMap<&str, Vec<EnumTask>> = BTreeMap::new();
    for (id, records) in zone.by_task() {
        let Some((name, framework)) = names.get(id) else {
            continue;
        };
        let mut records: Vec<EnumRecord> = records
            .into_iter()
            .filter_map(|r| {
                let (rtype, host) = value(r)?;
                Some(EnumRecord {
                    name: r.name.to_ascii().to_ascii_lowercase(),
                    host,
                    rtype: rtype.to_string(),
                })
            })
            .collect();
        records.sort();
        records.dedup();
        frameworks.entry(framework).or_default().push(EnumTask {
            name: name.clone(),
            id: id.to_string(),
            records,
        });
    }
    Enumeration {
        frameworks: frameworks
            .into_iter()
            .map(|(name, mut tasks)| {
                tasks.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
                EnumFramework {
                    name: name.to_string(),
                    tasks,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::zone::{Entry, Owner};
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, AAAA, SRV};

    fn entry(name: &str, data: RData) -> Entry {
        Entry {
            name: name.into(),
            data,
        }
    }

    fn srv(target: &str, port: u16) -> RData {
        RData::SRV(SRV::new(
            0,
            1,
            port,
            Name::from_ascii(target).expect("name"),
        ))
    }

    /// Two tasks of `web` on one agent, one with an IPv6 address too.
    fn zone() -> Zone {
        let mut zone = Zone::new("mesos", 60);
        let t1 = "web-aaaaa-s0.marathon.mesos.";
        let t2 = "web-bbbbb-s0.marathon.mesos.";
        zone.replace(
            &Owner::Task("t1".into()),
            vec![
                entry("web.marathon.mesos.", RData::A(A([10, 0, 0, 1].into()))),
                entry(t1, RData::A(A([10, 0, 0, 1].into()))),
                entry("_web._tcp.marathon.mesos.", srv(t1, 31000)),
            ],
        );
        zone.replace(
            &Owner::Task("t2".into()),
            vec![
                entry("web.marathon.mesos.", RData::A(A([10, 0, 0, 1].into()))),
                entry(t2, RData::A(A([10, 0, 0, 1].into()))),
                entry(t2, RData::AAAA(AAAA("fd00::1".parse().expect("ip")))),
                entry("_web._tcp.marathon.mesos.", srv(t2, 31001)),
            ],
        );
        zone
    }

    #[test]
    fn hosts_are_found_case_blind_with_or_without_the_dot() {
        let zone = zone();
        let want = vec![HostRow {
            host: "web.marathon.mesos.".into(),
            ip: "10.0.0.1".into(),
        }];
        assert_eq!(host_rows(&zone, "Web.Marathon.mesos"), want);
        assert_eq!(host_rows(&zone, "web.marathon.mesos."), want);
        let both = host_rows(&zone, "web-bbbbb-s0.marathon.mesos");
        let ips: Vec<&str> = both.iter().map(|r| r.ip.as_str()).collect();
        assert_eq!(ips, ["10.0.0.1", "fd00::1"], "A first, then AAAA");
        assert_eq!(host_rows(&zone, "nope.mesos"), vec![HostRow::default()]);
    }

    #[test]
    fn services_list_each_target_with_its_addresses() {
        let zone = zone();
        let mut rows = service_rows(&zone, "_web._tcp.marathon.mesos");
        rows.sort_by(|a, b| (&a.host, &a.ip).cmp(&(&b.host, &b.ip)));
        let got: Vec<(&str, &str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.service.as_str(),
                    r.host.as_str(),
                    r.ip.as_str(),
                    r.port.as_str(),
                )
            })
            .collect();
        let s = "_web._tcp.marathon.mesos";
        assert_eq!(
            got,
            [
                (s, "web-aaaaa-s0.marathon.mesos.", "10.0.0.1", "31000"),
                (s, "web-bbbbb-s0.marathon.mesos.", "10.0.0.1", "31001"),
                (s, "web-bbbbb-s0.marathon.mesos.", "fd00::1", "31001"),
            ]
        );
        assert_eq!(
            service_rows(&zone, "_nope._tcp.mesos"),
            vec![ServiceRow::default()]
        );
    }

    #[test]
    fn the_transfer_holds_each_record_once() {
        let zone = zone();
        let t = transfer(&zone);
        assert_eq!(
            t["Records"]["As"]["web.marathon.mesos."],
            json!(["10.0.0.1"])
        );
        assert_eq!(
            t["Records"]["AAAAs"]["web-bbbbb-s0.marathon.mesos."],
            json!(["fd00::1"])
        );
        assert_eq!(
            t["Records"]["SRVs"]["_web._tcp.marathon.mesos."],
            json!([
                "web-aaaaa-s0.marathon.mesos.:31000",
                "web-bbbbb-s0.marathon.mesos.:31001"
            ])
        );
        assert_eq!(t["Mname"], "ns1.mesos.");
        assert_eq!(t["Rname"], "root.ns1.mesos.");
        assert_eq!(t["Domain"], "mesos");
        assert_eq!(t["Serial"], zone.serial());
    }

    #[test]
    fn the_enumeration_groups_tasks_by_framework_and_skips_unknown_ones() {
        let zone = zone();
        let names: TaskNames = [("t2".to_string(), ("web".into(), "marathon".into()))].into();
        let e = enumeration(&zone, &names);
        assert_eq!(e.frameworks.len(), 1);
        assert_eq!(e.frameworks[0].name, "marathon");
        let tasks = &e.frameworks[0].tasks;
        assert_eq!((tasks.len(), tasks[0].id.as_str()), (1, "t2"));
        let rtypes: Vec<&str> = tasks[0].records.iter().map(|r| r.rtype.as_str()).collect();
        assert_eq!(rtypes, ["SRV", "A", "AAAA", "A"], "{:?}", tasks[0].records);
        let srv = &tasks[0].records[0];
        assert_eq!(srv.host, "web-bbbbb-s0.marathon.mesos.:31001");
    }
}
