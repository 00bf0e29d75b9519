//! `meso status` (the cluster on one screen) and `meso info` (its `export`
//! lines again).
//!
//! ```text
//!  status: /master/state ─┐
//!          /master/members ├─▶ leader, masters, agents (used/total), apps (healthy/total)
//!          /v2/apps ───────┘      as tables within 80 columns, or one JSON object
//!  info:   <data-dir>/meso-up.json ─▶ export MESOS_MASTER=… MARATHON_URL=… MESO_DNS=… MESO_DATA_DIR=…
//! ```

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::out::{self, Style, Table, paint};
use super::state_file::UpState;
use super::target::{ClusterArgs, LocalArgs};
use super::{Exit, code};

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Print as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    local: LocalArgs,
    /// Print as JSON
    #[arg(long)]
    json: bool,
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let api = args.cluster.api()?;
    let state = api.get("/master/state", "cluster state").await?;
    // Membership is a master's own view; an agent-only address has none.
    let members = api
        .call(Method::GET, "/master/members", None)
        .await?
        .ok("members")
        .unwrap_or(Value::Array(vec![]));
    let apps = api.get("/v2/apps", "apps").await?;
    let summary = summarize(&state, &members, &apps);
    if args.json {
        return out::json(&summary);
    }
    print_summary(&summary);
    Ok(())
}

/// The one object both outputs come from (and `--json` prints).
fn summarize(state: &Value, members: &Value, apps: &Value) -> Value {
    let leader = state["leader_info"]["address"]["ip"]
        .as_str()
        .map(|ip| format!("{ip}:{}", state["leader_info"]["port"]));
    let masters: Vec<Value> = members
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            json!({
                "id": m["id"],
                "http": m["http_addr"],
                "role": match (m["leader"].as_bool(), m["voter"].as_bool()) {
                    (Some(true), _) => "leader",
                    (_, Some(true)) => "follower",
                    _ => "non-voter",
                },
            })
        })
        .collect();
    let agents: Vec<Value> = state["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let scalar = |which: &str, what: &str| s[which][what].as_f64().unwrap_or(0.0);
            json!({
                "id": s["id"],
                "hostname": s["hostname"],
                "active": s["active"],
                "cpus": {"used": scalar("used_resources", "cpus"), "total": scalar("resources", "cpus")},
                "mem": {"used": scalar("used_resources", "mem"), "total": scalar("resources", "mem")},
                "disk": {"used": scalar("used_resources", "disk"), "total": scalar("resources", "disk")},
            })
        })
        .collect();
    let apps: Vec<Value> = apps["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let checked = a["healthChecks"].as_array().is_some_and(|h| !h.is_empty());
            json!({
                "id": a["id"],
                "instances": a["instances"],
                "running": a["tasksRunning"],
                "healthy": if checked { a["tasksHealthy"].clone() } else { a["tasksRunning"].clone() },
                "health_checked": checked,
                "deploying": a["deployments"].as_array().is_some_and(|d| !d.is_empty()),
            })
        })
        .collect();
    json!({
        "cluster": state["cluster"],
        "leader": leader,
        "masters": masters,
        "agents": agents,
        "apps": apps,
    })
}

fn print_summary(s: &Value) {
    let leader = s["leader"].as_str().unwrap_or("none");
    let leader = if s["leader"].is_null() {
        paint(leader, Style::Red)
    } else {
        paint(leader, Style::Green)
    };
    println!(
        "{} {}   leader {leader}",
        paint("cluster", Style::Bold),
        s["cluster"].as_str().unwrap_or("?")
    );
    let masters = s["masters"].as_array().cloned().unwrap_or_default();
    if !masters.is_empty() {
        println!("\n{}", paint("MASTERS", Style::Bold));
        let mut t = Table::new(&["ID", "HTTP", "ROLE"]).indent(2);
        for m in &masters {
            t.row(vec![
                m["id"].to_string(),
                m["http"].as_str().unwrap_or("-").into(),
                m["role"].as_str().unwrap_or("-").into(),
            ]);
        }
        t.print();
    }
    println!("\n{}", paint("AGENTS", Style::Bold));
    let agents = s["agents"].as_array().cloned().unwrap_or_default();
    if agents.is_empty() {
        println!("  none registered");
    } else {
        let mut t = Table::new(&["ID", "HOST", "CPUS USED", "MEM USED", "DISK USED"]).indent(2);
        for a in &agents {
            let pair = |k: &str, f: fn(f64) -> String| {
                let used = a[k]["used"].as_f64().unwrap_or(0.0);
                let total = a[k]["total"].as_f64().unwrap_or(0.0);
                format!("{}/{}", f(used), f(total))
            };
            let mut id = a["id"].as_str().unwrap_or("-").to_string();
            if a["active"] != true {
                id.push_str(" (inactive)");
            }
            t.row(vec![
                id,
                a["hostname"].as_str().unwrap_or("-").into(),
                pair("cpus", out::cpus),
                pair("mem", out::mb),
                pair("disk", out::mb),
            ]);
        }
        t.print();
    }
    println!("\n{}", paint("APPS", Style::Bold));
    let apps = s["apps"].as_array().cloned().unwrap_or_default();
    if apps.is_empty() {
        println!("  none (deploy one with `meso app deploy FILE`)");
        return;
    }
    let mut t = Table::new(&["ID", "HEALTHY/TOTAL", "RUNNING", "STATUS"]).indent(2);
    for a in &apps {
        let healthy = a["healthy"].as_u64().unwrap_or(0);
        let total = a["instances"].as_u64().unwrap_or(0);
        let status = if a["deploying"] == true {
            "deploying"
        } else if healthy >= total {
            "ok"
        } else {
            "degraded"
        };
        t.row(vec![
            a["id"].as_str().unwrap_or("-").into(),
            format!("{healthy}/{total}"),
            a["running"].to_string(),
            status.into(),
        ]);
    }
    t.print();
}

pub fn info(args: InfoArgs) -> anyhow::Result<()> {
    let dir = args.local.data_dir()?;
    let Some(state) = UpState::read(&dir)?.filter(UpState::alive) else {
        return Err(Exit::new(
            code::NO_CLUSTER,
            format!(
                "no cluster running from data dir {} — start one with `meso up -d`, or pass --data-dir",
                dir.display()
            ),
        )
        .into());
    };
    if args.json {
        return out::json(&json!({
            "MESOS_MASTER": state.api(),
            "MARATHON_URL": format!("http://{}", state.api()),
            "MESO_DNS": state.dns,
            "MESO_DATA_DIR": state.data_dir,
            "masters": state.masters,
            "agents": state.agents,
            "pid": state.pid,
            "log": state.log,
        }));
    }
    print!("{}", state.exports());
    Ok(())
}
