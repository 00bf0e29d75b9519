//! `meso sim`: simulated agents (`crate::sim`) against a cluster, in the
//! foreground until Ctrl-C or SIGTERM.
//!
//! ```text
//!  start the fleet ─▶ progress on a terminal (stderr): subscribed k/N, then
//!                     launched / running / finished / killed as they change
//!                  ─▶ `export MESO_SIM_AGENTS=N` on stdout once every agent
//!                     has subscribed (the line scripts wait for)
//!                  ─▶ with --json, one JSON line of counters every --every s
//!  Ctrl-C ─▶ the agents stop (the masters mark them unreachable after their
//!            timeout) ─▶ the last counters
//! ```

use std::io::IsTerminal;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::model::{Resources, parse_attributes};
use crate::sim::{DEFAULT_RESOURCES, Fleet, Options, Snapshot};

#[derive(Args)]
pub struct SimArgs {
    /// How many agents to simulate
    #[arg(long)]
    agents: usize,
    /// Master addresses, comma-separated (followers redirect to the leader)
    #[arg(long, env = "MESOS_MASTER", value_delimiter = ',', required = true)]
    master: Vec<String>,
    /// Each agent's resources, Mesos syntax, over the default
    /// cpus:32;mem:131072;disk:1048576;ports:[31000-32000]
    #[arg(long)]
    resources: Option<String>,
    /// Each agent's attributes (`rack:r1;zone:a`)
    #[arg(long, default_value = "")]
    attributes: String,
    /// Hostnames are PREFIX-1 … PREFIX-N (two fleets on one cluster need two prefixes)
    #[arg(long, default_value = "sim")]
    prefix: String,
    /// The address agent 1 advertises; agent n advertises the n-1th after it
    #[arg(long, default_value = "127.1.0.1")]
    first_ip: Ipv4Addr,
    /// Tasks whose command would not end finish after this long (`30s`, `5m`);
    /// `true`, `exit N` and `sleep N` end as they would anyway
    #[arg(long, value_parser = humantime::parse_duration)]
    task_duration: Option<Duration>,
    /// SUBSCRIBE calls waiting for their answer at once
    #[arg(long, default_value_t = 256)]
    subscribe_concurrency: usize,
    /// Print the counters as a JSON line on stdout every --every seconds
    #[arg(long)]
    json: bool,
    /// Seconds between --json lines
    #[arg(long, default_value_t = 1.0)]
    every: f64,
    /// Log filter (tracing's syntax)
    #[arg(long, env = "MESO_LOG", default_value = "warn")]
    log: String,
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    super::init_logging(&args.log);
    let resources = Resources::default()
        .override_with(DEFAULT_RESOURCES)
        .map_err(anyhow::Error::msg)?;
    let resources = match &args.resources {
        Some(text) => resources.override_with(text).map_err(anyhow::Error::msg)?,
        None => resources,
    };
    let attributes = parse_attributes(&args.attributes).map_err(anyhow::Error::msg)?;
    let every = Duration::try_from_secs_f64(args.every)
        .ok()
        .filter(|d| !d.is_zero())
        .context("every: must be a positive number of seconds")?;
    let open_files = super::open_file_limit();
    if let Some(limit) = open_files.filter(|l| *l < args.agents as u64 + 256) {
        tracing::warn!(
            limit,
            agents = args.agents,
            "the open-file limit is below one socket per agent; raise it (ulimit -n)"
        );
    }
    let interrupted = super::interrupted();
    let fleet = Fleet::start(Options {
        masters: args.master.clone(),
        agents: args.agents,
        prefix: args.prefix.clone(),
        first_ip: args.first_ip,
        resources,
        attributes,
        task_duration: args.task_duration,
        subscribe_concurrency: args.subscribe_concurrency,
    })?;
    let started = Instant::now();
    let progress = Progress::new(fleet.len());
    let mut ready = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut next_line = Instant::now() + every;
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => break,
            _ = tick.tick() => {}
        }
        let stats = fleet.stats();
        progress.show(&stats);
        if !ready && stats.subscribed as usize >= fleet.len() {
            ready = true;
            progress.note(&format!(
                "{} agents subscribed in {:.2} s",
                fleet.len(),
                started.elapsed().as_secs_f64()
            ));
            println!("export MESO_SIM_AGENTS={}", fleet.len());
        }
        if args.json && Instant::now() >= next_line {
            next_line += every;
            println!("{}", line(&stats, started));
        }
    }
    progress.finish();
    let stats = fleet.stats();
    fleet.stop().await;
    if args.json {
        println!("{}", line(&stats, started));
    } else {
        eprintln!("{}", summary(&stats));
    }
    Ok(())
}

fn line(stats: &Snapshot, started: Instant) -> serde_json::Value {
    let mut v = json!(stats);
    v["elapsed_secs"] = json!((started.elapsed().as_secs_f64() * 1e3).round() / 1e3);
    v
}

fn summary(s: &Snapshot) -> String {
    format!(
        "{} subscribed · launched {} · running {} · finished {} · failed {} · killed {}",
        s.subscribed, s.launched, s.running, s.finished, s.failed, s.killed
    )
}

/// A bar while the agents subscribe, then a line of counters; on a terminal only.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(agents: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(agents as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} subscribed {pos}/{len} {bar:30} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { bar }
    }

    fn show(&self, stats: &Snapshot) {
        if let Some(bar) = &self.bar {
            bar.set_position(stats.subscribed);
            bar.set_message(format!(
                "· launched {} · running {} · finished {} · killed {}",
                stats.launched, stats.running, stats.finished, stats.killed
            ));
        }
    }

    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
