//! Marathon API benchmark for `scripts/bench/marathon.sh`: deploys apps through
//! `/v2`, watches their tasks come up on `/v2/events`, and times the API's
//! reads; one JSON line per run on stdout.
//!
//! ```text
//! marathonbench wait-agents --master ADDR --count N
//!                     waits until N agents are active
//! marathonbench one-app  --master ADDR --id /mb/one --instances 1000
//!                     POST one app of N instances ─▶ every TASK_RUNNING seen
//! marathonbench many-apps --master ADDR --group /mb/many --count 1000 --how post|put|group [--clients C]
//!                     N apps of one instance: N POSTs from C clients, each in a
//!                     closed loop (one request at a time), one PUT /v2/apps
//!                     with all N, or one POST /v2/groups of a group holding
//!                     all N ─▶ every TASK_RUNNING seen
//! marathonbench get-apps --master ADDR --count 200 [--embed apps.tasks]
//!                     GET /v2/apps N times in a row; p50/p99 of the whole answer
//! marathonbench remove --master ADDR --group /mb
//!                     DELETE the group (force) and wait until its tasks have ended
//! ```
//!
//! How RUNNING is seen: before the first request the tool attaches to
//! `GET /v2/events?event_type=status_update_event` and counts the distinct
//! task ids of its apps that reach TASK_RUNNING; the clock stops at the event
//! that completes the count. The bus drops events for a reader that falls far
//! behind (Marathon's contract too), so every 2 s the tool also asks the API
//! (`/v2/apps?id=`, counts only); if the API says all run before the events
//! do, that answer stops the clock and the line says `"events_lost": true`.
//!
//! Where the time went: once all run, `/master/tasks` gives each task's own
//! status timestamps, so a line also says when the last task was STAGING
//! (placed and committed by the scheduler) and when the last was RUNNING on
//! its agent, both in ms after the first request (this machine's clocks).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[path = "common.rs"]
mod common;
use common::{ms, pct};

#[derive(Parser)]
#[command(about = "Marathon API benchmark for scripts/bench/marathon.sh")]
struct Cli {
    /// The master's HTTP address (host:port or URL)
    #[arg(long, global = true, default_value = "127.0.0.1:5050")]
    master: String,
    /// The master's pid, when on this machine: each line then also says how
    /// much CPU the master spent on the measured part (a figure that other
    /// work on the machine disturbs less than times do)
    #[arg(long, global = true)]
    master_pid: Option<u32>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Wait until N agents are active
    WaitAgents {
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// POST one app of N instances; time until every task is RUNNING
    OneApp {
        #[arg(long, default_value = "/mb/one")]
        id: String,
        #[arg(long, default_value_t = 1000)]
        instances: usize,
        #[arg(long, default_value_t = 300.0)]
        timeout: f64,
    },
    /// Deploy N apps of one instance; time until every task is RUNNING
    ManyApps {
        #[arg(long, default_value = "/mb/many")]
        group: String,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// `post`: one POST /v2/apps per app, back to back; `put`: one
        /// PUT /v2/apps with every app; `group`: one POST /v2/groups of the
        /// group with every app in it
        #[arg(long, default_value = "post")]
        how: How,
        /// With `post`: clients sending at once, each one request at a time
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 300.0)]
        timeout: f64,
    },
    /// GET /v2/apps N times in a row
    GetApps {
        #[arg(long, default_value_t = 200)]
        count: usize,
        /// `embed` query parameter (e.g. apps.tasks)
        #[arg(long)]
        embed: Option<String>,
    },
    /// DELETE a group with force; wait until its tasks have ended
    Remove {
        #[arg(long, default_value = "/mb")]
        group: String,
        #[arg(long, default_value_t = 300.0)]
        timeout: f64,
    },
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum How {
    Post,
    Put,
    Group,
}

/// Per instance: small enough for thousands on one agent.
const CPUS: f64 = 0.01;
const MEM_MB: f64 = 8.0;

fn main() -> anyhow::Result<()> {
    // One thread: the event reader and the requests take turns, and the
    // machine's cores are left to the cluster under test.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = runtime.block_on(run(Cli::parse()))?;
    println!("{out}");
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<Value> {
    let api = Api::new(&cli.master, cli.master_pid)?;
    match cli.mode {
        Mode::WaitAgents { count, timeout } => {
            let deadline = Instant::now() + Duration::from_secs_f64(timeout);
            loop {
                let active = api
                    .get("/master/slaves")
                    .await
                    .ok()
                    .and_then(|s| {
                        Some(
                            s["slaves"]
                                .as_array()?
                                .iter()
                                .filter(|a| a["active"] == true)
                                .count(),
                        )
                    })
                    .unwrap_or(0);
                if active >= count {
                    return Ok(json!({"mode": "wait-agents", "active": active}));
                }
                if Instant::now() > deadline {
                    bail!("{active} of {count} agents active after {timeout} s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Mode::OneApp {
            id,
            instances,
            timeout,
        } => one_app(&api, &id, instances, Duration::from_secs_f64(timeout)).await,
        Mode::ManyApps {
            group,
            count,
            how,
            clients,
            timeout,
        } => {
            // A PUT or a group's POST is one request from one client,
            // whatever `--clients` says.
            let clients = if how == How::Post { clients.max(1) } else { 1 };
            let timeout = Duration::from_secs_f64(timeout);
            many_apps(&api, &group, count, how, clients, timeout).await
        }
        Mode::GetApps { count, embed } => get_apps(&api, count, embed.as_deref()).await,
        Mode::Remove { group, timeout } => {
            remove(&api, &group, Duration::from_secs_f64(timeout)).await
        }
    }
}

// ---------------------------------------------------------------- HTTP

struct Api {
    http: reqwest::Client,
    base: String,
    pid: Option<u32>,
}

impl Api {
    fn new(addr: &str, pid: Option<u32>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let addr = addr.trim().trim_end_matches('/');
        let base = if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        Ok(Self { http, base, pid })
    }

    /// CPU the master has used so far (user + system), in ms; NaN without a pid.
    fn master_cpu_ms(&self) -> f64 {
        let Some(pid) = self.pid else {
            return f64::NAN;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return f64::NAN;
        };
        // After "pid (comm) ": state is field 0, utime 11, stime 12.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map_or(vec![], |(_, rest)| rest.split(' ').collect());
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        // SAFETY: sysconf only reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        match (ticks(11), ticks(12)) {
            (Some(u), Some(s)) if hz > 0.0 => (u + s) / hz * 1000.0,
            _ => f64::NAN,
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        common::get_json(&self.http, &self.base, path).await
    }

    /// A write; fails unless it answers 2xx.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req.send().await?;
        let status = r.status();
        let bytes = r.bytes().await?;
        if !status.is_success() {
            bail!(
                "{method} {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes).trim()
            );
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn app_json(id: &str, instances: usize) -> Value {
    json!({
        "id": id,
        "cmd": "sleep 600",
        "cpus": CPUS,
        "mem": MEM_MB,
        "instances": instances,
    })
}

// ---------------------------------------------------------------- events

/// One TASK_RUNNING of an app under `prefix`, as the event stream told it.
struct Running {
    task_id: String,
    at: Instant,
}

/// Attaches to `/v2/events` and forwards every TASK_RUNNING of an app whose
/// id starts with `prefix`; returns once the stream is attached.
async fn watch_running(
    api: &Api,
    prefix: &str,
) -> anyhow::Result<(
    mpsc::UnboundedReceiver<Running>,
    tokio::task::JoinHandle<()>,
)> {
    let url = format!(
        "{}/v2/events?event_type=status_update_event&event_type=event_stream_attached",
        api.base
    );
    let mut response = api
        .http
        .get(url)
        .header("Accept", "text/event-stream")
        .send()
        .await?
        .error_for_status()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let prefix = prefix.to_string();
    let (attached_tx, attached_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut attached = Some(attached_tx);
        let mut buf: Vec<u8> = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            let at = Instant::now();
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let Some(data) = line.strip_prefix(b"data:") else {
                    continue;
                };
                let Ok(event) = serde_json::from_slice::<Value>(data) else {
                    continue;
                };
                if event["eventType"] == "event_stream_attached" {
                    if let Some(a) = attached.take() {
                        let _ = a.send(());
                    }
                    continue;
                }
                let ours = event["appId"]
                    .as_str()
                    .is_some_and(|a| a.starts_with(&prefix));
                if ours && event["taskStatus"] == "TASK_RUNNING" {
                    let task_id = event["taskId"].as_str().unwrap_or_default().to_string();
                    if tx.send(Running { task_id, at }).is_err() {
                        return;
                    }
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), attached_rx)
        .await
        .context("/v2/events did not attach within 10 s")?
        .context("/v2/events ended before it attached")?;
    Ok((rx, reader))
}

/// Apps under `prefix` and their running tasks, from `/v2/apps` (counts only).
async fn running_per_api(api: &Api, prefix: &str) -> anyhow::Result<usize> {
    let apps = api.get(&format!("/v2/apps?id={prefix}")).await?;
    Ok(apps["apps"]
        .as_array()
        .context("/v2/apps without apps")?
        .iter()
        .filter(|a| a["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
        .map(|a| a["tasksRunning"].as_u64().unwrap_or(0) as usize)
        .sum())
}

/// What the wait for `want` running tasks saw.
struct Seen {
    /// When the last needed task was seen RUNNING.
    done: Instant,
    /// When each distinct task was first seen RUNNING, in order.
    times: Vec<Instant>,
    events_lost: bool,
}

async fn wait_running(
    api: &Api,
    prefix: &str,
    want: usize,
    rx: &mut mpsc::UnboundedReceiver<Running>,
    deadline: Instant,
) -> anyhow::Result<Seen> {
    let mut seen = BTreeSet::new();
    let mut times = Vec::new();
    let mut check = tokio::time::interval(Duration::from_secs(2));
    check.tick().await;
    loop {
        tokio::select! {
            got = rx.recv() => {
                let Some(r) = got else { bail!("/v2/events ended") };
                if seen.insert(r.task_id) {
                    times.push(r.at);
                }
                if seen.len() >= want {
                    let done = *times.last().context("no event")?;
                    return Ok(Seen { done, times, events_lost: false });
                }
            }
            _ = check.tick() => {
                let running = running_per_api(api, prefix).await?;
                if running >= want {
                    return Ok(Seen { done: Instant::now(), times, events_lost: true });
                }
                if Instant::now() > deadline {
                    bail!("{running} of {want} tasks RUNNING by the deadline ({} seen on /v2/events)", seen.len());
                }
            }
        }
    }
}

/// Milliseconds from `t0` until the q-th fraction of the tasks ran.
fn fraction_ms(times: &[Instant], t0: Instant, q: f64) -> f64 {
    if times.is_empty() {
        return f64::NAN;
    }
    let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
    ms(times[i] - t0)
}

/// Where the time went, from the statuses' own timestamps (the master's
/// STAGING as it records the launch; the agents' STARTING and RUNNING), read
/// from `/master/tasks` once every task runs, in ms after `t0_wall`: when the
/// last task was STAGING (placed and committed: the scheduler's part), when
/// the first task was STARTING and the first RUNNING on its agent (how soon
/// the agents begin), and when the last was RUNNING on its agent (before the
/// update travelled back).
#[derive(Debug)]
struct Timeline {
    last_staged: f64,
    first_starting: f64,
    first_running: f64,
    last_running: f64,
}

async fn timeline(api: &Api, app_prefix: &str, t0_wall: f64) -> anyhow::Result<Timeline> {
    let task_prefix = app_prefix.trim_start_matches('/').replace('/', "_");
    let tasks = api.get("/master/tasks").await?;
    let mut t = Timeline {
        last_staged: f64::NAN,
        first_starting: f64::NAN,
        first_running: f64::NAN,
        last_running: f64::NAN,
    };
    for task in tasks["tasks"].as_array().into_iter().flatten() {
        let ours = task["id"]
            .as_str()
            .is_some_and(|id| id.starts_with(&task_prefix));
        if !ours || task["state"] != "TASK_RUNNING" {
            continue;
        }
        for status in task["statuses"].as_array().into_iter().flatten() {
            let at = (status["timestamp"].as_f64().unwrap_or(f64::NAN) - t0_wall) * 1000.0;
            match status["state"].as_str() {
                Some("TASK_STAGING") => t.last_staged = at.max(t.last_staged),
                Some("TASK_STARTING") => t.first_starting = at.min(t.first_starting),
                Some("TASK_RUNNING") => {
                    t.first_running = at.min(t.first_running);
                    t.last_running = at.max(t.last_running);
                }
                _ => {}
            }
        }
    }
    let round = |x: f64| (x * 1e3).round() / 1e3;
    Ok(Timeline {
        last_staged: round(t.last_staged),
        first_starting: round(t.first_starting),
        first_running: round(t.first_running),
        last_running: round(t.last_running),
    })
}

fn wall_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The whole machine's CPU time (every process: the master, the agents,
/// the tasks starting, this client), from `/proc/stat`: the launch rates are
/// bounded by it when everything shares a few cores.
struct MachineCpu {
    /// Busy: user, nice, system, irq, softirq (not idle, iowait or steal).
    busy_ms: f64,
    /// Every core's time, busy or not (the capacity).
    all_ms: f64,
}

impl MachineCpu {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<f64> = stat
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("cpu "))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|t| t.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // SAFETY: sysconf only reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let field = |i: usize| ticks.get(i).copied().unwrap_or(f64::NAN) / hz * 1000.0;
        // user nice system idle iowait irq softirq steal
        let busy_ms = field(0) + field(1) + field(2) + field(5) + field(6);
        Self {
            busy_ms,
            all_ms: busy_ms + field(3) + field(4) + field(7),
        }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            busy_ms: self.busy_ms - before.busy_ms,
            all_ms: self.all_ms - before.all_ms,
        }
    }

    fn busy_pct(&self) -> f64 {
        (self.busy_ms / self.all_ms * 1000.0).round() / 10.0
    }
}

// ---------------------------------------------------------------- runs

async fn one_app(
    api: &Api,
    id: &str,
    instances: usize,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let (mut rx, reader) = watch_running(api, id).await?;
    let cpu0 = api.master_cpu_ms();
    let machine0 = MachineCpu::now();
    let t0 = Instant::now();
    let t0_wall = wall_secs();
    api.send(
        reqwest::Method::POST,
        "/v2/apps",
        Some(&app_json(id, instances)),
    )
    .await?;
    let answered = t0.elapsed();
    let seen = wait_running(api, id, instances, &mut rx, t0 + timeout).await?;
    let master_cpu = api.master_cpu_ms() - cpu0;
    let machine = MachineCpu::now().since(&machine0);
    reader.abort();
    let total = seen.done - t0;
    let tl = timeline(api, id, t0_wall).await?;
    Ok(json!({
        "mode": "one-app",
        "instances": instances,
        "post_ms": ms(answered),
        "all_staged_ms": tl.last_staged,
        "first_starting_on_agents_ms": tl.first_starting,
        "first_running_on_agents_ms": tl.first_running,
        "all_running_on_agents_ms": tl.last_running,
        "first_running_ms": fraction_ms(&seen.times, t0, 0.0),
        "half_running_ms": fraction_ms(&seen.times, t0, 0.5),
        "all_running_ms": ms(total),
        "launches_per_s": (instances as f64 / total.as_secs_f64()).round(),
        "master_cpu_ms": master_cpu,
        "machine_cpu_ms": machine.busy_ms,
        "machine_busy_pct": machine.busy_pct(),
        "events_lost": seen.events_lost,
    }))
}

async fn many_apps(
    api: &Api,
    group: &str,
    count: usize,
    how: How,
    clients: usize,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let group = group.trim_end_matches('/');
    let prefix = format!("{group}/");
    let ids: Vec<String> = (0..count).map(|n| format!("{group}/app-{n:05}")).collect();
    let (mut rx, reader) = watch_running(api, &prefix).await?;
    let cpu0 = api.master_cpu_ms();
    let machine0 = MachineCpu::now();
    let t0 = Instant::now();
    let t0_wall = wall_secs();
    let mut latencies = Vec::new();
    match how {
        How::Post => {
            // Client c sends apps c, c + clients, ...: each one at a time.
            let client = |c: usize| {
                let ids = &ids;
                async move {
                    let mut took = Vec::new();
                    for id in ids.iter().skip(c).step_by(clients) {
                        let sent = Instant::now();
                        api.send(reqwest::Method::POST, "/v2/apps", Some(&app_json(id, 1)))
                            .await?;
                        took.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    anyhow::Ok(took)
                }
            };
            for took in futures::future::try_join_all((0..clients).map(client)).await? {
                latencies.extend(took);
            }
        }
        How::Put | How::Group => {
            let apps: Vec<Value> = ids.iter().map(|id| app_json(id, 1)).collect();
            let (method, path, body) = if how == How::Put {
                (reqwest::Method::PUT, "/v2/apps", Value::Array(apps))
            } else {
                let group = json!({ "id": group, "apps": apps });
                (reqwest::Method::POST, "/v2/groups", group)
            };
            api.send(method, path, Some(&body)).await?;
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let requests_done = t0.elapsed();
    let seen = wait_running(api, &prefix, count, &mut rx, t0 + timeout).await?;
    let master_cpu = api.master_cpu_ms() - cpu0;
    let machine = MachineCpu::now().since(&machine0);
    reader.abort();
    latencies.sort_by(f64::total_cmp);
    let total = seen.done - t0;
    let tl = timeline(api, &prefix, t0_wall).await?;
    Ok(json!({
        "mode": "many-apps",
        "how": match how { How::Post => "post", How::Put => "put", How::Group => "group" },
        "clients": clients,
        "count": count,
        "requests_ms": ms(requests_done),
        "request_p50_ms": pct(&latencies, 0.5),
        "request_p99_ms": pct(&latencies, 0.99),
        "all_staged_ms": tl.last_staged,
        "first_starting_on_agents_ms": tl.first_starting,
        "first_running_on_agents_ms": tl.first_running,
        "all_running_on_agents_ms": tl.last_running,
        "first_running_ms": fraction_ms(&seen.times, t0, 0.0),
        "half_running_ms": fraction_ms(&seen.times, t0, 0.5),
        "all_running_ms": ms(total),
        "launches_per_s": (count as f64 / total.as_secs_f64()).round(),
        "master_cpu_ms": master_cpu,
        "machine_cpu_ms": machine.busy_ms,
        "machine_busy_pct": machine.busy_pct(),
        "events_lost": seen.events_lost,
    }))
}

async fn get_apps(api: &Api, count: usize, embed: Option<&str>) -> anyhow::Result<Value> {
    let path = match embed {
        Some(e) => format!("/v2/apps?embed={e}"),
        None => "/v2/apps".to_string(),
    };
    let url = format!("{}{path}", api.base);
    // One unmeasured request warms the connection.
    let first = api.get(&path).await?;
    let apps = first["apps"].as_array().map_or(0, Vec::len);
    let tasks: usize = first["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["tasks"].as_array().map_or(0, Vec::len))
        .sum();
    let mut times = Vec::with_capacity(count);
    let mut bytes = 0;
    let cpu0 = api.master_cpu_ms();
    for _ in 0..count {
        let sent = Instant::now();
        let r = api.http.get(&url).send().await?.error_for_status()?;
        bytes = r.bytes().await?.len();
        times.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let master_cpu = api.master_cpu_ms() - cpu0;
    times.sort_by(f64::total_cmp);
    Ok(json!({
        "mode": "get-apps",
        "master_cpu_ms_per_request": master_cpu / count.max(1) as f64,
        "embed": embed,
        "apps": apps,
        "embedded_tasks": tasks,
        "count": count,
        "bytes": bytes,
        "p50_ms": pct(&times, 0.5),
        "p99_ms": pct(&times, 0.99),
        "max_ms": times.last().copied().unwrap_or(f64::NAN),
    }))
}

async fn remove(api: &Api, group: &str, timeout: Duration) -> anyhow::Result<Value> {
    let group = group.trim_end_matches('/');
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let exists = api.get(&format!("/v2/groups{group}")).await.is_ok();
    if exists {
        api.send(
            reqwest::Method::DELETE,
            &format!("/v2/groups{group}?force=true"),
            None,
        )
        .await?;
    }
    // Marathon's task ids start with the app id, slashes as underscores.
    let task_prefix = format!("{}_", group.trim_start_matches('/').replace('/', "_"));
    loop {
        let tasks = api.get("/master/tasks").await?;
        let live = tasks["tasks"]
            .as_array()
            .context("/master/tasks without tasks")?
            .iter()
            .filter(|t| {
                t["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(&task_prefix))
                    && !matches!(
                        t["state"].as_str().unwrap_or_default(),
                        "TASK_FINISHED"
                            | "TASK_FAILED"
                            | "TASK_KILLED"
                            | "TASK_ERROR"
                            | "TASK_LOST"
                            | "TASK_DROPPED"
                            | "TASK_GONE"
                    )
            })
            .count();
        let deployments = api.get("/v2/deployments").await?;
        let idle = deployments.as_array().is_some_and(Vec::is_empty);
        if live == 0 && idle {
            break;
        }
        if Instant::now() > deadline {
            bail!("{live} tasks under {group} still live after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(json!({"mode": "remove", "group": group, "existed": exists, "ms": ms(t0.elapsed())}))
}
