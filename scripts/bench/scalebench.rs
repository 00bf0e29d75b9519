//! Scale benchmark for `scripts/bench/scale.sh`: deployments onto a fleet of
//! simulated agents (`meso sim`), timed from the leader's own counters, and
//! the reads that grow with the cluster.
//!
//! ```text
//! scalebench deploy --master ADDR --group /scale --apps 100 --instances 1000
//!     one PUT /v2/apps of every app (no ports, 0.01 cpus, 8 MB, `sleep 3600`);
//!     polls the leader's /metrics/snapshot every 50 ms until every task is
//!     RUNNING: time to the PUT's answer, to every task placed (STAGING or
//!     later) and to every task RUNNING (committed), and tasks per second
//! scalebench reads --master ADDR --rounds 5
//!     GET /master/slaves, /v2/apps and /metrics/snapshot, each timed until
//!     its whole body is read; medians
//! scalebench wait --master ADDR --agents N --tasks T [--timeout S]
//!     until the leader counts N active agents, none unreachable, and T tasks
//!     RUNNING; the time it took, and the most unreachable agents and tasks
//!     any poll saw on the way
//! ```
//!
//! Each mode prints one JSON line on stdout.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[path = "common.rs"]
mod common;
use common::{ms, pct};

#[derive(Parser)]
#[command(about = "meso scale benchmark (scripts/bench/scale.sh)")]
struct Cli {
    /// The masters (comma-separated): requests go to the one they name leader
    #[arg(long, value_delimiter = ',', required = true)]
    master: Vec<String>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    Deploy {
        #[arg(long, default_value = "/scale")]
        group: String,
        #[arg(long)]
        apps: usize,
        #[arg(long)]
        instances: usize,
        /// Give up after this many seconds
        #[arg(long, default_value_t = 600.0)]
        timeout: f64,
    },
    Reads {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    Wait {
        #[arg(long)]
        agents: u64,
        #[arg(long)]
        tasks: u64,
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let line = runtime.block_on(run(cli))?;
    println!("{line}");
    Ok(())
}

struct Api {
    http: reqwest::Client,
    masters: Vec<String>,
    /// The leader's base URL as last found.
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        common::get_json(&self.http, &self.base, path).await
    }

    /// The leader's counters, or None while no master answers as leader. A
    /// loaded cluster can change leaders mid-run: then the next call asks
    /// the masters again who leads.
    async fn snapshot(&mut self) -> Option<Value> {
        let v = self.get("/metrics/snapshot").await.ok();
        match v {
            Some(v) if v["master/elected"] == 1.0 => Some(v),
            _ => {
                if let Ok(base) = leader(&self.http, &self.masters).await {
                    self.base = base;
                }
                None
            }
        }
    }
}

/// The leader's base URL, as the first master that answers names it.
async fn leader(http: &reqwest::Client, masters: &[String]) -> anyhow::Result<String> {
    let mut last = None;
    for m in masters {
        match common::get_json(http, &meso::api::base_url(m), "/v2/leader").await {
            Ok(v) => {
                let leader = v["leader"].as_str().context("/v2/leader without leader")?;
                return Ok(meso::api::base_url(leader));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no master given")))
}

async fn run(cli: Cli) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    let base = leader(&http, &cli.master).await?;
    let mut api = Api {
        http,
        masters: cli.master,
        base,
    };
    match cli.mode {
        Mode::Deploy {
            group,
            apps,
            instances,
            timeout,
        } => {
            deploy(
                &mut api,
                &group,
                apps,
                instances,
                Duration::from_secs_f64(timeout),
            )
            .await
        }
        Mode::Reads { rounds } => reads(&api, rounds).await,
        Mode::Wait {
            agents,
            tasks,
            timeout,
        } => wait(&mut api, agents, tasks, Duration::from_secs_f64(timeout)).await,
    }
}

fn count(v: &Value, key: &str) -> u64 {
    v[key].as_f64().unwrap_or(0.0) as u64
}

/// Tasks placed: recorded in the registry and not yet ended.
fn placed(v: &Value) -> u64 {
    ["staging", "starting", "running", "killing"]
        .iter()
        .map(|s| count(v, &format!("master/tasks_{s}")))
        .sum()
}

async fn deploy(
    api: &mut Api,
    group: &str,
    apps: usize,
    instances: usize,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let group = group.trim_end_matches('/');
    let all: Vec<Value> = (0..apps)
        .map(|n| {
            json!({
                "id": format!("{group}/a{n:04}"),
                "cmd": "sleep 3600",
                "cpus": 0.01,
                "mem": 8,
                "instances": instances,
                "portDefinitions": [],
            })
        })
        .collect();
    let want = (apps * instances) as u64;
    let before = api.snapshot().await.context("no leader")?;
    let base_running = count(&before, "master/tasks_running");
    let base_placed = placed(&before);
    let t0 = Instant::now();
    let r = api
        .http
        .put(format!("{}/v2/apps", api.base))
        .timeout(Duration::from_secs(120))
        .json(&all)
        .send()
        .await?;
    let put = t0.elapsed();
    if !r.status().is_success() {
        let status = r.status();
        bail!(
            "PUT /v2/apps answered {status}: {}",
            r.text().await.unwrap_or_default().trim()
        );
    }
    let mut all_placed: Option<Duration> = None;
    let mut half_running: Option<Duration> = None;
    let mut polls = 0u64;
    let all_running = loop {
        if t0.elapsed() > timeout {
            bail!("not every task RUNNING within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(v) = api.snapshot().await else {
            continue;
        };
        polls += 1;
        let at = t0.elapsed();
        let running = count(&v, "master/tasks_running").saturating_sub(base_running);
        if all_placed.is_none() && placed(&v).saturating_sub(base_placed) >= want {
            all_placed = Some(at);
        }
        if half_running.is_none() && running * 2 >= want {
            half_running = Some(at);
        }
        if running >= want {
            break at;
        }
    };
    let all_placed = all_placed.unwrap_or(all_running);
    Ok(json!({
        "mode": "deploy",
        "apps": apps,
        "instances": instances,
        "tasks": want,
        "put_ms": ms(put),
        "all_placed_ms": ms(all_placed),
        "half_running_ms": ms(half_running.unwrap_or(all_running)),
        "all_running_ms": ms(all_running),
        "placed_per_s": (want as f64 / all_placed.as_secs_f64()).round(),
        "running_per_s": (want as f64 / all_running.as_secs_f64()).round(),
        "polls": polls,
    }))
}

async fn timed_get(api: &Api, path: &str) -> anyhow::Result<(f64, usize)> {
    let t0 = Instant::now();
    let r = api
        .http
        .get(format!("{}{path}", api.base))
        .timeout(Duration::from_secs(120))
        .send()
        .await?;
    let status = r.status();
    let body = r.bytes().await?;
    if !status.is_success() {
        bail!("GET {path} answered {status}");
    }
    Ok((ms(t0.elapsed()), body.len()))
}

async fn reads(api: &Api, rounds: usize) -> anyhow::Result<Value> {
    let mut out = json!({"mode": "reads", "rounds": rounds});
    for (key, path) in [
        ("slaves", "/master/slaves"),
        ("apps", "/v2/apps"),
        ("snapshot", "/metrics/snapshot"),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..rounds.max(1) {
            let (t, n) = timed_get(api, path).await?;
            times.push(t);
            bytes = n;
        }
        times.sort_by(f64::total_cmp);
        out[format!("{key}_ms")] = json!(pct(&times, 0.5));
        out[format!("{key}_bytes")] = json!(bytes);
    }
    Ok(out)
}

async fn wait(api: &mut Api, agents: u64, tasks: u64, timeout: Duration) -> anyhow::Result<Value> {
    let t0 = Instant::now();
    let (mut worst_agents, mut worst_tasks) = (0u64, 0u64);
    loop {
        if let Some(v) = api.snapshot().await {
            let unreachable = count(&v, "master/slaves_unreachable");
            let lost = count(&v, "master/tasks_unreachable");
            worst_agents = worst_agents.max(unreachable);
            worst_tasks = worst_tasks.max(lost);
            if count(&v, "master/slaves_active") >= agents
                && unreachable == 0
                && count(&v, "master/tasks_running") >= tasks
            {
                return Ok(json!({
                    "mode": "wait",
                    "ms": ms(t0.elapsed()),
                    "max_unreachable_agents": worst_agents,
                    "max_unreachable_tasks": worst_tasks,
                }));
            }
        }
        if t0.elapsed() > timeout {
            bail!(
                "{agents} agents and {tasks} running tasks not seen within {timeout:?} (unreachable agents up to {worst_agents})"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
