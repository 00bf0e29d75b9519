//! `meso dns lookup` as a user runs it: the real binary sending real DNS
//! packets to a real master's responder, and its exit codes.

use crate::common;

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::Duration;

use common::dns::start_web;
use common::{Finished, run, run_env};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(15);

fn lookup(server: &str, extra: &[&str]) -> Finished {
    let mut args = vec!["dns", "lookup", "--server", server];
    args.extend_from_slice(extra);
    run(&args, TIMEOUT)
}

#[tokio::test]
async fn lookups_print_records_and_exit_by_what_they_found() {
    let web = start_web().await;
    let dns = web.dns.as_str();
    let ip = web.site.ip.as_str();

    // A, through MESO_DNS as `eval "$(meso up)"` leaves it.
    let a = run_env(
        &["dns", "lookup", "Web.Marathon.Mesos"],
        &[("MESO_DNS", dns)],
        TIMEOUT,
    );
    assert_eq!(a.code(), Some(0), "{a:?}");
    assert_eq!(a.stdout, format!("web.marathon.mesos. A {ip}\n"));

    // SRV: one line per instance, its host port and canonical target.
    let srv = lookup(dns, &["_web._tcp.marathon.mesos", "--type", "SRV"]);
    assert_eq!(srv.code(), Some(0), "{srv:?}");
    let mut ports = BTreeSet::new();
    for line in srv.stdout.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let [name, "SRV", "0", "1", port, target] = words[..] else {
            panic!("not an SRV line: {line}");
        };
        assert_eq!(name, "_web._tcp.marathon.mesos.");
        assert!(
            target.starts_with("web-") && target.ends_with(".marathon.mesos."),
            "{line}"
        );
        ports.insert(port.parse::<u16>().expect("a port"));
    }
    let want: BTreeSet<u16> = web.tasks.iter().map(|t| t.port).collect();
    assert_eq!(ports, want, "{}", srv.stdout);

    // JSON, over TCP.
    let json = lookup(
        dns,
        &[
            "_http._web._tcp.marathon.mesos.",
            "-t",
            "srv",
            "--json",
            "--tcp",
        ],
    );
    assert_eq!(json.code(), Some(0), "{json:?}");
    let v: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["name"], "_http._web._tcp.marathon.mesos.");
    assert_eq!(
        (&v["type"], &v["rcode"]),
        (&"SRV".into(), &"NOERROR".into())
    );
    let answers = v["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 2, "{v}");
    for answer in answers {
        assert_eq!(answer["type"], "SRV");
        assert_eq!(answer["ttl"], 60);
        assert!(
            answer["data"].as_str().unwrap().starts_with("0 1 "),
            "{answer}"
        );
    }

    // SOA comes in the authority section; it is shown all the same.
    let soa = lookup(dns, &["mesos", "--type", "SOA"]);
    assert_eq!(soa.code(), Some(0), "{soa:?}");
    assert!(
        soa.stdout
            .starts_with("mesos. SOA ns1.mesos. root.ns1.mesos. "),
        "{}",
        soa.stdout
    );

    // No such name: exit 1, the name on stderr; JSON still says why.
    let missing = lookup(dns, &["nope.marathon.mesos"]);
    assert_eq!(missing.code(), Some(1), "{missing:?}");
    assert_eq!(missing.stdout, "");
    assert!(
        missing.stderr.contains("nope.marathon.mesos.") && missing.stderr.contains("NXDOMAIN"),
        "{}",
        missing.stderr
    );
    let missing = lookup(dns, &["nope.marathon.mesos", "--json"]);
    assert_eq!(missing.code(), Some(1), "{missing:?}");
    let v: Value = serde_json::from_str(&missing.stdout).expect("JSON");
    assert_eq!(
        (&v["rcode"], &v["answers"]),
        (&"NXDOMAIN".into(), &Value::Array(vec![]))
    );

    // A name with records, but not of the type asked: exit 1 too.
    let no_a = lookup(dns, &["_web._tcp.marathon.mesos"]);
    assert_eq!(no_a.code(), Some(1), "{no_a:?}");
    assert!(no_a.stderr.contains("no A records"), "{}", no_a.stderr);
}

#[test]
fn usage_errors_exit_2_and_a_silent_server_exits_3() {
    let bad_type = run(
        &["dns", "lookup", "web.marathon.mesos", "--type", "TXT"],
        TIMEOUT,
    );
    assert_eq!(bad_type.code(), Some(2), "{bad_type:?}");
    assert!(bad_type.stderr.contains("TXT"), "{}", bad_type.stderr);

    let bad_server = lookup("not an address", &["web.marathon.mesos"]);
    assert_eq!(bad_server.code(), Some(2), "{bad_server:?}");
    assert!(
        bad_server.stderr.contains("'not an address'"),
        "{}",
        bad_server.stderr
    );

    let bad_name = lookup("127.0.0.1:53", &["a..b"]);
    assert_eq!(bad_name.code(), Some(2), "{bad_name:?}");
    assert!(bad_name.stderr.contains("'a..b'"), "{}", bad_name.stderr);

    // A socket that takes queries and never answers: the 2 s timeout.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let none = lookup(&addr, &["web.marathon.mesos"]);
    assert_eq!(none.code(), Some(3), "{none:?}");
    let stderr = none.stderr.trim_end();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("no DNS server answering at {addr}"))
            && stderr.contains("meso up"),
        "{stderr}"
    );
}
