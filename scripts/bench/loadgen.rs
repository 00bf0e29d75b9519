//! Load generator for `scripts/bench/registry.sh`: drives a 3-member meso cluster or a
//! 3-member etcd cluster the same way and prints one JSON line per measurement.
//!
//! ```text
//! loadgen writes   --target meso|etcd --endpoints URL,.. --clients N --duration SECS
//!                    N clients, each in a closed loop (send, wait for the answer, send),
//!                    write to the leader; writes/s and latency over the timed window
//! loadgen failover --target meso|etcd --endpoints URL,.. --pids PID,.. --signal KILL|STOP
//!                    finds the leader, signals its process, then tries a write on the
//!                    survivors every few ms; time from the signal to the first 200
//! loadgen settle   --target meso|etcd --endpoints URL,..
//!                    waits until every member names the same leader and takes a write
//! loadgen ready-meso --bin PATH --data-dir DIR --runs N
//!                    spawns `meso up`, times its export line, /master/health 200, first write
//! loadgen ready-etcd --bin PATH --data-dir DIR --runs N --port P
//!                    spawns a one-member etcd, times its first successful write
//! ```
//!
//! A meso write is `PUT /master/weights` with one role (followers forward it to the
//! leader); an etcd write is `POST /v3/kv/put` on etcd's JSON gateway. Each answers 200
//! only once the write is committed by a quorum. Every target is on this machine.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "meso/etcd load generator for scripts/bench")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Closed-loop writes from N clients to the leader for a fixed time
    Writes {
        #[arg(long)]
        target: Target,
        #[arg(long, value_delimiter = ',')]
        endpoints: Vec<String>,
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Seconds measured, after the warm-up
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Seconds of unmeasured writes first (connections, caches)
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
    },
    /// Signal the leader's process; time until a survivor accepts a write
    Failover {
        #[arg(long)]
        target: Target,
        #[arg(long, value_delimiter = ',')]
        endpoints: Vec<String>,
        /// Process ids of the members, in the order of --endpoints
        #[arg(long, value_delimiter = ',')]
        pids: Vec<u32>,
        /// KILL (crash) or STOP (hung leader)
        #[arg(long)]
        signal: String,
        /// Milliseconds between write attempts
        #[arg(long, default_value_t = 5)]
        interval_ms: u64,
        /// Give up after this many seconds
        #[arg(long, default_value_t = 20.0)]
        timeout: f64,
    },
    /// Wait until all members agree on a leader and each takes a write
    Settle {
        #[arg(long)]
        target: Target,
        #[arg(long, value_delimiter = ',')]
        endpoints: Vec<String>,
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Time `meso up` from spawn to ready, on a fresh data dir each run
    ReadyMeso {
        #[arg(long)]
        bin: String,
        #[arg(long)]
        data_dir: String,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Extra arguments for `meso up` (e.g. "--masters 3")
        #[arg(long, default_value = "")]
        args: String,
    },
    /// Time a one-member etcd from spawn to its first committed write
    ReadyEtcd {
        #[arg(long)]
        bin: String,
        #[arg(long)]
        data_dir: String,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Client port; the peer port is the next one up
        #[arg(long)]
        port: u16,
    },
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Target {
    Meso,
    Etcd,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Meso => "meso",
            Target::Etcd => "etcd",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let out = match cli.mode {
        Mode::Writes {
            target,
            endpoints,
            clients,
            duration,
            warmup,
        } => {
            let endpoints = urls(&endpoints)?;
            writes(&http, target, &endpoints, clients, duration, warmup).await?
        }
        Mode::Failover {
            target,
            endpoints,
            pids,
            signal,
            interval_ms,
            timeout,
        } => {
            let endpoints = urls(&endpoints)?;
            if pids.len() != endpoints.len() {
                bail!(
                    "--pids names {} processes for {} endpoints",
                    pids.len(),
                    endpoints.len()
                );
            }
            let timeout = Duration::from_secs_f64(timeout);
            let interval = Duration::from_millis(interval_ms.max(1));
            failover(&http, target, &endpoints, &pids, &signal, interval, timeout).await?
        }
        Mode::Settle {
            target,
            endpoints,
            timeout,
        } => {
            let endpoints = urls(&endpoints)?;
            settle(&http, target, &endpoints, Duration::from_secs_f64(timeout)).await?
        }
        Mode::ReadyMeso {
            bin,
            data_dir,
            runs,
            args,
        } => ready_meso(&http, &bin, &data_dir, runs, &args).await?,
        Mode::ReadyEtcd {
            bin,
            data_dir,
            runs,
            port,
        } => ready_etcd(&http, &bin, &data_dir, runs, port).await?,
    };
    println!("{out}");
    Ok(())
}

fn urls(endpoints: &[String]) -> anyhow::Result<Vec<String>> {
    if endpoints.is_empty() {
        bail!("--endpoints: give at least one URL");
    }
    Ok(endpoints.iter().map(|e| base_url(e)).collect())
}

fn base_url(addr: &str) -> String {
    let addr = addr.trim().trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

// ---------------------------------------------------------------- one write, one leader

/// One committed write; `Ok(())` only on a 200.
async fn write_once(
    http: &reqwest::Client,
    target: Target,
    endpoint: &str,
    key: &str,
    seq: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let request = match target {
        Target::Meso => {
            let weight = 1.0 + (seq % 1000) as f64 / 1000.0;
            http.put(format!("{endpoint}/master/weights"))
                .json(&json!([{ "role": key, "weight": weight }]))
        }
        Target::Etcd => http.post(format!("{endpoint}/v3/kv/put")).json(&json!({
            "key": B64.encode(key),
            "value": B64.encode(format!("{}", 1.0 + (seq % 1000) as f64 / 1000.0)),
        })),
    };
    let answer = request.timeout(timeout).send().await?;
    let status = answer.status();
    let body = answer.bytes().await?;
    if status != reqwest::StatusCode::OK {
        bail!("{status}: {}", String::from_utf8_lossy(&body).trim());
    }
    Ok(())
}

/// Which member this endpoint believes leads: an index into `endpoints`, if known.
async fn leader_seen_by(
    http: &reqwest::Client,
    target: Target,
    endpoints: &[String],
    who: usize,
) -> anyhow::Result<Option<usize>> {
    let timeout = Duration::from_millis(500);
    match target {
        Target::Meso => {
            let answer = http
                .get(format!("{}/v2/leader", endpoints[who]))
                .timeout(timeout)
                .send()
                .await?;
            if answer.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let v: Value = answer.error_for_status()?.json().await?;
            let addr = v["leader"]
                .as_str()
                .context("/v2/leader without 'leader'")?;
            let url = base_url(addr);
            Ok(endpoints.iter().position(|e| *e == url))
        }
        Target::Etcd => {
            // Every member's status names the leader's member id; map ids to
            // endpoints by asking each member for its own id.
            let mut ids = Vec::new();
            let mut leader = None;
            for (i, e) in endpoints.iter().enumerate() {
                let status = etcd_status(http, e, timeout).await.ok();
                let id = status
                    .as_ref()
                    .and_then(|s| s["header"]["member_id"].as_str().map(String::from));
                if i == who {
                    leader = status
                        .as_ref()
                        .and_then(|s| s["leader"].as_str().map(String::from));
                }
                ids.push(id);
            }
            Ok(leader.and_then(|l| ids.iter().position(|id| id.as_deref() == Some(&l))))
        }
    }
}

async fn etcd_status(
    http: &reqwest::Client,
    endpoint: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    Ok(http
        .post(format!("{endpoint}/v3/maintenance/status"))
        .json(&json!({}))
        .timeout(timeout)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The leader as the first endpoint that answers sees it, retried for a few seconds.
async fn find_leader(
    http: &reqwest::Client,
    target: Target,
    endpoints: &[String],
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for who in 0..endpoints.len() {
            if let Ok(Some(l)) = leader_seen_by(http, target, endpoints, who).await {
                return Ok(l);
            }
        }
        if Instant::now() > deadline {
            bail!("no member of {endpoints:?} names a leader");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- writes

async fn writes(
    http: &reqwest::Client,
    target: Target,
    endpoints: &[String],
    clients: usize,
    duration: f64,
    warmup: f64,
) -> anyhow::Result<Value> {
    let leader = &endpoints[find_leader(http, target, endpoints).await?];
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let measure_to = measure_from + Duration::from_secs_f64(duration);
    let mut tasks = Vec::new();
    for c in 0..clients.max(1) {
        let http = http.clone();
        let leader = leader.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            let mut seq = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= measure_to {
                    break;
                }
                // Distinct keys per client; a bounded set, so the state stays small.
                let key = format!("bench-c{c}-k{}", seq % 64);
                let r =
                    write_once(&http, target, &leader, &key, seq, Duration::from_secs(10)).await;
                seq += 1;
                let done = Instant::now();
                if done < measure_from || done > measure_to {
                    continue;
                }
                match r {
                    Ok(()) => {
                        latencies_us.push((done - sent).as_micros().min(u32::MAX as u128) as u32)
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        // Do not spin on a refusing server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (latencies_us, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (lat, err, first) = t.await?;
        all.extend(lat);
        errors += err;
        if first_error.is_none() {
            first_error = first;
        }
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i] as f64 / 1000.0
    };
    Ok(json!({
        "mode": "writes",
        "target": target.name(),
        "endpoint": leader,
        "clients": clients,
        "duration_s": duration,
        "writes": all.len(),
        "writes_per_s": round1(all.len() as f64 / duration),
        "p50_ms": round3(pct(0.50)),
        "p99_ms": round3(pct(0.99)),
        "max_ms": round3(all.last().map(|&m| m as f64 / 1000.0).unwrap_or(f64::NAN)),
        "errors": errors,
        "first_error": first_error,
    }))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------- failover

async fn failover(
    http: &reqwest::Client,
    target: Target,
    endpoints: &[String],
    pids: &[u32],
    signal: &str,
    interval: Duration,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let victim = find_leader(http, target, endpoints).await?;
    let survivors: Arc<Vec<String>> = Arc::new(
        endpoints
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, e)| e.clone())
            .collect(),
    );
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, usize)>();

    let t0 = Instant::now();
    let status = Command::new("kill")
        .args(["-s", signal, &pids[victim].to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -s {signal} {} failed", pids[victim]);
    }
    let signalled_ms = t0.elapsed().as_secs_f64() * 1000.0;

    // A new attempt every `interval`, whatever the earlier ones are doing: a write
    // held by a member without a leader must not delay the next try.
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut attempts = 0usize;
    let deadline = t0 + timeout;
    let (done_at, via) = loop {
        tokio::select! {
            Some(first) = rx.recv() => break first,
            _ = ticker.tick() => {
                if Instant::now() > deadline {
                    bail!("{}: no survivor accepted a write within {timeout:?} of SIG{signal}", target.name());
                }
                let n = attempts;
                attempts += 1;
                let http = http.clone();
                let tx = tx.clone();
                let survivors = survivors.clone();
                tokio::spawn(async move {
                    let who = n % survivors.len();
                    let key = format!("failover-{}", n % 16);
                    if write_once(&http, target, &survivors[who], &key, n as u64, Duration::from_secs(1)).await.is_ok() {
                        let _ = tx.send((Instant::now(), who));
                    }
                });
            }
        }
    };
    let ms = (done_at - t0).as_secs_f64() * 1000.0;
    Ok(json!({
        "mode": "failover",
        "target": target.name(),
        "signal": signal,
        "victim": victim,
        "victim_endpoint": endpoints[victim],
        "accepted_by": survivors[via],
        "kill_ms": round3(signalled_ms),
        "ms": round3(ms),
        "attempts": attempts,
    }))
}

// ---------------------------------------------------------------- settle

async fn settle(
    http: &reqwest::Client,
    target: Target,
    endpoints: &[String],
    timeout: Duration,
) -> anyhow::Result<Value> {
    let t0 = Instant::now();
    let mut steady = 0;
    let mut last = String::new();
    loop {
        match agreed_and_writable(http, target, endpoints).await {
            Ok(leader) => {
                steady += 1;
                // Twice in a row, 200 ms apart: a node that just came back has
                // heard from the leader and stays a follower.
                if steady >= 2 {
                    return Ok(json!({
                        "mode": "settle",
                        "target": target.name(),
                        "leader": leader,
                        "ms": round3(t0.elapsed().as_secs_f64() * 1000.0),
                    }));
                }
            }
            Err(e) => {
                steady = 0;
                last = e.to_string();
            }
        }
        if t0.elapsed() > timeout {
            bail!(
                "{}: members did not settle within {timeout:?}: {last}",
                target.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn agreed_and_writable(
    http: &reqwest::Client,
    target: Target,
    endpoints: &[String],
) -> anyhow::Result<usize> {
    let mut leader = None;
    for who in 0..endpoints.len() {
        let seen = leader_seen_by(http, target, endpoints, who)
            .await?
            .ok_or_else(|| anyhow!("{} knows no leader", endpoints[who]))?;
        match leader {
            None => leader = Some(seen),
            Some(l) if l != seen => bail!("members disagree on the leader"),
            _ => {}
        }
    }
    for (who, e) in endpoints.iter().enumerate() {
        write_once(
            http,
            target,
            e,
            &format!("settle-{who}"),
            1,
            Duration::from_secs(2),
        )
        .await
        .with_context(|| format!("write via {e}"))?;
    }
    leader.context("no endpoints")
}

// ---------------------------------------------------------------- ready

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// SIGINT, as Ctrl-C would, then SIGKILL if it has not stopped in 5 s.
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-s", "INT", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

async fn poll_until_ok<F, Fut>(deadline: Instant, mut probe: F) -> anyhow::Result<Instant>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if probe().await {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("not ready in time");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn ready_meso(
    http: &reqwest::Client,
    bin: &str,
    data_dir: &str,
    runs: usize,
    args: &str,
) -> anyhow::Result<Value> {
    let (mut line_ms, mut health_ms, mut write_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut rss_mb = Vec::new();
    for run in 0..runs {
        let dir = format!("{data_dir}/up-{run}");
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(["up", "--http", "127.0.0.1:0", "--data-dir", &dir])
            .args(args.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let t0 = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("spawning {bin} up"))?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let api = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .context("meso up printed nothing for 20 s")??
                .ok_or_else(|| anyhow!("meso up exited before it was ready"))?;
            if let Some(addr) = line.strip_prefix("export MESOS_MASTER=") {
                break base_url(addr);
            }
        };
        let t_line = Instant::now();
        let deadline = t_line + Duration::from_secs(10);
        let t_health = poll_until_ok(deadline, || async {
            http.get(format!("{api}/master/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
        })
        .await?;
        let t_write = poll_until_ok(deadline, || async {
            write_once(http, Target::Meso, &api, "ready", 1, Duration::from_secs(2))
                .await
                .is_ok()
        })
        .await?;
        line_ms.push((t_line - t0).as_secs_f64() * 1000.0);
        health_ms.push((t_health - t0).as_secs_f64() * 1000.0);
        write_ms.push((t_write - t0).as_secs_f64() * 1000.0);
        // Idle memory: resident set after a second with nothing to do.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(kb) = child.id().and_then(resident_kb) {
            rss_mb.push(kb as f64 / 1024.0);
        }
        stop(&mut child).await;
    }
    let all = json!({ "line_ms": line_ms.clone(), "health_ms": health_ms.clone(), "write_ms": write_ms.clone() });
    Ok(json!({
        "mode": "ready",
        "target": "meso",
        "args": args,
        "runs": runs,
        "line_ms": round3(median(&mut line_ms)),
        "health_ms": round3(median(&mut health_ms)),
        "write_ms": round3(median(&mut write_ms)),
        "rss_mb": round3(median(&mut rss_mb)),
        "all": all,
    }))
}

/// VmRSS of a process, from /proc (Linux).
fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn ready_etcd(
    http: &reqwest::Client,
    bin: &str,
    data_dir: &str,
    runs: usize,
    port: u16,
) -> anyhow::Result<Value> {
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{}", port + 1);
    let mut write_ms = Vec::new();
    for run in 0..runs {
        let dir = format!("{data_dir}/etcd-up-{run}");
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(["--name", "solo", "--data-dir", &dir])
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &format!("solo={peer}"),
                "--initial-cluster-state",
                "new",
            ])
            .args(["--logger", "zap", "--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let t0 = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("spawning {bin}"))?;
        let t_write = poll_until_ok(t0 + Duration::from_secs(20), || async {
            write_once(
                http,
                Target::Etcd,
                &client,
                "ready",
                1,
                Duration::from_secs(2),
            )
            .await
            .is_ok()
        })
        .await?;
        write_ms.push((t_write - t0).as_secs_f64() * 1000.0);
        stop(&mut child).await;
    }
    let all = write_ms.clone();
    Ok(json!({
        "mode": "ready",
        "target": "etcd",
        "runs": runs,
        "write_ms": round3(median(&mut write_ms)),
        "all": { "write_ms": all },
    }))
}
