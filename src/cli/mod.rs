//! The command line: one file per command family. Errors end here as one line
//! on stderr (`error: what: why`) and exit code 1, or the code of an [`Exit`]
//! (the table in [`code`]); usage errors exit 2 (clap).
//!
//! ```text
//!  node commands:   up [-d] | master | agent | node      (config.rs, node.rs)
//!  the detached:    down | info                          (state_file.rs)
//!  client commands: status | app | task | logs | exec | members | dns
//!                   ─▶ target.rs: --master, else the data dir's state file,
//!                      else 127.0.0.1:5050 ─▶ the master's HTTP API
//! ```

mod agent;
mod app;
mod app_file;
mod app_wait;
mod completions;
mod detach;
mod dns;
mod down;
mod exec;
mod logs;
mod master;
mod members;
pub mod out;
mod sim;
pub mod state_file;
mod status;
pub mod target;
mod task;
mod up;
mod version;

/// Exit codes, the same for every command (`meso dns lookup` adds its own
/// meaning of 1: nothing found).
pub mod code {
    /// It failed: the reason is on stderr.
    pub const FAILURE: u8 = 1;
    /// Bad input: a flag (clap), or a file or request the cluster refused,
    /// naming the field.
    pub const BAD_INPUT: u8 = 2;
    /// No cluster answers at the address (or none runs from the data dir).
    pub const NO_CLUSTER: u8 = 3;
    /// The app or task named does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// `--wait`: the deployment failed, or did not finish within `--timeout`.
    pub const DEPLOY_FAILED: u8 = 5;

    pub const TABLE: &str = "\
Exit codes:
  0  success
  1  failure (the reason is on stderr)
  2  bad input: a flag, or an app file or request the cluster refused
  3  no cluster answering (start one with `meso up`, or pass --master)
  4  no such app or task
  5  the deployment failed or timed out (--wait)";
}

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "meso",
    version,
    about = "A whole Mesos-style cluster in one binary",
    propagate_version = true,
    after_help = code::TABLE
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a whole local cluster (in the foreground, or with -d in the background)
    Up(up::UpArgs),
    /// Stop the cluster `meso up` runs from a data dir (--purge: and remove it)
    Down(down::DownArgs),
    /// The cluster on one screen: leader, masters, agents, apps
    Status(status::StatusArgs),
    /// Print a running cluster's `export` lines (MESOS_MASTER, MARATHON_URL, ...)
    Info(status::InfoArgs),
    /// Deploy and manage Marathon apps
    #[command(subcommand)]
    App(app::AppCommand),
    /// List tasks
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// Print (or follow) the output of a task, or of every task of an app
    Logs(logs::LogsArgs),
    /// Run a command in a task's sandbox, or inside its container
    Exec(exec::ExecArgs),
    /// Print a shell completion script: `meso completions bash|zsh|fish`
    Completions(completions::CompletionsArgs),
    /// Run a master, with its scheduler (Marathon API) and DNS roles
    Master(master::MasterArgs),
    /// Run an agent: register with the masters and run their tasks
    Agent(agent::AgentArgs),
    /// Run the roles named by --roles (master, agent, scheduler, dns)
    Node(master::NodeArgs),
    /// List the masters of a cluster, or remove a dead one
    #[command(subcommand)]
    Members(members::MembersCommand),
    /// Simulated agents against a cluster: register, heartbeat, take tasks, run nothing
    Sim(sim::SimArgs),
    /// Ask the cluster's DNS: `meso dns lookup NAME`
    #[command(subcommand)]
    Dns(dns::DnsCommand),
    /// Print the version
    Version(version::VersionArgs),
    /// Internal: the agent's task launcher, which starts and reaps every process task
    #[command(hide = true)]
    TaskLauncher(crate::agent::containerizer::launcher::LauncherArgs),
}

impl Command {
    /// A client command, whose output is for a person or a pipe; not a node
    /// (or `sim`) that runs until stopped.
    fn writes_for_a_reader(&self) -> bool {
        !matches!(
            self,
            Command::Up(_)
                | Command::Master(_)
                | Command::Node(_)
                | Command::Agent(_)
                | Command::Sim(_)
                | Command::TaskLauncher(_)
        )
    }
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let cli = match cli.command {
        // Single-threaded, without a runtime: it clones the tasks.
        Command::TaskLauncher(args) => {
            let code = crate::agent::containerizer::launcher::run(args);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        command => Cli { command },
    };
    raise_open_file_limit();
    if cli.command.writes_for_a_reader() {
        // Like other Unix tools, end quietly when the reader of stdout goes
        // (`meso completions bash | head`) instead of Rust's default, a
        // panic in the print. Nodes keep SIGPIPE ignored; sockets never
        // raise it (std and tokio send with MSG_NOSIGNAL).
        // SAFETY: setting a signal's disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Down(args) => down::run(args).await,
            Command::Status(args) => status::status(args).await,
            Command::Info(args) => status::info(args),
            Command::App(cmd) => app::run(cmd).await,
            Command::Task(cmd) => task::run(cmd).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Exec(args) => exec::run(args).await,
            Command::Completions(args) => completions::run(args, Cli::command()),
            Command::Master(args) => master::run_master(args).await,
            Command::Node(args) => master::run_node(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Members(cmd) => members::run(cmd).await,
            Command::Sim(args) => sim::run(args).await,
            Command::Dns(cmd) => dns::run(cmd).await,
            Command::Version(args) => version::run(args),
            Command::TaskLauncher(_) => unreachable!("handled before the runtime starts"),
        }
    });
    // Background tasks may still hold sockets; do not wait on them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // An empty Exit passes a child's exit code on (`meso exec`).
            let silent = e
                .downcast_ref::<Exit>()
                .is_some_and(|x| x.message.is_empty());
            if !silent {
                eprintln!("error: {}", one_line(&format!("{e:#}")));
            }
            e.downcast_ref::<Exit>()
                .map_or(ExitCode::FAILURE, |exit| ExitCode::from(exit.code))
        }
    }
}

/// An error that ends the command with an exit code of its own, for commands
/// whose codes tell apart why they failed (`meso dns lookup`).
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Raises the soft limit on open files to the hard one, as Go programs do
/// at start: a master serves one socket per agent stream, and `meso sim`
/// holds one per simulated agent, far past the usual soft limit of 1,024.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The soft limit on open files, if it is known and finite.
pub(crate) fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Logs go to stderr, coloured only on a terminal.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when it is first polled: call it before telling anyone the node
/// is ready, so a SIGTERM sent right after the `export` lines is not lost (or
/// fatal).
pub fn interrupted() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        if let Ok((mut term, mut int)) = signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
