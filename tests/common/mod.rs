//! The harness the integration tests share: the real `meso` binary as OS
//! processes, on loopback, in parallel without port clashes.
//!
//! - Every cluster gets its own random loopback address `127.X.Y.Z` (all of
//!   127/8 is loopback on Linux) and a random port base below the ephemeral
//!   range, probed free before use, so static `--peers` lists can be written
//!   before any process starts and parallel tests never collide.
//! - [`Proc`] owns one child process. It learns the bound addresses from the
//!   `export` lines the process prints, sends stderr to a log file, and kills
//!   the process with SIGKILL on drop, so nothing outlives a panicking test (the
//!   log's tail is printed when a test fails, for the diagnosis).
//! - [`Cluster`] is a static three-master cluster (`--id N --peers ...`) whose
//!   members can be SIGKILLed and restarted on the same addresses and data dirs.

#![allow(dead_code)]

pub mod dns;
pub mod marathon;
mod ports;

// Each test binary takes the ones it needs.
#[allow(unused_imports)]
pub use ports::{free_port, free_ports, loopback, loopback_ip};

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_meso");

/// How long a process may take to print its export lines (a generous bound for
/// a loaded 2-core machine; not a performance assertion).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the tests wait for an election or for replication to converge.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- randomness

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random number that differs between processes, threads and calls.
pub fn random_u64() -> u64 {
    let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
    hi ^ lo ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------- processes

/// One `meso` process.
pub struct Proc {
    child: Option<Child>,
    pub name: String,
    /// HTTP address as printed (`MESOS_MASTER`).
    pub http: String,
    /// Raft address as printed (`MESO_RAFT`), for masters.
    pub raft: Option<String>,
    /// Master id as printed (`MESO_ID`).
    pub id: Option<u64>,
    /// Every `export NAME=VALUE` line it printed.
    pub exports: BTreeMap<String, String>,
    pub log: PathBuf,
}

/// Output of a process that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Waits up to `timeout` for `child` to exit; kills it and returns None if not.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `meso ARGS` to its end (at most `timeout`), capturing its output.
pub fn run(args: &[&str], timeout: Duration) -> Finished {
    run_env(args, &[], timeout)
}

/// [`run`] with extra environment variables.
pub fn run_env(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Finished {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("MESOS_MASTER")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meso");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let Some(status) = wait_or_kill(&mut child, timeout) else {
        panic!(
            "`meso {}` did not finish within {timeout:?}",
            args.join(" ")
        );
    };
    Finished {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

impl Proc {
    /// Starts `meso ARGS` and waits for it to print the export line `ready_key`
    /// (the last one it prints once ready). Panics, showing its log, if it exits
    /// or stays silent for [`START_TIMEOUT`].
    pub fn spawn(name: &str, args: &[String], log: &Path, ready_key: &str) -> Proc {
        Proc::spawn_env(name, args, log, ready_key, &[])
    }

    /// [`Proc::spawn`] with extra environment variables.
    pub fn spawn_env(
        name: &str,
        args: &[String],
        log: &Path,
        ready_key: &str,
        env: &[(&str, &str)],
    ) -> Proc {
        Proc::spawn_in(name, args, log, ready_key, env, None)
    }

    /// [`Proc::spawn_env`], started in the directory `cwd` (relative paths
    /// in `args` are relative to it).
    pub fn spawn_in(
        name: &str,
        args: &[String],
        log: &Path,
        ready_key: &str,
        env: &[(&str, &str)],
        cwd: Option<&Path>,
    ) -> Proc {
        let stderr = File::create(log).expect("create the process log");
        let mut command = Command::new(BIN);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        // Masters of one test often share an IP: their DNS takes a free port
        // unless the test names one (a flag or `env` wins over this).
        let mut child = command
            .args(args)
            .env("MESO_DNS", "127.0.0.1:0")
            .envs(env.iter().copied())
            .env_remove("MESOS_MASTER")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn meso");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        // Keeps draining stdout until EOF, so the child never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep reading so the pipe drains.
                }
            }
        });
        let mut proc = Proc {
            child: Some(child),
            name: name.to_string(),
            http: String::new(),
            raft: None,
            id: None,
            exports: BTreeMap::new(),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((k, v)) = line
                        .strip_prefix("export ")
                        .and_then(|kv| kv.split_once('='))
                    {
                        proc.exports.insert(k.to_string(), v.to_string());
                        if k == ready_key {
                            break;
                        }
                    }
                }
                Err(_) => {
                    let status = proc.child.as_mut().unwrap().try_wait().ok().flatten();
                    panic!(
                        "{name} (`meso {}`) did not get ready (exit status {status:?}); its log:\n{}",
                        args.join(" "),
                        proc.log_text()
                    );
                }
            }
        }
        proc.http = proc
            .exports
            .get("MESOS_MASTER")
            .cloned()
            .unwrap_or_default();
        proc.raft = proc.exports.get("MESO_RAFT").cloned();
        proc.id = proc.exports.get("MESO_ID").and_then(|v| v.parse().ok());
        proc
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("process running").id() as i32
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// SIGSTOP, and back only once every thread has stopped. `kill` returns
    /// when the stop is requested: the thread the kernel picks to take it may
    /// wait for a CPU while the others go on serving (seen in CI on a loaded
    /// machine: a request answered after the SIGSTOP).
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        let tasks = PathBuf::from(format!("/proc/{}/task", self.pid()));
        let stopped = || {
            fs::read_dir(&tasks)
                .into_iter()
                .flatten()
                .flatten()
                .all(|t| {
                    // The state follows the command name's closing parenthesis.
                    fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
                        stat.rsplit_once(')')
                            .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
                    })
                })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stopped() {
            assert!(Instant::now() < deadline, "pid {} did not stop", self.pid());
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGTERM, then waits (up to `timeout`) for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().expect("process running");
        match wait_or_kill(&mut child, timeout) {
            Some(status) => status,
            None => panic!(
                "{} did not stop within {timeout:?} of SIGTERM; its log:\n{}",
                self.name,
                self.log_text()
            ),
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let was_running = self.child.is_some();
        self.kill9();
        if was_running && std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "---- last log lines of {} ----\n{}",
                self.name,
                tail.join("\n")
            );
        }
    }
}

// ---------------------------------------------------------------- masters

/// Arguments of a single master that binds port 0 on a fresh loopback address.
pub fn single_master_args(ip: &str, data_dir: &Path) -> Vec<String> {
    vec![
        "master".into(),
        "--preset".into(),
        "ci".into(),
        "--http".into(),
        format!("{ip}:0"),
        "--raft".into(),
        format!("{ip}:0"),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ]
}

pub fn spawn_master(name: &str, args: &[String], log: &Path) -> Proc {
    Proc::spawn(name, args, log, "MESO_ID")
}

/// One master (`--preset ci`) on a fresh loopback address, its data dir and
/// log under `dir`; the address too, for the agents beside it.
pub fn spawn_single_master(dir: &Path) -> (String, Proc) {
    let ip = loopback_ip();
    let master = spawn_master(
        "master",
        &single_master_args(&ip, &dir.join("master")),
        &dir.join("master.log"),
    );
    (ip, master)
}

/// A static three-master cluster: three OS processes on one loopback address.
pub struct Cluster {
    pub ip: String,
    /// Ports `base .. base + 3` are the HTTP ports, `base + 3 .. base + 6` the
    /// Raft ports; `base + 6 .. base + 10` are free for joiners.
    pub base: u16,
    pub http: BTreeMap<u64, String>,
    pub raft: BTreeMap<u64, String>,
    pub procs: BTreeMap<u64, Proc>,
    extra: Vec<String>,
    starts: u32,
    /// Last, so it is removed after the processes are dropped: a failing
    /// test's process prints its log's last lines as it goes.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts masters 1, 2 and 3 and waits for them to agree on a leader.
    pub async fn start(extra: &[&str]) -> Cluster {
        let mut c = Self::new(extra);
        for id in 1..=3 {
            c.start_node(id);
        }
        c.leader().await;
        c
    }

    /// The cluster's addresses, no process started.
    pub fn new(extra: &[&str]) -> Cluster {
        let (ip, base) = loopback(10);
        let http = (1..=3)
            .map(|id| (id, format!("{ip}:{}", base + id as u16 - 1)))
            .collect();
        let raft = (1..=3)
            .map(|id| (id, format!("{ip}:{}", base + id as u16 + 2)))
            .collect();
        Cluster {
            ip,
            base,
            dir: tempfile::tempdir().expect("tempdir"),
            http,
            raft,
            procs: BTreeMap::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            starts: 0,
        }
    }

    /// Adds a YAML `--config` file (written into the cluster's dir) to every
    /// master's command line.
    pub fn config(&mut self, yaml: &str) {
        let path = self.dir.path().join("config.yaml");
        fs::write(&path, yaml).expect("write config");
        self.extra
            .extend(["--config".into(), path.display().to_string()]);
    }

    /// Starts every master not running.
    pub async fn start_all(&mut self) {
        for id in 1..=3 {
            if !self.procs.contains_key(&id) {
                self.start_node(id);
            }
        }
        self.leader().await;
    }

    pub fn peers(&self) -> String {
        self.raft
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("master-{id}"))
    }

    pub fn args(&self, id: u64) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "master".into(),
            "--preset".into(),
            "ci".into(),
            "--id".into(),
            id.to_string(),
            "--peers".into(),
            self.peers(),
            "--http".into(),
            self.http[&id].clone(),
            "--data-dir".into(),
            self.data_dir(id).display().to_string(),
        ];
        args.extend(self.extra.iter().cloned());
        args
    }

    /// (Re)starts master `id` on its addresses and data dir.
    pub fn start_node(&mut self, id: u64) {
        self.starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("log-{id}-{}.txt", self.starts));
        let proc = spawn_master(&format!("master {id}"), &self.args(id), &log);
        assert_eq!(proc.id, Some(id));
        assert_eq!(proc.http, self.http[&id]);
        assert_eq!(proc.raft.as_deref(), Some(self.raft[&id].as_str()));
        self.procs.insert(id, proc);
    }

    pub fn kill9(&mut self, id: u64) {
        let mut p = self.procs.remove(&id).expect("node running");
        p.kill9();
    }

    pub fn live(&self) -> Vec<u64> {
        self.procs.keys().copied().collect()
    }

    pub fn live_http(&self) -> Vec<String> {
        self.procs.keys().map(|id| self.http[id].clone()).collect()
    }

    pub fn id_of_http(&self, http: &str) -> Option<u64> {
        self.http
            .iter()
            .find(|(_, a)| a.as_str() == http)
            .map(|(id, _)| *id)
    }

    /// Waits until every running master names the same running master as leader
    /// (through `/v2/leader`) and that one calls itself leader; returns its id.
    pub async fn leader(&self) -> u64 {
        let live = self.live_http();
        let h = wait_for(
            "a leader all live masters agree on",
            CONVERGE_TIMEOUT,
            || {
                let live = live.clone();
                async move {
                    let mut seen = Vec::new();
                    for h in &live {
                        seen.push(leader_of(h).await?);
                    }
                    let first = seen[0].clone();
                    if !seen.iter().all(|s| *s == first) || !live.contains(&first) {
                        return None;
                    }
                    let state = get_json(&first, "/master/state").await?;
                    state.get("elected_time")?;
                    Some(first)
                }
            },
        )
        .await;
        self.id_of_http(&h).expect("leader is a cluster member")
    }

    /// Waits until every running master's `/master/weights` equals `expected`.
    pub async fn converge(&self, expected: &BTreeMap<String, f64>) {
        for (id, h) in self
            .live()
            .into_iter()
            .map(|id| (id, self.http[&id].clone()))
        {
            let last = wait_until_weights(&h, expected).await;
            assert_eq!(&last, expected, "master {id} did not converge");
        }
    }
}

// ---------------------------------------------------------------- HTTP

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn url(addr: &str, path: &str) -> String {
    format!("http://{addr}{path}")
}

pub async fn get(addr: &str, path: &str) -> Option<reqwest::Response> {
    client().get(url(addr, path)).send().await.ok()
}

/// A 200 answer's JSON body, or None.
pub async fn get_json(addr: &str, path: &str) -> Option<Value> {
    let r = get(addr, path).await?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// The leader's HTTP address as `addr` sees it (`/v2/leader`).
pub async fn leader_of(addr: &str) -> Option<String> {
    let v = get_json(addr, "/v2/leader").await?;
    v["leader"].as_str().map(str::to_string)
}

pub fn weights_body(pairs: &[(&str, f64)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(r, w)| serde_json::json!({"role": r, "weight": w}))
            .collect(),
    )
}

/// One `PUT /master/weights`; the status, or the transport error.
pub async fn put_weights(
    client: &reqwest::Client,
    addr: &str,
    pairs: &[(&str, f64)],
) -> Result<reqwest::StatusCode, reqwest::Error> {
    client
        .put(url(addr, "/master/weights"))
        .json(&weights_body(pairs))
        .send()
        .await
        .map(|r| r.status())
}

/// Writes until some node answers 200, trying `addrs` in turn; retries on
/// 503/504 and connection errors. Panics on any other answer or after
/// [`CONVERGE_TIMEOUT`]. Returns how many attempts failed first.
pub async fn write_retry(client: &reqwest::Client, addrs: &[String], pairs: &[(&str, f64)]) -> u32 {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut failures = 0u32;
    let mut i = random_u64() as usize;
    loop {
        let addr = &addrs[i % addrs.len()];
        i += 1;
        match put_weights(client, addr, pairs).await {
            Ok(s) if s == 200 => return failures,
            Ok(s) if s == 503 || s == 504 => {}
            Ok(s) => panic!("PUT /master/weights at {addr} answered {s}"),
            Err(_) => {}
        }
        failures += 1;
        assert!(
            Instant::now() < deadline,
            "write {pairs:?} not accepted by any of {addrs:?} within {CONVERGE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /master/weights` as a map role → weight.
pub async fn read_weights(addr: &str) -> Option<BTreeMap<String, f64>> {
    let v = get_json(addr, "/master/weights").await?;
    let mut out = BTreeMap::new();
    for w in v.as_array()? {
        out.insert(w["role"].as_str()?.to_string(), w["weight"].as_f64()?);
    }
    Some(out)
}

/// Polls `addr`'s weights until they equal `expected` (or the timeout); returns
/// the last weights seen, for the caller's assertion.
pub async fn wait_until_weights(
    addr: &str,
    expected: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut last = BTreeMap::new();
    while Instant::now() < deadline {
        if let Some(w) = read_weights(addr).await {
            if &w == expected {
                return w;
            }
            last = w;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Sends an operator API call (`POST /api/v1`) to `http`.
pub async fn operator(http: &str, call: Value) -> reqwest::Response {
    client()
        .post(url(http, "/api/v1"))
        .json(&call)
        .send()
        .await
        .expect("the operator API answers")
}

/// `LAUNCH_TASKS` of `tasks` (a JSON array of TaskSpecs).
pub async fn launch_tasks(http: &str, tasks: Value) -> reqwest::Response {
    operator(
        http,
        serde_json::json!({"type": "LAUNCH_TASKS", "launch_tasks": {"tasks": tasks}}),
    )
    .await
}

/// Serves `files` by path on 127.0.0.1; 404 for anything else. Returns the
/// base URL.
pub async fn serve_files(files: Vec<(&str, Vec<u8>)>) -> String {
    let files: std::sync::Arc<std::collections::HashMap<String, Vec<u8>>> =
        std::sync::Arc::new(files.into_iter().map(|(p, b)| (p.to_string(), b)).collect());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let files = files.clone();
        async move {
            match files.get(req.uri().path()) {
                Some(bytes) => axum::response::IntoResponse::into_response(bytes.clone()),
                None => {
                    axum::response::IntoResponse::into_response(axum::http::StatusCode::NOT_FOUND)
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- agents

pub fn agent_args(masters: &str, ip: &str, work: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "agent",
        "--preset",
        "ci",
        "--master",
        masters,
        "--http",
        &format!("{ip}:0"),
        "--work-dir",
        &work.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

pub fn spawn_agent(name: &str, args: &[String], log: &Path) -> Proc {
    Proc::spawn(name, args, log, "MESO_AGENT_HTTP")
}

/// Waits until `/master/state` on `master` satisfies `check`; returns it.
pub async fn state_where(master: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, CONVERGE_TIMEOUT, || {
        let m = master.to_string();
        let ok = &check;
        async move {
            let s = get_json(&m, "/master/state").await?;
            ok(&s).then_some(s)
        }
    })
    .await
}

pub fn slave<'a>(state: &'a Value, id: &str) -> Option<&'a Value> {
    state["slaves"].as_array()?.iter().find(|s| s["id"] == id)
}

/// Kills, when dropped, every process and container a test's agent started:
/// task processes outlive their agent by design, so a test must not leave them.
/// Made once the agent has written its key.
pub struct TaskReaper {
    key: String,
    sandboxes: String,
}

impl TaskReaper {
    pub fn new(work_dir: &Path) -> TaskReaper {
        let key = fs::read_to_string(work_dir.join("agent.key")).expect("the agent wrote its key");
        TaskReaper {
            key: key.trim().to_string(),
            sandboxes: format!("MESOS_SANDBOX={}", work_dir.join("sandboxes").display()),
        }
    }
}

impl Drop for TaskReaper {
    fn drop(&mut self) {
        let (key, sandboxes) = (&self.key, &self.sandboxes);
        for pid in
            pids_where(|cmdline, environ| cmdline.contains(key) || environ.contains(sandboxes))
        {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        remove_agent_cgroups(key);
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker ps -aq --filter label=meso.agent={key} | xargs -r docker rm -f"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes the cgroups an agent made (`meso/<key>/<task>` in each hierarchy):
/// a test's agent dies with SIGKILL, before it can clean up. A group empties
/// a moment after its processes are killed, so each rmdir is tried a few times.
fn remove_agent_cgroups(key: &str) {
    let Ok(mounts) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut agent_dirs: Vec<PathBuf> = mounts
        .flatten()
        .map(|m| m.path().join("meso").join(key))
        .collect();
    agent_dirs.push(PathBuf::from("/sys/fs/cgroup/meso").join(key));
    for agent_dir in agent_dirs.iter().filter(|d| d.is_dir()) {
        let tasks: Vec<PathBuf> = fs::read_dir(agent_dir)
            .map(|e| {
                e.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        for dir in tasks.iter().chain(std::iter::once(agent_dir)) {
            for _ in 0..20 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Ended tasks (zombies) that the task supervisors of the agent with `key`
/// still hold: each is kept until its agent has recorded its end.
pub fn zombies_held_for(key: &str) -> Vec<i32> {
    let supervisors =
        pids_where(|cmdline, _| cmdline.contains("task-launcher") && cmdline.contains(key));
    let stat_of = |pid: i32| {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest: Vec<String> = text[text.rfind(')')? + 1..]
            .split_whitespace()
            .take(2)
            .map(String::from)
            .collect();
        Some((rest.first()?.clone(), rest.get(1)?.parse::<i32>().ok()?))
    };
    pids_where(|_, _| true)
        .into_iter()
        .filter(|pid| {
            stat_of(*pid).is_some_and(|(state, ppid)| state == "Z" && supervisors.contains(&ppid))
        })
        .collect()
}

/// Pids whose command line (NULs as spaces) and environment satisfy `f`.
pub fn pids_where(f: impl Fn(&str, &str) -> bool) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let read = |f: &str| {
                std::fs::read(format!("/proc/{pid}/{f}"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .unwrap_or_default()
            };
            f(&read("cmdline"), &read("environ"))
        })
        .collect()
}

// ---------------------------------------------------------------- disk

/// Every path under `root` (relative) with its bytes (None for a directory);
/// `None` when `root` does not exist. Used to prove nothing on disk changed.
pub fn snapshot_tree(root: &Path) -> Option<BTreeMap<PathBuf, Option<Vec<u8>>>> {
    if !root.exists() {
        return None;
    }
    let mut out = BTreeMap::new();
    if root.is_file() {
        out.insert(PathBuf::new(), Some(fs::read(root).unwrap()));
        return Some(out);
    }
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap()));
            }
        }
    }
    walk(root, root, &mut out);
    Some(out)
}

/// Which paths differ between two trees (for a readable failure).
pub fn tree_diff(
    a: &Option<BTreeMap<PathBuf, Option<Vec<u8>>>>,
    b: &Option<BTreeMap<PathBuf, Option<Vec<u8>>>>,
) -> Vec<String> {
    match (a, b) {
        (None, None) => vec![],
        (None, Some(_)) => vec!["created (did not exist before)".into()],
        (Some(_), None) => vec!["deleted".into()],
        (Some(a), Some(b)) => {
            let mut diffs = Vec::new();
            for (p, v) in a {
                match b.get(p) {
                    None => diffs.push(format!("{}: deleted", p.display())),
                    Some(w) if w != v => {
                        let n = match (v, w) {
                            (Some(x), Some(y)) => {
                                let differing =
                                    x.iter().zip(y.iter()).filter(|(p, q)| p != q).count()
                                        + x.len().abs_diff(y.len());
                                format!(
                                    "{differing} bytes differ ({} -> {} bytes)",
                                    x.len(),
                                    y.len()
                                )
                            }
                            _ => "type changed".into(),
                        };
                        diffs.push(format!("{}: changed, {n}", p.display()));
                    }
                    _ => {}
                }
            }
            for p in b.keys() {
                if !a.contains_key(p) {
                    diffs.push(format!("{}: created", p.display()));
                }
            }
            diffs
        }
    }
}

// ---------------------------------------------------------------- docker

/// The image docker tests run (scripts/test-image.sh builds it, no registry).
pub const TEST_IMAGE: &str = "meso-test/busybox:latest";

/// Fails with a useful message when the engine or the image is missing.
pub fn docker_ready() {
    let image = Command::new("docker")
        .args(["image", "inspect", TEST_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        image.is_ok_and(|s| s.success()),
        "these tests need a running dockerd and {TEST_IMAGE}: run scripts/test.sh \
         (or scripts/test-image.sh for the image)"
    );
}

// ---------------------------------------------------------------- a site

/// The resources a [`Site`]'s agent offers unless a test says otherwise.
pub const SITE_RESOURCES: &str = "cpus:4;mem:4096;disk:1000;ports:[31000-31100]";

/// A master and one agent, each its own `meso` process, on a fresh loopback
/// address. Tasks go in through the operator API and are read back from
/// `/master/tasks`, as an operator would do it; every process and container
/// the agent started is killed when the site is dropped.
pub struct Site {
    pub ip: String,
    pub master: Proc,
    pub agent: Option<Proc>,
    pub agent_args: Vec<String>,
    pub agent_id: String,
    pub work: PathBuf,
    /// Agents added by [`Site::add_agent`], with their ids and reapers.
    pub more_agents: Vec<(Proc, String, TaskReaper)>,
    _reaper: TaskReaper,
    /// Last, so it is removed after the processes are dropped: a failing
    /// test's process prints its log's last lines as it goes.
    pub dir: tempfile::TempDir,
}

impl Site {
    /// An agent with [`SITE_RESOURCES`] and `agent_extra` flags.
    pub async fn start(agent_extra: &[&str]) -> Site {
        Site::start_with(SITE_RESOURCES, None, agent_extra, &[]).await
    }

    /// An agent offering `resources`, reading `agent_yaml` (if any) as its
    /// `--config` file, with `agent_env` in its environment.
    pub async fn start_with(
        resources: &str,
        agent_yaml: Option<&str>,
        agent_extra: &[&str],
        agent_env: &[(&str, &str)],
    ) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (ip, master) = spawn_single_master(dir.path());
        let work = dir.path().join("agent");
        let config = dir.path().join("agent.yaml");
        let config_text = config.display().to_string();
        let mut extra = vec!["--resources", resources];
        if let Some(yaml) = agent_yaml {
            fs::write(&config, yaml).expect("write the agent's config");
            extra.extend(["--config", config_text.as_str()]);
        }
        extra.extend_from_slice(agent_extra);
        let agent_args = agent_args(&master.http, &ip, &work, &extra);
        let agent = Proc::spawn_env(
            "agent",
            &agent_args,
            &dir.path().join("agent-1.log"),
            "MESO_AGENT_HTTP",
            agent_env,
        );
        // Before anything can fail: whatever the agent starts from here on is reaped.
        let reaper = TaskReaper::new(&work);
        let state = state_where(&master.http, "the agent registered", |s| {
            s["activated_slaves"] == 1
        })
        .await;
        let agent_id = state["slaves"][0]["id"].as_str().unwrap().to_string();
        Site {
            _reaper: reaper,
            dir,
            ip,
            master,
            agent: Some(agent),
            agent_args,
            agent_id,
            work,
            more_agents: Vec::new(),
        }
    }

    /// Starts one more agent (its own work dir) with `extra` flags; returns
    /// its id once the master counts it active.
    pub async fn add_agent(&mut self, extra: &[&str]) -> String {
        let n = self.more_agents.len() + 2;
        let work = self.dir.path().join(format!("agent{n}"));
        let mut flags = vec!["--resources", SITE_RESOURCES];
        flags.extend_from_slice(extra);
        let args = agent_args(&self.master.http, &self.ip, &work, &flags);
        let agent = spawn_agent(
            "agent",
            &args,
            &self.dir.path().join(format!("agent-{n}.log")),
        );
        let reaper = TaskReaper::new(&work);
        let known: Vec<String> = self
            .more_agents
            .iter()
            .map(|(_, id, _)| id.clone())
            .chain([self.agent_id.clone()])
            .collect();
        let state = state_where(&self.master.http, "the new agent registered", |s| {
            s["activated_slaves"] == n as u64
        })
        .await;
        let id = state["slaves"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["id"].as_str())
            .find(|id| !known.iter().any(|k| k == id))
            .expect("a new agent id")
            .to_string();
        self.more_agents.push((agent, id.clone(), reaper));
        id
    }

    pub fn sandbox(&self, task_id: &str) -> PathBuf {
        self.work.join("sandboxes").join(task_id)
    }

    /// A process task running `cmd` through the shell.
    pub fn shell_task(&self, id: &str, cmd: &str) -> Value {
        serde_json::json!({
            "task_id": id,
            "agent_id": self.agent_id,
            "cpus": 0.1,
            "mem": 64,
            "command": {"value": cmd},
        })
    }

    /// Launches one task; the task as the master recorded it.
    pub async fn launch(&self, task: Value) -> Value {
        let r = launch_tasks(&self.master.http, serde_json::json!([task])).await;
        let status = r.status();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{answer}");
        answer["launch_tasks"]["tasks"][0].clone()
    }

    pub async fn kill(&self, id: &str) {
        let r = operator(
            &self.master.http,
            serde_json::json!({"type": "KILL_TASK", "kill_task": {"task_id": id}}),
        )
        .await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    }

    /// The task as `/master/tasks` shows it now.
    pub async fn task(&self, id: &str) -> Option<Value> {
        let tasks = get_json(&self.master.http, "/master/tasks").await?;
        tasks["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
    }

    /// Waits until the task is in `state`; returns it as `/master/tasks` shows it.
    pub async fn task_in(&self, id: &str, state: &str) -> Value {
        wait_for(
            &format!("task {id} in {state}"),
            Duration::from_secs(30),
            || async move { self.task(id).await.filter(|t| t["state"] == state) },
        )
        .await
    }

    pub fn restart_agent(&mut self, log: &str) {
        let agent = spawn_agent("agent", &self.agent_args, &self.dir.path().join(log));
        self.agent = Some(agent);
    }
}

/// The states a task went through, oldest first.
pub fn states(task: &Value) -> Vec<String> {
    task["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

pub fn last_status(task: &Value) -> &Value {
    task["statuses"].as_array().unwrap().last().unwrap()
}

/// A file's text; empty when it cannot be read.
pub fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Pids of live processes whose environment names this task.
pub fn task_pids(id: &str) -> Vec<i32> {
    let needle = format!("MESOS_TASK_ID={id} ");
    pids_where(|_, environ| environ.contains(&needle))
        .into_iter()
        .filter(|pid| {
            // A zombie has ended: only its exit status waits to be read.
            let stat = read_text(Path::new(&format!("/proc/{pid}/stat")));
            stat.rsplit(')')
                .next()
                .is_some_and(|s| !s.trim_start().starts_with('Z'))
        })
        .collect()
}
