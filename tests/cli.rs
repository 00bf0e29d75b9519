//! The client commands as a user runs them: the real binary against real
//! clusters (`meso up -d`, or `meso::testing::Cluster`), their output and
//! their exit codes, error paths included.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Finished, loopback_ip, run, wait_for};
use meso::testing::Cluster;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// One line on stderr, starting `error: `.
fn one_line_error(f: &Finished) -> &str {
    let err = f.stderr.trim_end();
    assert!(
        err.starts_with("error: ") && !err.contains('\n'),
        "not a one-line error: {f:?}"
    );
    err
}

/// Stops a detached cluster when the test ends, passed or not.
struct Detached {
    data: PathBuf,
}

impl Drop for Detached {
    fn drop(&mut self) {
        let _ = run(&["down", "--purge", "--data-dir", &s(&self.data)], TIMEOUT);
        // Whatever survived (a failed down): by the pid in its state file.
        if let Ok(text) = std::fs::read_to_string(self.data.join("meso-up.json"))
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && let Some(pid) = v["pid"].as_i64()
        {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

fn exports(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pid_alive(pid: i32) -> bool {
    // A zombie has stopped; only its exit status is left.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
        st.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn up_detached_then_info_status_down_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let ip = loopback_ip();
    let http = format!("{ip}:0");
    let up_args = [
        "up",
        "-d",
        "--preset",
        "ci",
        "--http",
        &http,
        "--dns",
        &http,
        "--data-dir",
        &s(&data),
    ];
    let up = run(&up_args, TIMEOUT);
    let _guard = Detached { data: data.clone() };
    assert_eq!(up.code(), Some(0), "{up:?}");
    let lines = exports(&up.stdout);
    let keys: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["MESOS_MASTER", "MARATHON_URL", "MESO_DNS", "MESO_DATA_DIR"]
    );
    let api = lines[0].1.clone();
    assert!(api.starts_with(&ip) && !api.ends_with(":0"), "{api}");
    assert_eq!(lines[1].1, format!("http://{api}"));

    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("meso-up.json")).unwrap()).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(pid));

    // info prints the same lines, in the same order.
    let info = run(&["info", "--data-dir", &s(&data)], TIMEOUT);
    assert_eq!(info.code(), Some(0), "{info:?}");
    assert_eq!(info.stdout, up.stdout);

    // status finds the cluster by the data dir alone.
    let status = run(&["status", "--json", "--data-dir", &s(&data)], TIMEOUT);
    assert_eq!(status.code(), Some(0), "{status:?}");
    let v: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["leader"], api.as_str(), "{v}");
    assert_eq!(
        v["agents"].as_array().unwrap().len(),
        2,
        "the ci preset: {v}"
    );
    assert_eq!(v["masters"][0]["role"], "leader");
    let human = run(&["status", "--master", &api], TIMEOUT);
    assert_eq!(human.code(), Some(0), "{human:?}");
    assert!(
        human.stdout.contains("AGENTS") && human.stdout.contains(&api),
        "{human:?}"
    );
    assert!(
        human.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        human.stdout
    );

    // A second cluster on the same data dir is refused, naming the first.
    let again = run(&up_args, TIMEOUT);
    assert_eq!(again.code(), Some(1), "{again:?}");
    let err = one_line_error(&again);
    assert!(
        err.contains("already running") && err.contains(&pid.to_string()),
        "{err}"
    );

    // down stops it and keeps the data.
    let down = run(&["down", "--data-dir", &s(&data)], TIMEOUT);
    assert_eq!(down.code(), Some(0), "{down:?}");
    assert!(!pid_alive(pid), "meso up still runs after down");
    assert!(!data.join("meso-up.json").exists());
    assert!(data.join("master-1").join("registry.redb").is_file());

    // Nothing left to stop.
    let down = run(&["down", "--data-dir", &s(&data)], TIMEOUT);
    assert_eq!(down.code(), Some(3), "{down:?}");
    assert!(one_line_error(&down).contains("no cluster running"));
    let info = run(&["info", "--data-dir", &s(&data)], TIMEOUT);
    assert_eq!(info.code(), Some(3), "{info:?}");

    // Up again on the same data, then down --purge removes it.
    let up = run(&up_args, TIMEOUT);
    assert_eq!(up.code(), Some(0), "{up:?}");
    let purge = run(&["down", "--purge", "--data-dir", &s(&data)], TIMEOUT);
    assert_eq!(purge.code(), Some(0), "{purge:?}");
    assert!(!data.exists(), "the data dir is gone after --purge");
}

#[test]
fn up_detached_that_cannot_start_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let ip = loopback_ip();
    let taken = std::net::TcpListener::bind(format!("{ip}:0")).unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let up = run(
        &[
            "up",
            "-d",
            "--preset",
            "ci",
            "--http",
            &addr,
            "--data-dir",
            &s(&data),
        ],
        TIMEOUT,
    );
    let _guard = Detached { data: data.clone() };
    assert_eq!(up.code(), Some(1), "{up:?}");
    let err = one_line_error(&up);
    assert!(err.contains(&addr) && err.contains("HTTP"), "{err}");
    assert!(!data.join("meso-up.json").exists());
}

#[test]
fn commands_without_a_cluster_say_so_in_one_line_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("{}:1", loopback_ip());
    let empty = s(&dir.path().join("none"));
    let commands: Vec<Vec<&str>> = vec![
        vec!["status"],
        vec!["app", "list"],
        vec!["app", "show", "web"],
        vec!["app", "scale", "web", "2"],
        vec!["task", "list"],
        vec!["logs", "web"],
        vec!["exec", "web", "--", "true"],
        vec!["members", "list"],
    ];
    for args in commands {
        let args = with_flags(&args, &["--master", &nowhere, "--data-dir", &empty]);
        let f = run(&args, TIMEOUT);
        assert_eq!(f.code(), Some(3), "{args:?}: {f:?}");
        let err = one_line_error(&f);
        assert!(
            err.contains(&nowhere) && err.contains("meso up"),
            "{args:?}: {err}"
        );
    }
    // Without --master: the data dir holds no cluster, so the default
    // address is asked, and MESOS_MASTER is honoured the same as --master.
    let f = Command::new(BIN)
        .args(["app", "list", "--data-dir", &empty])
        .env("MESOS_MASTER", &nowhere)
        .output()
        .unwrap();
    assert_eq!(f.status.code(), Some(3), "{f:?}");
    assert!(
        String::from_utf8_lossy(&f.stderr).contains(&nowhere),
        "{f:?}"
    );
    for args in [vec!["info"], vec!["down"]] {
        let mut args = args.clone();
        args.extend(["--data-dir", &empty]);
        let f = run(&args, TIMEOUT);
        assert_eq!(f.code(), Some(3), "{args:?}: {f:?}");
        assert!(one_line_error(&f).contains(&empty), "{f:?}");
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let f = run(&["completions", shell], TIMEOUT);
        assert_eq!(f.code(), Some(0), "{f:?}");
        assert!(
            f.stdout.contains("meso") && f.stdout.contains("deploy"),
            "{shell}: {}",
            &f.stdout[..f.stdout.len().min(300)]
        );
    }
    let f = run(&["completions", "tcsh"], TIMEOUT);
    assert_eq!(f.code(), Some(2), "{f:?}");
}

/// Output into a pipe whose reader has gone (`meso completions bash | head`):
/// the command ends by SIGPIPE, as other Unix tools do, not with a panic.
#[test]
fn a_closed_pipe_ends_a_client_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(BIN)
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meso");
    drop(child.stdout.take()); // the reader goes before anything is written
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

async fn cluster(agents: usize) -> Cluster {
    Cluster::builder()
        .binary(BIN)
        .agents(agents)
        .start()
        .await
        .expect("a cluster")
}

fn meso(c: &Cluster, args: &[&str]) -> Finished {
    run(&with_flags(args, &["--master", c.master()]), TIMEOUT)
}

/// `args` with `flags` added before a `--` (after it, all is `exec`'s CMD).
fn with_flags<'a>(args: &[&'a str], flags: &[&'a str]) -> Vec<&'a str> {
    let at = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let mut all = args[..at].to_vec();
    all.extend_from_slice(flags);
    all.extend_from_slice(&args[at..]);
    all
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    s(&path)
}

const SLEEPER: &str = "\
id: sleeper
cmd: 'echo started $MESOS_TASK_ID; echo to-stderr >&2; while true; do echo tick; sleep 0.2; done'
instances: 2
cpus: 0.01
mem: 16
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_deploy_list_show_scale_restart_rm() {
    let c = cluster(1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sleeper.yaml", SLEEPER);

    let deploy = meso(&c, &["app", "deploy", &file, "--wait"]);
    assert_eq!(deploy.code(), Some(0), "{deploy:?}");
    assert!(
        deploy
            .stdout
            .starts_with("deployed /sleeper: 2/2 in service"),
        "{deploy:?}"
    );

    let list = meso(&c, &["app", "list"]);
    assert_eq!(list.code(), Some(0), "{list:?}");
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with("/sleeper"))
        .expect(&list.stdout);
    assert!(row.contains("2/2"), "{row}");
    let json = meso(&c, &["app", "list", "--json"]);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["apps"][0]["id"], "/sleeper");
    assert_eq!(v["apps"][0]["tasksRunning"], 2);

    let status = meso(&c, &["status", "--json"]);
    let v: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["apps"][0]["healthy"], 2, "{v}");
    assert_eq!(v["apps"][0]["instances"], 2, "{v}");

    let show = meso(&c, &["app", "show", "sleeper", "--json"]);
    let v: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["app"]["tasks"].as_array().unwrap().len(), 2, "{v}");
    let human = meso(&c, &["app", "show", "/sleeper"]);
    assert_eq!(human.code(), Some(0), "{human:?}");
    assert_eq!(
        human.stdout.matches("RUNNING").count(),
        2,
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        human.stdout
    );

    let tasks = meso(&c, &["task", "list", "sleeper", "--json"]);
    let tasks: Value = serde_json::from_str(&tasks.stdout).unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 2, "{tasks}");
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "TASK_RUNNING")
    );

    let scale = meso(&c, &["app", "scale", "sleeper", "1", "--wait"]);
    assert_eq!(scale.code(), Some(0), "{scale:?}");
    assert!(
        scale.stdout.starts_with("scaled /sleeper: 1/1"),
        "{scale:?}"
    );
    let live = meso(&c, &["task", "list", "sleeper", "--json"]);
    let live: Value = serde_json::from_str(&live.stdout).unwrap();
    assert_eq!(live.as_array().unwrap().len(), 1, "{live}");
    let before = live[0]["id"].clone();

    let restart = meso(&c, &["app", "restart", "sleeper", "--wait"]);
    assert_eq!(restart.code(), Some(0), "{restart:?}");
    let after = meso(&c, &["task", "list", "sleeper", "--json"]);
    let after: Value = serde_json::from_str(&after.stdout).unwrap();
    assert_eq!(after.as_array().unwrap().len(), 1, "{after}");
    assert_ne!(after[0]["id"], before, "a restart replaces the task");

    // Ended tasks show with --all.
    let all = meso(&c, &["task", "list", "sleeper", "--all", "--json"]);
    let all: Value = serde_json::from_str(&all.stdout).unwrap();
    assert!(all.as_array().unwrap().len() >= 3, "{all}");

    let rm = meso(&c, &["app", "rm", "sleeper", "--wait"]);
    assert_eq!(rm.code(), Some(0), "{rm:?}");
    let list = meso(&c, &["app", "list", "--json"]);
    let v: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(v["apps"], Value::Array(vec![]), "{v}");

    // Unknown apps: exit 4, one line.
    for args in [
        vec!["app", "show", "nope"],
        vec!["app", "scale", "nope", "3"],
        vec!["app", "rm", "nope"],
        vec!["task", "list", "nope"],
        vec!["logs", "nope"],
    ] {
        let f = meso(&c, &args);
        assert_eq!(f.code(), Some(4), "{args:?}: {f:?}");
        assert!(one_line_error(&f).contains("nope"), "{f:?}");
    }
}

/// Marathon's group JSON (`apps`, nested `groups`) deploys as a whole, and
/// deploying it again with an app left out removes that app, as
/// `PUT /v2/groups` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_file_deploys_its_apps_and_a_smaller_one_removes_the_rest() {
    let c = cluster(1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "shop.yaml",
        "id: shop\n\
         apps:\n\
         - {id: web, cmd: sleep 600, instances: 2, cpus: 0.01, mem: 16}\n\
         groups:\n\
         - id: back\n\
         \x20 apps: [{id: db, cmd: sleep 600, cpus: 0.01, mem: 16}]\n",
    );
    let deploy = meso(&c, &["app", "deploy", &file, "--wait"]);
    assert_eq!(deploy.code(), Some(0), "{deploy:?}");
    assert!(
        deploy.stdout.starts_with("deployed /shop: 3/3 in service"),
        "{deploy:?}"
    );
    let running = |c: &Cluster| {
        let list = meso(c, &["app", "list", "--json"]);
        let v: Value = serde_json::from_str(&list.stdout).unwrap();
        let mut apps: Vec<(String, u64)> = v["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let id = a["id"].as_str().unwrap().to_string();
                (id, a["tasksRunning"].as_u64().unwrap())
            })
            .collect();
        apps.sort();
        apps
    };
    assert_eq!(
        running(&c),
        [
            ("/shop/back/db".to_string(), 1),
            ("/shop/web".to_string(), 2)
        ]
    );

    let smaller = write(
        dir.path(),
        "shop.json",
        r#"{"id": "/shop", "apps": [{"id": "web", "cmd": "sleep 600", "instances": 1, "cpus": 0.01, "mem": 16}]}"#,
    );
    let again = meso(&c, &["app", "deploy", &smaller, "--wait"]);
    assert_eq!(again.code(), Some(0), "{again:?}");
    assert!(
        again.stdout.starts_with("deployed /shop: 1/1 in service"),
        "{again:?}"
    );
    assert_eq!(running(&c), [("/shop/web".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_app_files_name_the_field() {
    let c = cluster(1).await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("no-id.yaml", "cmd: sleep 1\n", "/id"),
        ("bad.json", "{\"id\": \"x\", \"cmd\": ", "not valid JSON"),
        // Refused by the cluster's validation, which names the field.
        ("cpus.yaml", "id: x\ncmd: sleep 1\ncpus: -1\n", "/cpus"),
        (
            "inst.json",
            "{\"id\": \"x\", \"cmd\": \"true\", \"instances\": \"many\"}",
            "/instances",
        ),
    ];
    for (name, text, field) in cases {
        let file = write(dir.path(), name, text);
        let f = meso(&c, &["app", "deploy", &file]);
        assert_eq!(f.code(), Some(2), "{name}: {f:?}");
        let err = one_line_error(&f);
        assert!(err.contains(field) && err.contains(name), "{name}: {err}");
    }
    let missing = s(&dir.path().join("missing.json"));
    let f = meso(&c, &["app", "deploy", &missing]);
    assert_eq!(f.code(), Some(2), "{f:?}");
    assert!(one_line_error(&f).contains("missing.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_that_cannot_finish_exits_5_with_the_last_failure() {
    let c = cluster(1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "failing.json",
        // Never healthy (it ends at once), so the deployment never finishes.
        r#"{"id": "/failing", "cmd": "echo bye; exit 3", "cpus": 0.01, "mem": 16,
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]}"#,
    );
    let f = meso(&c, &["app", "deploy", &file, "--wait", "--timeout", "15s"]);
    assert_eq!(f.code(), Some(5), "{f:?}");
    let err = one_line_error(&f);
    assert!(
        err.contains("/failing") && err.contains("0/1") && err.contains("TASK_FAILED"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_task_and_of_an_app_and_exec_in_its_sandbox() {
    let c = cluster(1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sleeper.yaml", SLEEPER);
    let deploy = meso(&c, &["app", "deploy", &file, "--wait"]);
    assert_eq!(deploy.code(), Some(0), "{deploy:?}");
    let tasks = meso(&c, &["task", "list", "sleeper", "--json"]);
    let tasks: Value = serde_json::from_str(&tasks.stdout).unwrap();
    let ids: Vec<String> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();

    // One task: its lines as they are.
    let id = &ids[0];
    let logs = wait_for("the task's first line", TIMEOUT, || {
        let f = meso(&c, &["logs", id]);
        async move { f.stdout.contains("started").then_some(f) }
    })
    .await;
    assert_eq!(logs.code(), Some(0));
    assert!(
        logs.stdout.starts_with(&format!("started {id}\n")),
        "{}",
        logs.stdout
    );
    let stderr = meso(&c, &["logs", id, "--stderr"]);
    assert!(
        stderr.stdout.contains("to-stderr") && !stderr.stdout.contains("tick"),
        "{stderr:?}"
    );

    // The start of an id, as `task list` shows it, names the task too.
    let list = meso(&c, &["task", "list", "sleeper"]);
    let short = list
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(
        id.starts_with(&short) || ids[1].starts_with(&short),
        "{short}"
    );
    let by_short = meso(&c, &["logs", &short]);
    assert_eq!(by_short.code(), Some(0), "{by_short:?}");

    // The app: both tasks' lines, each after its task's prefix.
    let app = wait_for("both tasks' first lines", TIMEOUT, || {
        let f = meso(&c, &["logs", "sleeper"]);
        async move { (f.stdout.matches("] started").count() == 2).then_some(f) }
    })
    .await;
    for id in &ids {
        let prefix = format!("[{}] ", &id[..id.find(".instance-").unwrap() + 18]);
        assert!(
            app.stdout.contains(&format!("{prefix}started {id}")),
            "{prefix}: {}",
            app.stdout
        );
    }
    assert!(
        app.stdout
            .lines()
            .all(|l| l.starts_with("[sleeper.instance-")),
        "{}",
        app.stdout
    );

    // -f keeps reading: lines written after it started arrive.
    let mut follow = Command::new(BIN)
        .args(["logs", "-f", id, "--master", c.master()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = follow.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .take(40)
            .count()
    });
    let count = tokio::time::timeout(TIMEOUT, lines).await;
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        count.ok().and_then(Result::ok),
        Some(40),
        "-f stopped short"
    );

    // exec: in the sandbox, with the task's environment; its exit code.
    let exec = meso(
        &c,
        &[
            "exec",
            id,
            "--",
            "sh",
            "-c",
            "echo $MESOS_TASK_ID; pwd; ls; exit 7",
        ],
    );
    assert_eq!(exec.code(), Some(7), "{exec:?}");
    let out: Vec<&str> = exec.stdout.lines().collect();
    assert_eq!(out[0], id.as_str());
    assert!(out[1].ends_with(&format!("/sandboxes/{id}")), "{out:?}");
    assert!(
        out.contains(&"stdout") && out.contains(&"stderr"),
        "{out:?}"
    );

    // An app of two tasks is not one task.
    let two = meso(&c, &["exec", "sleeper", "--", "true"]);
    assert_eq!(two.code(), Some(2), "{two:?}");
    assert!(one_line_error(&two).contains("has 2 tasks"), "{two:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testing_harness_starts_agents_and_cleans_up_on_drop() {
    let c = Cluster::builder()
        .binary(BIN)
        .agents(2)
        .start()
        .await
        .unwrap();
    let state = common::get_json(c.master(), "/master/state").await.unwrap();
    assert_eq!(state["activated_slaves"], 2, "{state}");
    assert_eq!(c.marathon_url(), format!("http://{}", c.master()));
    assert!(!c.dns().is_empty());
    // A running task, so drop has one to kill.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sleeper.yaml", SLEEPER);
    assert_eq!(
        meso(&c, &["app", "deploy", &file, "--wait"]).code(),
        Some(0)
    );
    let data = c.data_dir().to_path_buf();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("meso-up.json")).unwrap()).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    let sandboxes = format!("MESOS_SANDBOX={}", data.display());
    assert!(!common::pids_where(|_, env| env.contains(&sandboxes)).is_empty());
    drop(c);
    assert!(!pid_alive(pid), "meso up outlived the harness");
    assert!(!data.exists(), "the data dir outlived the harness");
    assert!(
        common::pids_where(|_, env| env.contains(&sandboxes)).is_empty(),
        "tasks outlived it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_in_a_docker_task_runs_inside_its_container() {
    common::docker_ready();
    let c = cluster(1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "boxed.json",
        &format!(
            r#"{{"id": "/boxed", "cmd": "echo inside > /tmp/mark; sleep 600", "cpus": 0.01, "mem": 16,
                "container": {{"type": "DOCKER", "docker": {{"image": "{}"}}}}}}"#,
            common::TEST_IMAGE
        ),
    );
    let deploy = meso(&c, &["app", "deploy", &file, "--wait"]);
    assert_eq!(deploy.code(), Some(0), "{deploy:?}");
    // /tmp/mark exists only in the container's filesystem.
    let exec = wait_for("the container's file", TIMEOUT, || {
        let f = meso(&c, &["exec", "boxed", "--", "cat", "/tmp/mark"]);
        async move { (f.code() == Some(0)).then_some(f) }
    })
    .await;
    assert_eq!(exec.stdout, "inside\n", "{exec:?}");
    let code = meso(&c, &["exec", "boxed", "--", "sh", "-c", "exit 4"]);
    assert_eq!(code.code(), Some(4), "{code:?}");
}
