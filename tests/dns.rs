//! The DNS role as a client meets it: real queries over UDP and TCP to real
//! masters, with real agents running the tasks the names are for. Names come
//! when a task is RUNNING and go when it ends; the cluster's own names follow
//! its leader; other names go upstream; big answers truncate; bad packets get
//! FORMERR or nothing, and never stop the server.

use crate::common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::marathon::{create_app, resources_with_free_ports};
use common::{Cluster, Site, TEST_IMAGE, client, docker_ready, get_json, url, wait_for};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const PATIENCE: Duration = Duration::from_secs(30);

/// Which way a query goes, and whether it offers EDNS (and what size).
#[derive(Clone, Copy)]
enum Via {
    Udp,
    UdpEdns(u16),
    Tcp,
}

fn query_bytes(name: &str, rtype: RecordType, via: Via) -> Vec<u8> {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_ascii(name).expect("a valid name"),
        rtype,
    ));
    if let Via::UdpEdns(size) = via {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        message.edns = Some(edns);
    }
    message.to_vec().expect("encodes")
}

fn rand_id() -> u16 {
    (common::random_u64() & 0xffff) as u16
}

/// Sends raw bytes over UDP; the answer's bytes, or None after a second.
async fn udp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

async fn tcp_raw(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server).await.expect("connect over TCP");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.expect("send over TCP");
    let n = stream.read_u16().await.expect("a length") as usize;
    let mut answer = vec![0u8; n];
    stream.read_exact(&mut answer).await.expect("the answer");
    answer
}

async fn ask(server: SocketAddr, name: &str, rtype: RecordType, via: Via) -> Message {
    let bytes = query_bytes(name, rtype, via);
    let answer = match via {
        Via::Tcp => tcp_raw(server, &bytes).await,
        _ => {
            // A datagram can be lost on a loaded machine: three tries, as a
            // resolver makes.
            let mut answer = None;
            for _ in 0..3 {
                answer = udp_raw(server, &bytes).await;
                if answer.is_some() {
                    break;
                }
            }
            answer.unwrap_or_else(|| panic!("no answer from {server} for {name}"))
        }
    };
    let message = Message::from_vec(&answer).expect("a DNS message");
    assert_eq!(
        message.metadata.id,
        u16::from_be_bytes([bytes[0], bytes[1]])
    );
    message
}

/// The addresses in the answer section, as text.
fn ips(message: &Message) -> BTreeSet<String> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The SRV answers as (target, port).
fn services(message: &Message) -> BTreeSet<(String, u16)> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some((srv.target.to_ascii(), srv.port)),
            _ => None,
        })
        .collect()
}

fn dns_addr(exports: &std::collections::BTreeMap<String, String>) -> SocketAddr {
    exports
        .get("MESO_DNS")
        .expect("the master prints MESO_DNS")
        .parse()
        .expect("MESO_DNS is IP:PORT")
}

/// Waits until `check` holds for the answer to `name`; returns that answer.
async fn answer_where(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    what: &str,
    check: impl Fn(&Message) -> bool,
) -> Message {
    let name = name.to_string();
    let check = &check;
    wait_for(what, PATIENCE, || {
        let name = name.clone();
        async move {
            let m = ask(server, &name, rtype, Via::Udp).await;
            check(&m).then_some(m)
        }
    })
    .await
}

/// The host ports of the app's running tasks.
async fn task_ports(http: &str, id: &str, n: usize) -> BTreeSet<u16> {
    wait_for(
        &format!("{n} tasks of {id} running"),
        PATIENCE,
        || async move {
            let tasks = get_json(http, &format!("/v2/apps{id}/tasks")).await?["tasks"].clone();
            let tasks = tasks.as_array()?;
            let running = tasks
                .iter()
                .filter(|t| t["state"] == "TASK_RUNNING")
                .count();
            (running == n && tasks.len() == n).then(|| {
                tasks
                    .iter()
                    .filter_map(|t| t["ports"][0].as_u64())
                    .map(|p| p as u16)
                    .collect()
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_names_come_when_it_runs_and_go_when_it_is_killed() {
    let site = Site::start(&[]).await;
    let http = site.master.http.clone();
    let dns = dns_addr(&site.master.exports);
    let app = json!({
        "id": "/prod/web", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 2,
        "portDefinitions": [{"port": 0, "name": "http"}],
    });
    create_app(&http, app).await;
    let ports = task_ports(&http, "/prod/web", 2).await;

    // Marathon names /prod/web's tasks web.prod: the label is web-prod.
    let a = answer_where(
        dns,
        "web-prod.marathon.mesos.",
        RecordType::A,
        "the app's A record",
        |m| !m.answers.is_empty(),
    )
    .await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative, "{a:?}");
    assert_eq!(
        ips(&a),
        BTreeSet::from([site.ip.clone()]),
        "the agent's IP (host network)"
    );

    let srv = answer_where(
        dns,
        "_web-prod._tcp.marathon.mesos.",
        RecordType::SRV,
        "both SRV records",
        |m| services(m).len() == 2,
    )
    .await;
    let found: BTreeSet<u16> = services(&srv).iter().map(|(_, p)| *p).collect();
    assert_eq!(found, ports, "SRV ports are the tasks' host ports");
    // Each target is a canonical name that resolves, and comes in additional.
    for (target, _) in services(&srv) {
        assert!(
            target.starts_with("web-prod-") && target.ends_with(".marathon.mesos."),
            "{target}"
        );
        let canonical = ask(dns, &target, RecordType::A, Via::Udp).await;
        assert_eq!(
            ips(&canonical),
            BTreeSet::from([site.ip.clone()]),
            "{target}"
        );
        assert!(
            srv.additionals.iter().any(|r| r.name.to_ascii() == target),
            "{target} in the additional section: {srv:?}"
        );
    }
    // The named port, the .slave variants, and the same over TCP.
    let named = ask(
        dns,
        "_http._web-prod._tcp.marathon.mesos.",
        RecordType::SRV,
        Via::Tcp,
    )
    .await;
    assert_eq!(services(&named).len(), 2, "{named:?}");
    let slave = ask(
        dns,
        "_web-prod._udp.marathon.slave.mesos.",
        RecordType::SRV,
        Via::Udp,
    )
    .await;
    assert!(
        services(&slave)
            .iter()
            .all(|(t, _)| t.ends_with(".marathon.slave.mesos.")),
        "{slave:?}"
    );
    // Case does not matter.
    let upper = ask(dns, "WEB-PROD.Marathon.MESOS.", RecordType::A, Via::Udp).await;
    assert_eq!(ips(&upper), ips(&a));

    // Killed: the names go, and an unknown name is NXDOMAIN with the SOA.
    let r = client()
        .delete(url(&http, "/v2/apps/prod/web?force=true"))
        .send()
        .await
        .expect("the master answers");
    assert!(r.status().is_success(), "{}", r.status());
    let gone = answer_where(
        dns,
        "web-prod.marathon.mesos.",
        RecordType::A,
        "the A record gone",
        |m| m.answers.is_empty(),
    )
    .await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        gone.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA),
        "{gone:?}"
    );
    let srv_gone = ask(
        dns,
        "_web-prod._tcp.marathon.mesos.",
        RecordType::SRV,
        Via::Udp,
    )
    .await;
    assert!(srv_gone.answers.is_empty(), "{srv_gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_own_names_and_the_zones_answers() {
    let site = Site::start(&[]).await;
    let dns = dns_addr(&site.master.exports);
    let ip = BTreeSet::from([site.ip.clone()]);
    let master_port: u16 = site
        .master
        .http
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("HTTP port");
    for name in [
        "leader.mesos.",
        "master.mesos.",
        "master0.mesos.",
        "slave.mesos.",
        "agent.mesos.",
    ] {
        let m = answer_where(dns, name, RecordType::A, name, |m| !m.answers.is_empty()).await;
        assert_eq!(ips(&m), ip, "{name}");
    }
    let leader = ask(dns, "_leader._tcp.mesos.", RecordType::SRV, Via::Udp).await;
    assert_eq!(
        services(&leader),
        BTreeSet::from([("leader.mesos.".to_string(), master_port)])
    );
    let agents = ask(dns, "_slave._tcp.mesos.", RecordType::SRV, Via::Udp).await;
    assert_eq!(services(&agents).len(), 1, "{agents:?}");

    // SOA and NS answer in the authority section, as Mesos-DNS does.
    let soa = ask(dns, "mesos.", RecordType::SOA, Via::Udp).await;
    assert!(soa.answers.is_empty(), "{soa:?}");
    let Some(RData::SOA(record)) = soa.authorities.first().map(|r| &r.data) else {
        panic!("no SOA in authority: {soa:?}");
    };
    assert_eq!(record.mname.to_ascii(), "ns1.mesos.");
    let ns = ask(dns, "mesos.", RecordType::NS, Via::Udp).await;
    assert!(
        matches!(ns.authorities.first().map(|r| &r.data), Some(RData::NS(n)) if n.0.to_ascii() == "ns1.mesos."),
        "{ns:?}"
    );
    // A known name of another type: NOERROR (no data) with the SOA.
    let aaaa = ask(dns, "leader.mesos.", RecordType::AAAA, Via::Udp).await;
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());
    assert!(
        aaaa.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    );
    // An unknown name: NXDOMAIN with the SOA.
    let none = ask(dns, "nothing-here.marathon.mesos.", RecordType::A, Via::Tcp).await;
    assert_eq!(none.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        none.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_mesos_follows_a_failover() {
    let mut cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    let port_of = |http: &str| -> u16 {
        http.rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("HTTP port")
    };
    // Every master answers for the leader, followers included.
    for id in cluster.live() {
        let dns = dns_addr(&cluster.procs[&id].exports);
        let want = port_of(&cluster.http[&leader]);
        answer_where(
            dns,
            "_leader._tcp.mesos.",
            RecordType::SRV,
            "the leader's port",
            |m| services(m).iter().any(|(_, p)| *p == want),
        )
        .await;
    }
    cluster.kill9(leader);
    let next = cluster.leader().await;
    assert_ne!(next, leader);
    let want = port_of(&cluster.http[&next]);
    for id in cluster.live() {
        let dns = dns_addr(&cluster.procs[&id].exports);
        let m = answer_where(
            dns,
            "_leader._tcp.mesos.",
            RecordType::SRV,
            "the new leader's port",
            |m| services(m) == BTreeSet::from([("leader.mesos.".to_string(), want)]),
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    }
}

/// A one-record upstream resolver on UDP and TCP: answers every query with
/// `name A 192.0.2.7`.
async fn upstream() -> SocketAddr {
    // A free UDP port may be taken for TCP: try others until both bind.
    let mut tries = 0;
    let (udp, addr, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let addr = udp.local_addr().expect("addr");
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => break (udp, addr, tcp),
            Err(_) if tries < 50 => tries += 1,
            Err(e) => panic!("bind TCP on the UDP port {addr}: {e}"),
        }
    };
    fn reply(query: &[u8]) -> Option<Vec<u8>> {
        let q = Message::from_vec(query).ok()?;
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.recursion_available = true;
        for question in &q.queries {
            m.add_query(question.clone());
            m.add_answer(hickory_proto::rr::Record::from_rdata(
                question.name().clone(),
                30,
                RData::A(hickory_proto::rr::rdata::A([192, 0, 2, 7].into())),
            ));
        }
        m.to_vec().ok()
    }
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            if let Some(answer) = reply(&buf[..n]) {
                let _ = udp.send_to(&answer, from).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let Ok(n) = stream.read_u16().await else {
                    return;
                };
                let mut q = vec![0u8; n as usize];
                if stream.read_exact(&mut q).await.is_err() {
                    return;
                }
                if let Some(answer) = reply(&q) {
                    let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&answer);
                    let _ = stream.write_all(&framed).await;
                }
            });
        }
    });
    addr
}

fn master_with(dir: &std::path::Path, extra: &[&str]) -> common::Proc {
    let ip = common::loopback_ip();
    let mut args = common::single_master_args(&ip, &dir.join("master"));
    args.extend(extra.iter().map(|s| s.to_string()));
    common::spawn_master("master", &args, &dir.join("master.log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_names_go_upstream_over_the_clients_protocol() {
    let up = upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let resolvers = format!("127.0.0.1:1,{up}");
    let master = master_with(dir.path(), &["--dns-resolvers", &resolvers]);
    let dns = dns_addr(&master.exports);
    // The first resolver refuses (nothing listens): the next one answers.
    for via in [Via::Udp, Via::Tcp] {
        let m = ask(dns, "www.example.com.", RecordType::A, via).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
        assert_eq!(ips(&m), BTreeSet::from(["192.0.2.7".to_string()]));
    }

    // None configured: REFUSED. Upstreams that fail: SERVFAIL.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let refusing = master_with(dir2.path(), &["--dns-resolvers", "none"]);
    let m = ask(
        dns_addr(&refusing.exports),
        "www.example.com.",
        RecordType::A,
        Via::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let dir3 = tempfile::tempdir().expect("tempdir");
    let failing = master_with(dir3.path(), &["--dns-resolvers", "127.0.0.1:1"]);
    let m = ask(
        dns_addr(&failing.exports),
        "www.example.com.",
        RecordType::A,
        Via::Tcp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // The domain's own names never go upstream.
    let own = answer_where(
        dns_addr(&failing.exports),
        "leader.mesos.",
        RecordType::A,
        "leader.mesos",
        |m| !m.answers.is_empty(),
    )
    .await;
    assert_eq!(own.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_answers_truncate_over_udp_and_come_whole_over_tcp() {
    const N: usize = 24;
    let site = Site::start_with(&resources_with_free_ports(N), None, &[], &[]).await;
    let http = site.master.http.clone();
    let dns = dns_addr(&site.master.exports);
    create_app(
        &http,
        json!({"id": "/many", "cmd": "sleep 600", "cpus": 0.01, "mem": 8, "instances": N,
               "portDefinitions": [{"port": 0}]}),
    )
    .await;
    task_ports(&http, "/many", N).await;
    let name = "_many._tcp.marathon.mesos.";
    let whole = wait_for("every SRV record over TCP", PATIENCE, || async move {
        let m = ask(dns, name, RecordType::SRV, Via::Tcp).await;
        (services(&m).len() == N).then_some(m)
    })
    .await;
    assert!(!whole.metadata.truncation);
    // Plain UDP: 512 bytes, so fewer records and TC set.
    let bytes = query_bytes(name, RecordType::SRV, Via::Udp);
    let raw = udp_raw(dns, &bytes).await.expect("an answer");
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let cut = Message::from_vec(&raw).expect("a message");
    assert!(cut.metadata.truncation, "TC set");
    assert!(services(&cut).len() < N);
    // EDNS with room for all of it: whole, over UDP.
    let roomy = ask(dns, name, RecordType::SRV, Via::UdpEdns(4096)).await;
    assert!(
        !roomy.metadata.truncation,
        "{} records",
        roomy.answers.len()
    );
    assert_eq!(services(&roomy).len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_get_formerr_or_nothing_and_the_server_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = master_with(dir.path(), &["--dns-resolvers", "none"]);
    let dns = dns_addr(&master.exports);
    // Shorter than a header: dropped.
    assert!(udp_raw(dns, b"\x12\x34\x01").await.is_none());
    // A header that promises a question the packet does not hold: FORMERR.
    let header = [
        0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 3, b'a', b'b',
    ];
    let raw = udp_raw(dns, &header).await.expect("an answer");
    let m = Message::from_vec(&raw).expect("a message");
    assert_eq!(m.metadata.id, 0xabcd);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Two questions in one message: FORMERR too.
    let mut two = Message::new(7, MessageType::Query, OpCode::Query);
    for n in ["a.mesos.", "b.mesos."] {
        two.add_query(Query::query(
            Name::from_ascii(n).expect("name"),
            RecordType::A,
        ));
    }
    let raw = udp_raw(dns, &two.to_vec().expect("encodes"))
        .await
        .expect("an answer");
    assert_eq!(
        Message::from_vec(&raw)
            .expect("message")
            .metadata
            .response_code,
        ResponseCode::FormErr
    );
    // Garbage over TCP, then a good query on a new connection.
    let mut stream = TcpStream::connect(dns).await.expect("connect");
    let _ = stream.write_all(&[0x00, 0x05, 1, 2, 3, 4, 5]).await;
    drop(stream);
    for _ in 0..200 {
        let _ = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .send_to(&[0xff; 700], dns)
            .await;
    }
    let m = answer_where(dns, "leader.mesos.", RecordType::A, "leader.mesos", |m| {
        !m.answers.is_empty()
    })
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let m = ask(dns, "leader.mesos.", RecordType::A, Via::Tcp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_containers_name_is_its_container_ip_and_its_srv_the_host_port() {
    docker_ready();
    let site = Site::start_with(&resources_with_free_ports(2), None, &[], &[]).await;
    let http = site.master.http.clone();
    let dns = dns_addr(&site.master.exports);
    create_app(
        &http,
        json!({
            "id": "/bridged", "cmd": "sleep 600", "cpus": 0.1, "mem": 32,
            "container": {"type": "DOCKER", "docker": {"image": TEST_IMAGE},
                          "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "web"}]},
            "networks": [{"mode": "container/bridge"}],
            "taskKillGracePeriodSeconds": 1,
        }),
    )
    .await;
    let ports = task_ports(&http, "/bridged", 1).await;
    let task: Value = get_json(&http, "/v2/apps/bridged/tasks")
        .await
        .expect("tasks")["tasks"][0]
        .clone();
    let container_ip = task["ipAddresses"][0]["ipAddress"]
        .as_str()
        .expect("the container's IP in the task")
        .to_string();
    assert_ne!(container_ip, site.ip);
    let a = answer_where(
        dns,
        "bridged.marathon.mesos.",
        RecordType::A,
        "the container's A record",
        |m| !m.answers.is_empty(),
    )
    .await;
    assert_eq!(ips(&a), BTreeSet::from([container_ip]));
    let slave = ask(
        dns,
        "bridged.marathon.slave.mesos.",
        RecordType::A,
        Via::Udp,
    )
    .await;
    assert_eq!(ips(&slave), BTreeSet::from([site.ip.clone()]));
    let srv = ask(
        dns,
        "_web._bridged._tcp.marathon.mesos.",
        RecordType::SRV,
        Via::Udp,
    )
    .await;
    let found: BTreeSet<u16> = services(&srv).iter().map(|(_, p)| *p).collect();
    assert_eq!(found, ports, "the SRV port is the mapped host port");
    let r = client()
        .delete(url(&http, "/v2/apps/bridged?force=true"))
        .send()
        .await
        .expect("the master answers");
    assert!(r.status().is_success());
}
