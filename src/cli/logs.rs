//! `meso logs TASK|APP [-f] [--stderr]`: a task's stdout (or stderr) through
//! the master's `/files/read`, which relays to the task's agent, so it works
//! from any machine that reaches a master.
//!
//! ```text
//!  NAME ─▶ task::resolve ─▶ one task, or an app's live tasks
//!  each: GET /files/read?path=/tasks/<id>/stdout&offset=N ─▶ whole lines
//!        (one task: as they are; several: each line after `[name] `)
//!  -f: again every 300 ms; an app's new tasks (a restart, a scale-up) join
//!      as they appear, ended ones are read to their end and dropped
//! ```
//!
//! Several tasks' lines are interleaved as each read brings them, not by
//! time (the files carry no timestamps).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use reqwest::{Method, StatusCode};

use super::target::{Api, ClusterArgs};
use super::task::{self, Task};

#[derive(Args)]
pub struct LogsArgs {
    /// A task id (or the start of one), or an app id for all its tasks
    name: String,
    /// Keep printing what the tasks write (Ctrl-C stops)
    #[arg(long, short)]
    follow: bool,
    /// Print stderr instead of stdout
    #[arg(long)]
    stderr: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// One file being read.
struct Source {
    prefix: Option<String>,
    offset: u64,
    partial: String,
    live: bool,
}

const POLL: Duration = Duration::from_millis(300);
/// How often `-f` on an app looks for its new tasks.
const RESOLVE_EVERY: Duration = Duration::from_secs(2);

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let api = args.cluster.api()?;
    let file = if args.stderr { "stderr" } else { "stdout" };
    let tasks = task::resolve(&api, &args.name).await?;
    let app = super::app_file::absolute(&args.name);
    let by_app = tasks
        .iter()
        .all(|t| t.id != args.name && t.app.as_deref() == Some(app.as_str()));
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    add(&mut sources, &tasks, by_app);
    let mut resolved = Instant::now();
    loop {
        let mut wrote = false;
        for (id, source) in sources.iter_mut() {
            wrote |= read(&api, id, file, source, args.follow).await?;
        }
        if !args.follow {
            return Ok(());
        }
        if by_app && resolved.elapsed() > RESOLVE_EVERY {
            resolved = Instant::now();
            if let Ok(now) = task::resolve(&api, &args.name).await {
                let live: Vec<&str> = now.iter().map(|t| t.id.as_str()).collect();
                for (id, s) in sources.iter_mut() {
                    s.live = live.contains(&id.as_str());
                }
                add(&mut sources, &now, true);
            }
        }
        if !wrote {
            tokio::time::sleep(POLL).await;
        }
    }
}

fn add(sources: &mut BTreeMap<String, Source>, tasks: &[Task], prefixed: bool) {
    for t in tasks {
        sources.entry(t.id.clone()).or_insert_with(|| Source {
            prefix: prefixed.then(|| short_name(t)),
            offset: 0,
            partial: String::new(),
            live: t.live,
        });
    }
}

/// The id as `meso task list` shows it, so a line's prefix can be pasted
/// into `meso logs` or `meso exec`.
fn short_name(t: &Task) -> String {
    task::short_id(&t.id).to_string()
}

/// Reads what is new in one task's file and prints its whole lines; true if
/// anything was read. An ended task's last partial line is printed too.
async fn read(
    api: &Api,
    id: &str,
    file: &str,
    source: &mut Source,
    follow: bool,
) -> anyhow::Result<bool> {
    let mut any = false;
    loop {
        let path = format!(
            "/files/read?path=/tasks/{}/{file}&offset={}&length={}",
            urlencode(id),
            source.offset,
            crate::agent::files::READ_CAP
        );
        let answer = api.call(Method::GET, &path, None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            // Not there yet (a task just launched), or its sandbox is gone.
            return Ok(any);
        }
        let body = answer.ok(&format!("{file} of task {id}"))?;
        let data = body["data"].as_str().unwrap_or("");
        if data.is_empty() {
            break;
        }
        any = true;
        source.offset += data.len() as u64;
        source.partial.push_str(data);
        print_lines(source, false);
    }
    if !follow || !source.live {
        print_lines(source, true);
    }
    Ok(any)
}

fn print_lines(source: &mut Source, all: bool) {
    let mut out = std::io::stdout().lock();
    let cut = if all {
        source.partial.len()
    } else {
        match source.partial.rfind('\n') {
            Some(i) => i + 1,
            None => return,
        }
    };
    let text: String = source.partial.drain(..cut).collect();
    match &source.prefix {
        None => {
            let _ = out.write_all(text.as_bytes());
        }
        Some(p) => {
            for line in text.lines() {
                let _ = writeln!(out, "[{p}] {line}");
            }
        }
    }
    let _ = out.flush();
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
