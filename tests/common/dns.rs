//! What the DNS tests share: a site running a Marathon app with a named
//! port, waited for until the master's DNS zone holds its tasks.

use std::time::Duration;

use serde_json::{Value, json};

use super::marathon::create_app;
use super::{Site, get_json, wait_for};

/// One instance of `/web`: its task id and host port.
#[derive(Debug, Clone)]
pub struct WebTask {
    pub id: String,
    pub port: u16,
}

/// A master (with DNS) and an agent, running `/web`.
pub struct Web {
    pub site: Site,
    /// The master's DNS address, `IP:PORT` as it printed it.
    pub dns: String,
    /// The instances, by task id.
    pub tasks: Vec<WebTask>,
}

/// Starts a site and deploys `/web`: two instances of `sleep`, one port
/// named `http`. Returns once both run and `/v1/services` lists both.
pub async fn start_web() -> Web {
    let site = Site::start(&[]).await;
    let http = site.master.http.clone();
    let dns = site
        .master
        .exports
        .get("MESO_DNS")
        .cloned()
        .expect("the master printed MESO_DNS");
    create_app(
        &http,
        json!({
            "id": "/web", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 2,
            "portDefinitions": [{"port": 0, "name": "http"}],
        }),
    )
    .await;
    let tasks = wait_for(
        "/web running with its SRV records served",
        Duration::from_secs(30),
        || {
            let http = http.clone();
            async move {
                let app = get_json(&http, "/v2/apps/web").await?;
                let tasks = running_tasks(&app["app"]);
                let srv = get_json(&http, "/v1/services/_web._tcp.marathon.mesos").await?;
                let served = srv.as_array()?.iter().filter(|r| r["host"] != "").count();
                (tasks.len() == 2 && served == 2).then_some(tasks)
            }
        },
    )
    .await;
    Web { site, dns, tasks }
}

fn running_tasks(app: &Value) -> Vec<WebTask> {
    let mut tasks: Vec<WebTask> = app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .filter_map(|t| {
            Some(WebTask {
                id: t["id"].as_str()?.to_string(),
                port: u16::try_from(t["ports"][0].as_u64()?).ok()?,
            })
        })
        .collect();
    tasks.sort_by_key(|t| t.port);
    tasks
}
