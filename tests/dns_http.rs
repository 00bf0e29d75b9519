//! Mesos-DNS's HTTP API (`/v1/...`) on a real master's HTTP port, with a real
//! agent running a Marathon app: every endpoint, as Mesos-DNS clients read
//! it, asked with `Accept: application/json` as those clients send it.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::dns::start_web;
use common::{client, loopback_ip, single_master_args, spawn_master, url, wait_for};
use serde_json::{Value, json};

/// One GET as a Mesos-DNS client sends it; the status and the body (JSON,
/// or the text when it is not).
async fn v1(http: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(url(http, path))
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .expect("the master answers");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

async fn ok(http: &str, path: &str) -> Value {
    let (status, body) = v1(http, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

#[tokio::test]
async fn the_v1_api_serves_a_marathon_apps_records() {
    let web = start_web().await;
    let http = web.site.master.http.as_str();
    let ip = web.site.ip.as_str();
    let agent = web.site.agent_id.rsplit('-').next().unwrap().to_lowercase();

    // Two tasks on one agent: one address, the name as asked made canonical.
    let hosts = ok(http, "/v1/hosts/Web.Marathon.Mesos").await;
    assert_eq!(hosts, json!([{"host": "web.marathon.mesos.", "ip": ip}]));

    // Each instance's SRV points at its canonical name and host port, for
    // the app's name and for its named port.
    let ports: BTreeSet<String> = web.tasks.iter().map(|t| t.port.to_string()).collect();
    for service in [
        "_web._tcp.marathon.mesos",
        "_http._web._tcp.marathon.mesos.",
    ] {
        let rows = ok(http, &format!("/v1/services/{service}")).await;
        let rows = rows.as_array().expect("a list");
        assert_eq!(rows.len(), 2, "{rows:?}");
        let mut seen = BTreeSet::new();
        for row in rows {
            assert_eq!(row["service"], service, "the name as asked: {row}");
            assert_eq!(row["ip"], ip, "{row}");
            let host = row["host"].as_str().expect("a host");
            let label = host
                .strip_suffix(".marathon.mesos.")
                .expect("a task name of marathon");
            assert!(
                label.starts_with("web-") && label.ends_with(&format!("-{agent}")),
                "canonical name {host}"
            );
            seen.insert(row["port"].as_str().expect("port as a string").to_string());
        }
        assert_eq!(seen, ports, "{service}");
    }

    // The transfer: the same records, SRVs as target:port.
    let axfr = ok(http, "/v1/axfr").await;
    let records = &axfr["Records"];
    assert_eq!(records["As"]["web.marathon.mesos."], json!([ip]));
    let srvs = records["SRVs"]["_web._tcp.marathon.mesos."]
        .as_array()
        .expect("the app's SRVs");
    let srv_ports: BTreeSet<String> = srvs
        .iter()
        .filter_map(|s| s.as_str()?.rsplit_once(':').map(|(_, p)| p.to_string()))
        .collect();
    assert_eq!(srv_ports, ports, "{srvs:?}");
    assert_eq!(records["AAAAs"], json!({}));
    assert_eq!(
        (
            &axfr["Domain"],
            &axfr["Mname"],
            &axfr["Rname"],
            &axfr["TTL"]
        ),
        (
            &json!("mesos"),
            &json!("ns1.mesos."),
            &json!("root.ns1.mesos."),
            &json!(60)
        )
    );
    assert!(axfr["Serial"].as_u64().is_some_and(|s| s > 0), "{axfr}");
    assert_eq!(axfr["RefreshSeconds"], 0, "pushed, not polled");

    // The enumeration: both tasks, under marathon, with their records.
    let listing = ok(http, "/v1/enumerate").await;
    let frameworks = listing["frameworks"].as_array().expect("frameworks");
    assert_eq!(frameworks.len(), 1, "{listing}");
    assert_eq!(frameworks[0]["name"], "marathon");
    let tasks = frameworks[0]["tasks"].as_array().expect("tasks");
    let ids: BTreeSet<&str> = tasks.iter().filter_map(|t| t["id"].as_str()).collect();
    let want: BTreeSet<&str> = web.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, want);
    for task in tasks {
        assert_eq!(task["name"], "web");
        let records = task["records"].as_array().expect("records");
        let has = |name: &str, rtype: &str| {
            records
                .iter()
                .any(|r| r["name"] == name && r["rtype"] == rtype)
        };
        assert!(has("web.marathon.mesos.", "A"), "{task}");
        assert!(has("_http._web._tcp.marathon.mesos.", "SRV"), "{task}");
        let port = web.tasks.iter().find(|t| t.id == task["id"]).unwrap().port;
        assert!(
            records
                .iter()
                .filter(|r| r["rtype"] == "SRV")
                .all(|r| r["host"].as_str().unwrap().ends_with(&format!(".:{port}"))),
            "{task}"
        );
    }

    // The configuration, under Mesos-DNS's field names.
    let config = ok(http, "/v1/config").await;
    let dns_port: u64 = web.dns.rsplit_once(':').unwrap().1.parse().unwrap();
    let http_port: u64 = http.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(config["Domain"], "mesos");
    assert_eq!(config["Port"], dns_port);
    assert_eq!(config["HttpPort"], http_port);
    assert_eq!(config["HTTPListener"], ip);
    assert_eq!(config["TTL"], 60);
    assert_eq!(config["RefreshSeconds"], 0);
    assert_eq!(config["SOAMname"], "ns1.mesos.");
    assert_eq!(config["IPSources"], json!(["netinfo", "host"]));
    for (key, on) in [
        ("DnsOn", true),
        ("HttpOn", true),
        ("EnumerationOn", true),
        ("EnforceRFC952", false),
        ("SetTruncateBit", true),
    ] {
        assert_eq!(config[key], on, "{key}: {config}");
    }
    assert!(config["Resolvers"].is_array(), "{config}");

    let version = ok(http, "/v1/version").await;
    assert_eq!(
        version,
        json!({
            "Service": "Mesos-DNS",
            "URL": "https://github.com/mesosphere/mesos-dns",
            "Version": env!("CARGO_PKG_VERSION"),
        })
    );

    // Unknown names: 200 with one empty record, as Mesos-DNS answers.
    let none = ok(http, "/v1/hosts/nope.marathon.mesos").await;
    assert_eq!(none, json!([{"host": "", "ip": ""}]));
    let none = ok(http, "/v1/services/_nope._tcp.marathon.mesos").await;
    assert_eq!(
        none,
        json!([{"service": "", "host": "", "ip": "", "port": ""}])
    );
    let (status, body) = v1(http, "/v1/hosts/web.marathon.mesos/ports").await;
    assert_eq!((status, body), (501, json!("To be implemented...")));

    // The records follow the app: gone once it is.
    let (status, body) =
        common::marathon::send(reqwest::Method::DELETE, http, "/v2/apps/web", None).await;
    assert_eq!(status, 200, "{body}");
    wait_for(
        "web's records gone",
        Duration::from_secs(30),
        || async move {
            let (_, hosts) = v1(http, "/v1/hosts/web.marathon.mesos").await;
            (hosts == json!([{"host": "", "ip": ""}])).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_master_without_dns_has_no_v1_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = single_master_args(&loopback_ip(), &dir.path().join("data"));
    args.extend(["--dns".into(), "off".into()]);
    let master = spawn_master("master", &args, &dir.path().join("master.log"));
    assert!(!master.exports.contains_key("MESO_DNS"));
    let (status, _) = v1(&master.http, "/v1/version").await;
    assert_eq!(status, 404);
}
