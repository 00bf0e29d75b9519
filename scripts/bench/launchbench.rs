//! Launch benchmark for `scripts/bench/tasks.sh`: launches tasks through a master's
//! operator API and times them, one JSON line per measurement on stdout.
//!
//! ```text
//! launchbench latency --master ADDR --agent-id ID --kind process|docker --count N
//!                     [--network host|bridge] [--gap-ms MS] [--floor] [--samples FILE]
//!                       one task at a time: LAUNCH_TASKS 200 (committed, STAGING) ─▶
//!                       TASK_RUNNING committed on the master; p50/p99/max (with
//!                       --floor, a spawn of /bin/true timed before each launch);
//!                       then KILL_TASK every task and wait until all have ended
//! launchbench fill    --master ADDR --agent-id ID --count N --batch B
//!                       N `sleep 600` process tasks, B per LAUNCH_TASKS call; waits
//!                       until all are RUNNING and leaves them running
//! launchbench kill    --master ADDR --prefix P
//!                       KILL_TASK every live task whose id starts with P; waits for ends
//! launchbench wait-agent --master ADDR
//!                       waits until an agent is active; prints its id
//! launchbench spawn   --count N [-- COMMAND...]
//!                       the floor: spawn and wait for /bin/true (or COMMAND) N times
//! ```
//!
//! How RUNNING is seen, cheaply: the master has no per-task or change stream yet,
//! so the loop polls `GET /metrics/snapshot` (a few hundred bytes, no registry lock)
//! for `registrar/raft/applied_index` every `--poll-us`, or every 1% of the time the
//! launch has taken so far if that is longer, and reads the task
//! (`GET /master/tasks?task_id=`, one task rendered however many the master holds)
//! only when that index moves (two or three times per launch). The moment RUNNING
//! counts as seen is the poll that first showed the index at which the task was
//! RUNNING; if the index moved again during the read of the task, the end of
//! that read counts instead (later, never earlier than the truth).
//!
//! Each sample also carries the statuses' own timestamps (STAGING: the master as it
//! proposes the launch; STARTING and RUNNING: the agent as it records them), so the
//! time splits into launch call, LAUNCH to the agent, agent work, and the RUNNING
//! update's way back through Raft. All clocks are this machine's.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "task launch benchmark for scripts/bench/tasks.sh")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Launch tasks one at a time; time LAUNCH_TASKS 200 to TASK_RUNNING
    Latency {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Image of docker tasks
        #[arg(long, default_value = "meso-test/busybox:latest")]
        image: String,
        /// Network of docker tasks (meso's default is HOST)
        #[arg(long, value_enum, default_value_t = Network::Host)]
        network: Network,
        /// Task ids are PREFIX-<n>
        #[arg(long, default_value = "lb")]
        prefix: String,
        /// Microseconds between polls of the applied index, at least; a launch
        /// that has taken T so far is polled every T/100 (1% resolution)
        #[arg(long, default_value_t = 250)]
        poll_us: u64,
        /// Milliseconds of pause between one task RUNNING and the next launch
        #[arg(long, default_value_t = 0)]
        gap_ms: u64,
        /// Before each launch, time a spawn of /bin/true (the floor, side by side)
        #[arg(long)]
        floor: bool,
        /// Append one JSON line per launch here
        #[arg(long)]
        samples: Option<String>,
        /// Seconds a launch may take before the run fails
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Launch N process tasks in batches; wait until all are RUNNING
    Fill {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value = "fill")]
        prefix: String,
        #[arg(long, default_value_t = 300.0)]
        timeout: f64,
    },
    /// Kill every live task whose id starts with PREFIX; wait until all have ended
    Kill {
        #[arg(long)]
        master: String,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
    },
    /// Wait until an agent is active; print its id
    WaitAgent {
        #[arg(long)]
        master: String,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// Fork+exec+wait of a command (/bin/true): the floor of any process launch
    Spawn {
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// The command and its arguments
        #[arg(last = true, default_values_t = ["/bin/true".to_string()])]
        command: Vec<String>,
    },
}

#[derive(clap::Args)]
struct Target {
    /// The leading master's HTTP address (host:port or URL)
    #[arg(long)]
    master: String,
    #[arg(long)]
    agent_id: String,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Kind {
    Process,
    Docker,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Network {
    Host,
    Bridge,
}

/// Per-task resources: small enough for a thousand on one agent.
const CPUS: f64 = 0.1;
const MEM_MB: f64 = 16.0;

fn main() -> anyhow::Result<()> {
    // One thread: the poll loop sleeps with std::thread::sleep, whose sub-millisecond
    // resolution tokio's timer lacks, and nothing else needs to run meanwhile.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = runtime.block_on(run(Cli::parse()))?;
    println!("{out}");
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    match cli.mode {
        Mode::Latency {
            target,
            kind,
            count,
            image,
            network,
            prefix,
            poll_us,
            gap_ms,
            floor,
            samples,
            timeout,
        } => {
            let api = Api::new(http, &target.master);
            let bench = Latency {
                api: &api,
                agent_id: &target.agent_id,
                kind,
                image: &image,
                network,
                poll: Duration::from_micros(poll_us),
                gap: Duration::from_millis(gap_ms),
                floor,
                timeout: Duration::from_secs_f64(timeout),
            };
            bench.run(count, &prefix, samples.as_deref()).await
        }
        Mode::Fill {
            target,
            count,
            batch,
            prefix,
            timeout,
        } => {
            let api = Api::new(http, &target.master);
            fill(
                &api,
                &target.agent_id,
                count,
                batch.max(1),
                &prefix,
                Duration::from_secs_f64(timeout),
            )
            .await
        }
        Mode::Kill {
            master,
            prefix,
            timeout,
        } => {
            let api = Api::new(http, &master);
            let ids: Vec<String> = api
                .tasks()
                .await?
                .iter()
                .filter(|t| t.id.starts_with(&prefix) && !is_terminal(&t.state))
                .map(|t| t.id.clone())
                .collect();
            let t0 = Instant::now();
            kill_all(&api, &ids, Duration::from_secs_f64(timeout)).await?;
            Ok(json!({
                "mode": "kill",
                "prefix": prefix,
                "killed": ids.len(),
                "ms": ms(t0.elapsed()),
            }))
        }
        Mode::WaitAgent { master, timeout } => {
            let api = Api::new(http, &master);
            let deadline = Instant::now() + Duration::from_secs_f64(timeout);
            loop {
                let slaves = api.get("/master/slaves").await.ok();
                let active = slaves.as_ref().and_then(|s| {
                    s["slaves"]
                        .as_array()?
                        .iter()
                        .find(|a| a["active"] == true)?["id"]
                        .as_str()
                        .map(String::from)
                });
                if let Some(id) = active {
                    return Ok(json!({"mode": "wait-agent", "agent_id": id}));
                }
                if Instant::now() > deadline {
                    bail!("no agent active on {master} within {timeout} s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Mode::Spawn { count, command } => spawn_floor(count, &command),
    }
}

// ---------------------------------------------------------------- the master's API

struct Api {
    http: reqwest::Client,
    base: String,
}

/// A task as `/master/tasks` shows it, reduced to what is timed.
struct TaskView {
    id: String,
    state: String,
    /// (state, timestamp) of each status, oldest first.
    statuses: Vec<(String, f64)>,
    message: Option<String>,
}

impl Api {
    fn new(http: reqwest::Client, addr: &str) -> Self {
        let addr = addr.trim().trim_end_matches('/');
        let base = if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        Self { http, base }
    }

    async fn call(&self, body: &Value) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let answer = self
            .http
            .post(format!("{}/api/v1", self.base))
            .json(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        let status = answer.status();
        let bytes = answer.bytes().await?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{} answered {status}: {}",
                body["type"],
                String::from_utf8_lossy(&bytes).trim()
            );
        }
        Ok((status, value))
    }

    async fn launch(&self, tasks: Vec<Value>) -> anyhow::Result<Value> {
        let body = json!({"type": "LAUNCH_TASKS", "launch_tasks": {"tasks": tasks}});
        Ok(self.call(&body).await?.1)
    }

    async fn kill(&self, id: &str) -> anyhow::Result<()> {
        let body = json!({"type": "KILL_TASK", "kill_task": {"task_id": id}});
        self.call(&body).await.map(|_| ())
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(30))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn applied_index(&self) -> anyhow::Result<u64> {
        let v = self.get("/metrics/snapshot").await?;
        v["registrar/raft/applied_index"]
            .as_f64()
            .map(|x| x as u64)
            .context("/metrics/snapshot without registrar/raft/applied_index")
    }

    /// The task as `/master/tasks?task_id=` shows it: one task rendered,
    /// however many the registry holds.
    async fn task(&self, id: &str) -> anyhow::Result<Option<TaskView>> {
        let v: Value = self
            .http
            .get(format!("{}/master/tasks", self.base))
            .query(&[("task_id", id)])
            .timeout(Duration::from_secs(30))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let tasks = v["tasks"]
            .as_array()
            .context("/master/tasks without tasks")?;
        Ok(tasks.iter().map(task_view).find(|t| t.id == id))
    }

    async fn tasks(&self) -> anyhow::Result<Vec<TaskView>> {
        let v = self.get("/master/tasks").await?;
        let tasks = v["tasks"]
            .as_array()
            .context("/master/tasks without tasks")?;
        Ok(tasks.iter().map(task_view).collect())
    }
}

fn task_view(t: &Value) -> TaskView {
    let statuses: Vec<(String, f64)> = t["statuses"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["state"].as_str().unwrap_or_default().to_string(),
                        s["timestamp"].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let message = t["statuses"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|s| s["message"].as_str())
        .map(String::from);
    TaskView {
        id: t["id"].as_str().unwrap_or_default().to_string(),
        state: t["state"].as_str().unwrap_or_default().to_string(),
        statuses,
        message,
    }
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_ERROR"
            | "TASK_LOST"
            | "TASK_DROPPED"
            | "TASK_GONE"
    )
}

fn task_spec(kind: Kind, id: &str, agent_id: &str, image: &str, network: Network) -> Value {
    match kind {
        Kind::Process => json!({
            "task_id": id,
            "agent_id": agent_id,
            "cpus": CPUS,
            "mem": MEM_MB,
            "command": {"value": "sleep 600"},
        }),
        // `sleep` as the container's pid 1 ignores SIGTERM: no grace, or every
        // kill would wait it out.
        Kind::Docker => json!({
            "task_id": id,
            "agent_id": agent_id,
            "cpus": CPUS,
            "mem": MEM_MB,
            "command": {"shell": false, "value": "sleep", "arguments": ["600"]},
            "container": {"type": "DOCKER", "docker": {
                "image": image,
                "network": network_name(network),
            }},
            "kill_grace_period_seconds": 0,
        }),
    }
}

fn wall_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Nearest-rank percentile of sorted values; NaN when there are none.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn sorted(mut xs: Vec<f64>) -> Vec<f64> {
    xs.retain(|x| x.is_finite());
    xs.sort_by(f64::total_cmp);
    xs
}

/// CPU seconds this process has used (user + system).
fn own_cpu_secs() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

// ---------------------------------------------------------------- latency

struct Latency<'a> {
    api: &'a Api,
    agent_id: &'a str,
    kind: Kind,
    image: &'a str,
    network: Network,
    poll: Duration,
    gap: Duration,
    floor: bool,
    timeout: Duration,
}

/// One launch, timed.
struct Sample {
    id: String,
    /// LAUNCH_TASKS sent → its 200.
    call: Duration,
    /// The 200 → RUNNING seen committed.
    to_running: Duration,
    accepted_wall: f64,
    seen_wall: f64,
    staging_ts: f64,
    starting_ts: f64,
    running_ts: f64,
    polls: u32,
    reads: u32,
    /// A spawn of /bin/true just before the launch, if asked for.
    floor: Option<Duration>,
}

impl Sample {
    fn json(&self, kind: Kind, network: Option<Network>) -> Value {
        let d = |a: f64, b: f64| round3((b - a) * 1000.0);
        json!({
            "kind": kind_name(kind),
            "network": network.map(network_name),
            "task": self.id,
            "ms": ms(self.to_running),
            "call_ms": ms(self.call),
            // STAGING (master, before the proposal) → the client holds the 200
            "staging_to_accepted_ms": d(self.staging_ts, self.accepted_wall),
            // the 200 → the agent recorded STARTING (may be negative: the LAUNCH
            // event leaves before the 200 does)
            "accepted_to_starting_ms": d(self.accepted_wall, self.starting_ts),
            // STARTING → RUNNING, both on the agent: sandbox, containerizer
            "starting_to_running_ms": d(self.starting_ts, self.running_ts),
            // the agent recorded RUNNING → the master applied it and we saw it
            "running_to_seen_ms": d(self.running_ts, self.seen_wall),
            "polls": self.polls,
            "reads": self.reads,
            "floor_ms": self.floor.map(ms),
            "accepted_wall": self.accepted_wall,
            "seen_wall": self.seen_wall,
        })
    }
}

fn network_name(network: Network) -> &'static str {
    match network {
        Network::Host => "HOST",
        Network::Bridge => "BRIDGE",
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Process => "process",
        Kind::Docker => "docker",
    }
}

impl Latency<'_> {
    /// The docker network, for docker tasks.
    fn network(&self) -> Option<Network> {
        (self.kind == Kind::Docker).then_some(self.network)
    }

    async fn run(
        &self,
        count: usize,
        prefix: &str,
        samples: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut file = match samples {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {path}"))?,
            ),
            None => None,
        };
        // Warm the connection and check the master answers.
        self.api.applied_index().await?;
        let cpu0 = own_cpu_secs();
        let wall0 = Instant::now();
        let mut launched = Vec::new();
        let mut done = Vec::new();
        let mut failure = None;
        for n in 0..count {
            if n > 0 && !self.gap.is_zero() {
                tokio::time::sleep(self.gap).await;
            }
            let id = format!("{prefix}-{n:04}");
            let floor = if self.floor {
                Some(spawn_once(&["/bin/true".to_string()])?)
            } else {
                None
            };
            launched.push(id.clone());
            match self.one(&id).await {
                Ok(mut sample) => {
                    sample.floor = floor;
                    if let Some(f) = file.as_mut() {
                        writeln!(f, "{}", sample.json(self.kind, self.network()))?;
                    }
                    done.push(sample);
                }
                Err(e) => {
                    failure = Some(e.context(format!("launch {id}")));
                    break;
                }
            }
        }
        let cpu = own_cpu_secs() - cpu0;
        let wall = wall0.elapsed().as_secs_f64();
        // Kill what was launched, whatever happened; report the first problem.
        let killed = kill_all(self.api, &launched, Duration::from_secs(120)).await;
        if let Some(e) = failure {
            return Err(e);
        }
        killed?;

        let col = |f: &dyn Fn(&Sample) -> f64| sorted(done.iter().map(f).collect());
        let total = col(&|s| s.to_running.as_secs_f64() * 1000.0);
        let floor = col(&|s| s.floor.map_or(f64::NAN, |f| f.as_secs_f64() * 1000.0));
        let median_of = |f: &dyn Fn(&Sample) -> f64| round3(pct(&col(f), 0.5));
        Ok(json!({
            "mode": "latency",
            "kind": kind_name(self.kind),
            "network": self.network().map(network_name),
            "count": done.len(),
            "poll_us": self.poll.as_micros() as u64,
            "gap_ms": self.gap.as_millis() as u64,
            "p50_ms": round3(pct(&total, 0.50)),
            "p99_ms": round3(pct(&total, 0.99)),
            "max_ms": round3(total.last().copied().unwrap_or(f64::NAN)),
            "min_ms": round3(total.first().copied().unwrap_or(f64::NAN)),
            "floor_p50_ms": round3(pct(&floor, 0.50)),
            "floor_p99_ms": round3(pct(&floor, 0.99)),
            "call_p50_ms": median_of(&|s| s.call.as_secs_f64() * 1000.0),
            "staging_to_accepted_p50_ms": median_of(&|s| (s.accepted_wall - s.staging_ts) * 1000.0),
            "accepted_to_starting_p50_ms": median_of(&|s| (s.starting_ts - s.accepted_wall) * 1000.0),
            "starting_to_running_p50_ms": median_of(&|s| (s.running_ts - s.starting_ts) * 1000.0),
            "running_to_seen_p50_ms": median_of(&|s| (s.seen_wall - s.running_ts) * 1000.0),
            "polls_per_launch": round3(done.iter().map(|s| f64::from(s.polls)).sum::<f64>() / done.len().max(1) as f64),
            "reads_per_launch": round3(done.iter().map(|s| f64::from(s.reads)).sum::<f64>() / done.len().max(1) as f64),
            // The observer's own CPU while launching, as % of one core.
            "observer_cpu_pct": round3(cpu / wall * 100.0),
        }))
    }

    async fn one(&self, id: &str) -> anyhow::Result<Sample> {
        let spec = task_spec(self.kind, id, self.agent_id, self.image, self.network);
        let sent = Instant::now();
        let answer = self.api.launch(vec![spec]).await?;
        let accepted = Instant::now();
        let accepted_wall = wall_secs();
        let state = answer["launch_tasks"]["tasks"][0]["state"]
            .as_str()
            .unwrap_or_default();
        if state != "TASK_STAGING" {
            bail!("recorded as {state}, not TASK_STAGING: {answer}");
        }

        let deadline = accepted + self.timeout;
        let mut seen_index = None;
        let (mut polls, mut reads) = (0u32, 0u32);
        let mut last_read = accepted;
        loop {
            let index = self.api.applied_index().await?;
            let polled = Instant::now();
            let polled_wall = wall_secs();
            polls += 1;
            // Read the task when the index moved, and now and then regardless.
            if seen_index != Some(index) || polled - last_read > Duration::from_millis(100) {
                seen_index = Some(index);
                let task = self
                    .api
                    .task(id)
                    .await?
                    .with_context(|| format!("{id} is not in /master/tasks"))?;
                reads += 1;
                last_read = Instant::now();
                if task.state == "TASK_RUNNING" {
                    // Did the index move while we read? Then RUNNING may have
                    // come with the later entry: count the end of the read.
                    let after = self.api.applied_index().await?;
                    let (seen, seen_wall) = if after == index {
                        (polled, polled_wall)
                    } else {
                        (last_read, wall_secs())
                    };
                    let ts = |state: &str| {
                        task.statuses
                            .iter()
                            .find(|(s, _)| s == state)
                            .map(|(_, t)| *t)
                            .unwrap_or(f64::NAN)
                    };
                    return Ok(Sample {
                        id: id.to_string(),
                        call: accepted - sent,
                        to_running: seen - accepted,
                        accepted_wall,
                        seen_wall,
                        staging_ts: ts("TASK_STAGING"),
                        starting_ts: ts("TASK_STARTING"),
                        running_ts: ts("TASK_RUNNING"),
                        polls,
                        reads,
                        floor: None,
                    });
                }
                if is_terminal(&task.state) {
                    bail!(
                        "ended as {} before running: {}",
                        task.state,
                        task.message.as_deref().unwrap_or("")
                    );
                }
            }
            if Instant::now() > deadline {
                bail!("not RUNNING within {:?}", self.timeout);
            }
            std::thread::sleep(self.poll.max(accepted.elapsed() / 100));
        }
    }
}

/// KILL_TASK each task (not yet ended), then wait until every one has ended.
async fn kill_all(api: &Api, ids: &[String], timeout: Duration) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    let mut first_error = None;
    for id in ids {
        if let Err(e) = api.kill(id).await {
            first_error.get_or_insert(e);
        }
    }
    loop {
        let tasks = api.tasks().await?;
        let live: Vec<&str> = tasks
            .iter()
            .filter(|t| ids.contains(&t.id) && !is_terminal(&t.state))
            .map(|t| t.id.as_str())
            .collect();
        if live.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} tasks still live {timeout:?} after KILL_TASK, e.g. {}",
                live.len(),
                live[0]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match first_error {
        Some(e) => Err(e.context("KILL_TASK")),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------- fill

async fn fill(
    api: &Api,
    agent_id: &str,
    count: usize,
    batch: usize,
    prefix: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let ids: Vec<String> = (0..count).map(|n| format!("{prefix}-{n:04}")).collect();
    let t0 = Instant::now();
    for chunk in ids.chunks(batch) {
        let specs = chunk
            .iter()
            .map(|id| task_spec(Kind::Process, id, agent_id, "", Network::Host))
            .collect();
        let answer = api.launch(specs).await?;
        let tasks = answer["launch_tasks"]["tasks"].as_array();
        let staged = tasks.map_or(0, |a| {
            a.iter().filter(|t| t["state"] == "TASK_STAGING").count()
        });
        if staged != chunk.len() {
            bail!(
                "{} of {} tasks recorded STAGING: {answer}",
                staged,
                chunk.len()
            );
        }
    }
    let launched = t0.elapsed();
    let deadline = t0 + timeout;
    loop {
        let tasks = api.tasks().await?;
        let mine: Vec<&TaskView> = tasks.iter().filter(|t| ids.contains(&t.id)).collect();
        if let Some(bad) = mine.iter().find(|t| is_terminal(&t.state)) {
            bail!(
                "{} ended as {}: {}",
                bad.id,
                bad.state,
                bad.message.as_deref().unwrap_or("")
            );
        }
        let running = mine.iter().filter(|t| t.state == "TASK_RUNNING").count();
        if running == count {
            break;
        }
        if Instant::now() > deadline {
            bail!("{running} of {count} tasks RUNNING after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(json!({
        "mode": "fill",
        "count": count,
        "batch": batch,
        "launch_calls_ms": ms(launched),
        // Resolution: the 200 ms poll of /master/tasks.
        "all_running_ms": ms(t0.elapsed()),
    }))
}

// ---------------------------------------------------------------- spawn floor

/// Spawns the command and waits for it; how long that took.
fn spawn_once(command: &[String]) -> anyhow::Result<Duration> {
    let (program, args) = command.split_first().context("spawn: no command")?;
    let t0 = Instant::now();
    let status = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {program}"))?;
    let took = t0.elapsed();
    if !status.success() {
        bail!("{program} exited with {status}");
    }
    Ok(took)
}

fn spawn_floor(count: usize, command: &[String]) -> anyhow::Result<Value> {
    let mut times = Vec::new();
    for _ in 0..count {
        times.push(spawn_once(command)?.as_secs_f64() * 1000.0);
    }
    let times = sorted(times);
    Ok(json!({
        "mode": "spawn",
        "command": command.join(" "),
        "count": count,
        "p50_ms": round3(pct(&times, 0.50)),
        "p99_ms": round3(pct(&times, 0.99)),
    }))
}
