//! A real meso cluster for integration tests, started and stopped by the
//! test: minimesos's JUnit rule, without Docker images or container IPs.
//!
//! ```text
//!  Cluster::builder().agents(2).start().await
//!     ─▶ meso up --preset ci --http 127.0.0.1:0 --dns 127.0.0.1:0 --data-dir <temp>
//!        (a child process; it dies with the test process: PR_SET_PDEATHSIG)
//!     ─▶ reads its export lines ─▶ Cluster { master, marathon_url, dns }
//!  drop(cluster)
//!     ─▶ meso down --purge --data-dir <temp>: apps removed, tasks killed,
//!        cluster stopped, data gone (SIGKILL if that fails)
//! ```
//!
//! The cluster is the `meso` executable, not this library's code run in the
//! test's process: process tasks are forked by `meso task-launcher`, a
//! subcommand of that executable, and a test binary has none. It is found in
//! [`Builder::binary`], else `$MESO_BIN`, else `meso` on `PATH`.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let cluster = meso::testing::Cluster::builder().agents(2).start().await?;
//! let apps = reqwest::get(format!("{}/v2/apps", cluster.marathon_url())).await?;
//! assert!(apps.status().is_success());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long `meso up` may take to get ready (it takes well under a second;
/// this is for loaded CI machines).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How a [`Cluster`] is started.
#[derive(Debug, Clone)]
pub struct Builder {
    masters: usize,
    agents: usize,
    binary: Option<PathBuf>,
    config: Option<String>,
    preset: String,
}

/// A running cluster; dropping it stops it and removes everything it made.
pub struct Cluster {
    child: Option<Child>,
    binary: PathBuf,
    /// The temporary directory holding the data dir, config and log.
    root: PathBuf,
    dir: PathBuf,
    exports: BTreeMap<String, String>,
    log: PathBuf,
}

impl Cluster {
    pub fn builder() -> Builder {
        Builder {
            masters: 1,
            agents: 1,
            binary: None,
            config: None,
            preset: "ci".into(),
        }
    }

    /// A master's HTTP address, `127.0.0.1:PORT` (as `$MESOS_MASTER`).
    pub fn master(&self) -> &str {
        self.exports.get("MESOS_MASTER").map_or("", String::as_str)
    }

    /// `http://127.0.0.1:PORT`: the Mesos endpoints (`/master/state`, ...).
    pub fn master_url(&self) -> String {
        format!("http://{}", self.master())
    }

    /// The Marathon API's base URL (`$MARATHON_URL`).
    pub fn marathon_url(&self) -> &str {
        self.exports.get("MARATHON_URL").map_or("", String::as_str)
    }

    /// The DNS server's address, UDP and TCP (`$MESO_DNS`).
    pub fn dns(&self) -> &str {
        self.exports.get("MESO_DNS").map_or("", String::as_str)
    }

    /// The cluster's data dir (a fresh temporary directory).
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Every `export` line `meso up` printed, by name.
    pub fn exports(&self) -> &BTreeMap<String, String> {
        &self.exports
    }

    /// What `meso up` wrote to stderr, for a failing test's diagnosis.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the cluster now (dropping it does the same).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let down = std::process::Command::new(&self.binary)
            .args(["down", "--purge", "--timeout", "20s", "--data-dir"])
            .arg(&self.dir)
            .env_remove("MESO_PRESET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !down.is_ok_and(|s| s.success()) {
            let _ = child.start_kill();
        }
        // Reaped here, so no zombie outlives the cluster.
        for _ in 0..500 {
            if !matches!(child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Builder {
    /// How many masters (a Raft group in one process); 1 by default.
    pub fn masters(mut self, n: usize) -> Self {
        self.masters = n;
        self
    }

    /// How many agents; 1 by default.
    pub fn agents(mut self, n: usize) -> Self {
        self.agents = n;
        self
    }

    /// The `meso` executable to run.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// The preset read first (`ci` by default: fast timers, quiet logs).
    pub fn preset(mut self, name: &str) -> Self {
        self.preset = name.into();
        self
    }

    /// More configuration, as the YAML of a `--config` file (keys as in
    /// `presets/`, e.g. `resources: "cpus:4;mem:4096;ports:[31000-31100]"`).
    pub fn config(mut self, yaml: &str) -> Self {
        self.config = Some(yaml.into());
        self
    }

    pub async fn start(self) -> anyhow::Result<Cluster> {
        let binary = match self.binary {
            Some(b) => b,
            None => std::env::var_os("MESO_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("meso")),
        };
        let dir = std::env::temp_dir().join(format!("meso-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let data = dir.join("cluster");
        let log = dir.join("up.log");
        let mut command = Command::new(&binary);
        command
            .args(["up", "--preset", &self.preset, "--http", "127.0.0.1:0"])
            .args(["--dns", "127.0.0.1:0", "--masters"])
            .arg(self.masters.to_string())
            .arg("--agents")
            .arg(self.agents.to_string())
            .arg("--data-dir")
            .arg(&data);
        if let Some(yaml) = &self.config {
            let file = dir.join("config.yaml");
            std::fs::write(&file, yaml)?;
            command.arg("--config").arg(file);
        }
        // The test's own environment must not redirect the cluster.
        for var in [
            "MESOS_MASTER",
            "MESO_HTTP",
            "MESO_DATA_DIR",
            "MESO_DNS",
            "MESO_CONFIG",
        ] {
            command.env_remove(var);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe. The cluster gets SIGTERM when
        // the thread that started it ends (the test process, in practice).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot run {} (set MESO_BIN, or Builder::binary)",
                binary.display()
            )
        })?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut cluster = Cluster {
            child: Some(child),
            binary,
            root: dir,
            dir: data,
            exports: BTreeMap::new(),
            log,
        };
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                    cluster.exports.insert(k.into(), v.into());
                    if k == "MESO_DATA_DIR" {
                        return Ok(true);
                    }
                }
            }
            Ok::<_, std::io::Error>(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => {
                // Keep draining stdout so the cluster never blocks on it.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok(cluster)
            }
            _ => {
                let log = cluster.log();
                let last = log
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                bail!("meso up did not get ready: {last}")
            }
        }
    }
}
