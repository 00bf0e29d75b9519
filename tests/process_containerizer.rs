//! The process containerizer as the agent drives it, with real processes: a
//! task's output lands in its sandbox, its environment is exactly the one
//! given, its exit is reported as a user reads it, a kill reaches its whole
//! tree, a task over its memory limit is named as such, and a new agent
//! process finds and waits on the tasks of the one before it.
//!
//! Each test uses its own agent key, so tests running side by side never see
//! each other's tasks; every task is SIGKILLed on the way out, pass or fail.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use meso::agent::containerizer::cgroups::{self, Cgroups};
use meso::agent::containerizer::process::ProcessContainerizer;
use meso::agent::containerizer::{
    ContainerHandle, Containerizer, Exit, LaunchError, LaunchRequest,
};
use meso::model::{CommandSpec, TaskSpec};

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Longer than any test task should take; a hang fails instead of blocking.
const PATIENCE: Duration = Duration::from_secs(20);

/// A test's agent: its containerizer, its temp dir, and the tasks to kill.
struct Agent {
    dir: tempfile::TempDir,
    key: String,
    containerizer: ProcessContainerizer,
    launched: Mutex<Vec<KillOnDrop>>,
}

impl Agent {
    fn new(cgroups: Option<Cgroups>) -> Self {
        let key = format!("test-{}", uuid::Uuid::new_v4());
        let dir = tempfile::tempdir().expect("temp dir");
        let meso = PathBuf::from(env!("CARGO_BIN_EXE_meso"));
        Self {
            containerizer: ProcessContainerizer::new(meso, key.clone(), cgroups),
            key,
            dir,
            launched: Mutex::new(Vec::new()),
        }
    }

    fn sandbox(&self, task_id: &str) -> PathBuf {
        self.dir.path().join("sandboxes").join(task_id)
    }

    async fn launch(
        &self,
        spec: &TaskSpec,
        env: &[(&str, &str)],
    ) -> Result<ContainerHandle, LaunchError> {
        let sandbox = self.sandbox(&spec.task_id);
        std::fs::create_dir_all(&sandbox).expect("sandbox");
        let meta_dir = self.dir.path().join("meta").join(&spec.task_id);
        let mut env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry("PATH".into()).or_insert_with(|| PATH.into());
        let req = LaunchRequest {
            spec,
            sandbox: &sandbox,
            env,
            meta_dir: &meta_dir,
        };
        let launched = self.containerizer.launch(req).await?;
        assert!(launched.ips.is_empty());
        let guard = KillOnDrop(launched.handle.clone());
        self.launched.lock().expect("lock").push(guard);
        Ok(launched.handle)
    }

    async fn wait(&self, handle: &ContainerHandle) -> Exit {
        tokio::time::timeout(PATIENCE, self.containerizer.wait(handle))
            .await
            .expect("the task should have ended")
    }
}

/// The safety net under the per-task guards: a test that fails before it
/// holds a handle still leaves no supervisor (its tasks die with it) or cgroup.
impl Drop for Agent {
    fn drop(&mut self) {
        let flag = format!("--agent-key={}", self.key);
        for pid in pids() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.split(|b| *b == 0).any(|arg| arg == flag.as_bytes()) && pid > 1 {
                // SAFETY: kill(2) of a supervisor this test's agent key started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let roots: Vec<PathBuf> = match cgroups::detect() {
            Some(Cgroups::V1 { memory, cpu }) => std::iter::once(memory).chain(cpu).collect(),
            Some(Cgroups::V2 { root, .. }) => vec![root],
            None => Vec::new(),
        };
        for agent_dir in roots.iter().map(|r| r.join("meso").join(&self.key)) {
            let tasks = std::fs::read_dir(&agent_dir)
                .into_iter()
                .flatten()
                .flatten();
            for task_dir in tasks.map(|e| e.path()).filter(|p| p.is_dir()) {
                for pid in cgroups::procs(&task_dir) {
                    // SAFETY: kill(2) of a process in this test's cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                cgroups::remove(&task_dir);
            }
        }
    }
}

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

fn shell_task(id: &str, command: &str) -> TaskSpec {
    TaskSpec {
        task_id: id.into(),
        agent_id: "test-S0".into(),
        mem: 64.0,
        cpus: 0.1,
        command: Some(CommandSpec {
            value: Some(command.into()),
            shell: true,
            ..CommandSpec::default()
        }),
        ..TaskSpec::default()
    }
}

fn parts(handle: &ContainerHandle) -> (i32, u64, i32, Vec<PathBuf>) {
    match handle {
        ContainerHandle::Process {
            pid,
            start_time,
            pgid,
            cgroups,
            ..
        } => (*pid, *start_time, *pgid, cgroups.clone()),
        other => panic!("not a process handle: {other:?}"),
    }
}

/// (state, ppid, pgrp, start time) of a process, from /proc/PID/stat.
fn stat(pid: i32) -> Option<(char, i32, i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some((
        fields[0].chars().next()?,
        fields[1].parse().ok()?,
        fields[2].parse().ok()?,
        fields[19].parse().ok()?,
    ))
}

fn running(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, ..)| state != 'Z')
}

/// Live (not zombie) processes in a process group.
fn group_members(pgid: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|(state, _, pgrp, _)| pgrp == pgid && state != 'Z'))
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGKILLs a task's group and its cgroups, whatever the test did.
struct KillOnDrop(ContainerHandle);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let (pid, start_time, pgid, dirs) = parts(&self.0);
        // Only while the task is the one launched: its pid may be reused.
        if stat(pid).is_some_and(|(state, _, _, start)| start == start_time && state != 'Z') {
            // SAFETY: kill(2) of a process group this test started.
            unsafe {
                if pgid > 1 {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        }
        for dir in &dirs {
            for pid in cgroups::procs(dir) {
                // SAFETY: kill(2) of a process in this test's cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            cgroups::remove(dir);
        }
    }
}

#[tokio::test]
async fn output_lands_in_the_sandbox_and_env_is_exactly_given() {
    let agent = Agent::new(cgroups::detect());
    let spec = shell_task(
        "echo",
        r#"echo out; echo err >&2; echo "greeting=$GREETING"; env > env.txt; exit 3"#,
    );
    let handle = agent
        .launch(&spec, &[("GREETING", "hello there")])
        .await
        .expect("launch");
    let exit = agent.wait(&handle).await;
    assert_eq!(exit.code, Some(3), "{exit:?}");
    assert_eq!(exit.signal, None);
    assert_eq!(exit.reason, None);
    assert_eq!(exit.message, "exited with status 3");
    assert!(!exit.succeeded());

    let sandbox = agent.sandbox("echo");
    let read = |name: &str| std::fs::read_to_string(sandbox.join(name)).unwrap_or_default();
    assert_eq!(read("stdout"), "out\ngreeting=hello there\n");
    assert_eq!(read("stderr"), "err\n");
    // Nothing of the agent's (here: the test's) environment leaks in.
    let env = read("env.txt");
    assert!(env.contains("GREETING=hello there\n"), "{env}");
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert!(!env.contains("CARGO_MANIFEST_DIR="), "{env}");

    // cleanup removes the task's cgroups.
    let (.., dirs) = parts(&handle);
    assert_eq!(dirs.is_empty(), agent.containerizer.cgroups.is_none());
    assert!(dirs.iter().all(|d| d.is_dir()));
    agent.containerizer.cleanup(&handle).await;
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
}

#[tokio::test]
async fn a_missing_program_fails_the_launch() {
    let agent = Agent::new(cgroups::detect());
    let mut spec = shell_task("missing", "/no/such");
    if let Some(command) = spec.command.as_mut() {
        command.shell = false;
    }
    let err = agent.launch(&spec, &[]).await.expect_err("no such program");
    assert_eq!(err.reason, "REASON_CONTAINER_LAUNCH_FAILED");
    assert!(err.message.contains("no such file: /no/such"), "{err:?}");
    // Nothing is left running under this agent's key.
    assert!(agent.containerizer.ours().await.is_empty());
}

#[tokio::test]
async fn a_missing_shell_command_says_command_not_found() {
    let agent = Agent::new(None);
    let spec = shell_task("typo", "no-such-command-for-meso-tests");
    let handle = agent.launch(&spec, &[]).await.expect("sh itself starts");
    let exit = agent.wait(&handle).await;
    assert_eq!(exit.code, Some(127));
    assert!(exit.message.contains("command not found"), "{exit:?}");
}

#[tokio::test]
async fn kill_reaches_grandchildren() {
    let agent = Agent::new(cgroups::detect());
    let spec = shell_task("tree", "sleep 1000 & sleep 1000 & echo started; wait");
    let handle = agent.launch(&spec, &[]).await.expect("launch");
    let (_, _, pgid, _) = parts(&handle);
    eventually("sh and both sleeps run", || group_members(pgid).len() == 3).await;

    let started = Instant::now();
    agent
        .containerizer
        .kill(&handle, Duration::from_secs(5))
        .await;
    let exit = agent.wait(&handle).await;
    assert_eq!(exit.signal, Some(libc::SIGTERM), "{exit:?}");
    assert_eq!(exit.message, "killed by signal 15 (SIGTERM)");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SIGTERM sufficed"
    );
    assert_eq!(group_members(pgid), Vec::<i32>::new());
}

#[tokio::test]
async fn kill_reaches_what_left_the_group_through_the_cgroup() {
    let Some(cgroups) = cgroups::detect() else {
        eprintln!("note: no usable cgroups on this host; skipping");
        return;
    };
    let agent = Agent::new(Some(cgroups));
    let spec = shell_task(
        "escape",
        "setsid sleep 1000 & echo $! > escaped; sleep 1000",
    );
    let handle = agent.launch(&spec, &[]).await.expect("launch");
    let pid_file = agent.sandbox("escape").join("escaped");
    let mut escaped = 0;
    eventually("the escapee writes its pid", || {
        escaped = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        escaped > 0
    })
    .await;
    let (_, _, pgid, dirs) = parts(&handle);
    eventually("the escapee has its own session", || {
        stat(escaped).is_some_and(|(_, _, pgrp, _)| pgrp != pgid)
    })
    .await;

    agent
        .containerizer
        .kill(&handle, Duration::from_secs(5))
        .await;
    agent.wait(&handle).await;
    eventually("the escapee is gone", || !running(escaped)).await;
    assert!(dirs.iter().all(|d| cgroups::procs(d).is_empty()));
}

#[tokio::test]
async fn a_task_ignoring_sigterm_dies_by_sigkill_after_the_grace() {
    let agent = Agent::new(cgroups::detect());
    let spec = shell_task("stubborn", "trap '' TERM; echo ready; sleep 1000");
    let handle = agent.launch(&spec, &[]).await.expect("launch");
    let stdout = agent.sandbox("stubborn").join("stdout");
    eventually("the trap is set", || {
        std::fs::read_to_string(&stdout).is_ok_and(|s| s.contains("ready"))
    })
    .await;

    let grace = Duration::from_millis(700);
    let started = Instant::now();
    agent.containerizer.kill(&handle, grace).await;
    let exit = agent.wait(&handle).await;
    assert!(started.elapsed() >= grace, "{:?}", started.elapsed());
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    assert_eq!(exit.message, "killed by signal 9 (SIGKILL)");
    assert_eq!(exit.reason, None);
}

#[tokio::test]
async fn a_task_over_its_memory_limit_is_named_so() {
    let Some(cgroups) = cgroups::detect() else {
        eprintln!("note: no usable cgroups on this host; skipping");
        return;
    };
    let agent = Agent::new(Some(cgroups));
    let mut spec = shell_task("hog", r#"python3 -c "b = bytearray(200 * 1024 * 1024)""#);
    spec.mem = 32.0;
    let handle = agent.launch(&spec, &[]).await.expect("launch");
    let exit = agent.wait(&handle).await;
    assert_eq!(
        exit.reason.as_deref(),
        Some("REASON_CONTAINER_LIMITATION_MEMORY"),
        "{exit:?}"
    );
    assert!(exit.message.contains("32 MB"), "{exit:?}");
    assert!(!exit.succeeded());
    agent.containerizer.cleanup(&handle).await;
}

/// Not a test by itself: `a_new_agent_process_finds_and_waits_on_old_tasks`
/// runs it in a child process, which launches one task, prints its handle and
/// exits, as an agent that is `kill -9`ed right after a launch.
#[tokio::test]
async fn helper_launch_then_exit() {
    let Ok(setup) = std::env::var("MESO_TEST_LAUNCH_AS") else {
        return;
    };
    let (key, root) = setup.split_once(':').expect("key:dir");
    let root = PathBuf::from(root);
    let meso = PathBuf::from(env!("CARGO_BIN_EXE_meso"));
    let containerizer = ProcessContainerizer::new(meso, key.into(), cgroups::detect());
    let spec = shell_task("survivor", "while [ ! -e go ]; do sleep 0.02; done; exit 7");
    let sandbox = root.join("sandbox");
    std::fs::create_dir_all(&sandbox).expect("sandbox");
    let req = LaunchRequest {
        spec: &spec,
        sandbox: &sandbox,
        env: BTreeMap::from([("PATH".into(), PATH.into())]),
        meta_dir: &root.join("meta").join("survivor"),
    };
    let launched = containerizer.launch(req).await.expect("launch");
    let json = serde_json::to_string(&launched.handle).expect("json");
    println!("HANDLE {json}");
}

#[tokio::test]
async fn a_new_agent_process_finds_and_waits_on_old_tasks() {
    // The agent after the restart; it exists first so that its guard cleans
    // up even when the helper's output makes no sense.
    let agent = Agent::new(cgroups::detect());
    // The helper's name as the test binary lists it: its module path
    // without the crate's name.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let helper = format!("{module}::helper_launch_then_exit");
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            helper.as_str(),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "MESO_TEST_LAUNCH_AS",
            format!("{}:{}", agent.key, agent.dir.path().display()),
        )
        .output()
        .expect("run the helper");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let handle: ContainerHandle = stdout
        .lines()
        .find_map(|l| l.split_once("HANDLE ").map(|(_, json)| json))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| panic!("the helper printed no handle: {stdout}\n{output:?}"));
    agent
        .launched
        .lock()
        .expect("lock")
        .push(KillOnDrop(handle.clone()));

    // The launching process is gone (its output was read to the end, so the
    // supervisor let go of its pipes); the task's supervisor goes on.
    let (pid, ..) = parts(&handle);
    let (_, supervisor, ..) = stat(pid).expect("the task outlived its agent");
    assert_ne!(supervisor, std::process::id() as i32);
    assert!(
        is_supervisor(supervisor),
        "the task's parent is not a supervisor"
    );

    // Found again as it was launched, but for the exit file /proc cannot tell.
    let found: Vec<_> = agent.containerizer.ours().await.iter().map(parts).collect();
    assert_eq!(found, vec![parts(&handle)]);
    let other = Agent::new(None);
    let found_by_other: Vec<_> = other.containerizer.ours().await.iter().map(parts).collect();
    assert!(!found_by_other.contains(&parts(&handle)));

    let waiting = agent.containerizer.wait(&handle);
    std::fs::write(agent.dir.path().join("sandbox").join("go"), "").expect("go");
    let exit = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("ended");
    assert_eq!(exit.code, Some(7), "{exit:?}");
    assert!(agent.containerizer.ours().await.is_empty());
    // With its agent gone and its last task ended, the supervisor leaves.
    eventually("the supervisor is gone", || !running(supervisor)).await;
    agent.containerizer.cleanup(&handle).await;
}

/// Whether a process is a task supervisor (`meso task-launcher`).
fn is_supervisor(pid: i32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == b"task-launcher")
}

#[tokio::test]
async fn a_handle_whose_pid_was_reused_is_gone_and_never_signalled() {
    let agent = Agent::new(None);
    let handle = agent
        .launch(&shell_task("long", "sleep 1000"), &[])
        .await
        .expect("launch");
    let ContainerHandle::Process {
        pid,
        start_time,
        pgid,
        exit_file,
        cgroups,
    } = handle.clone()
    else {
        unreachable!()
    };
    // Same pid, another start time: what a recycled pid looks like.
    let stranger = ContainerHandle::Process {
        pid,
        start_time: start_time + 1,
        pgid,
        exit_file,
        cgroups,
    };
    let exit = agent.wait(&stranger).await;
    assert_eq!(exit.reason.as_deref(), Some("REASON_EXECUTOR_TERMINATED"));
    assert!(exit.message.contains("vanished"), "{exit:?}");

    agent.containerizer.kill(&stranger, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(running(pid), "the task was signalled");

    agent.containerizer.kill(&handle, Duration::ZERO).await;
    let exit = agent.wait(&handle).await;
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
}

/// On cgroups v1, detection turns on the kernel's `favordynmods` (a named
/// hierarchy of meso's mounted with it), so moving a task into its groups
/// does not wait for an RCU grace period. The mount is a host-wide switch
/// that outlives the agent, so on a host where it was made before this only
/// confirms it is still there; on a fresh host it is the agent's doing.
#[test]
fn cgroups_v1_detection_turns_on_favordynmods() {
    let Some(found) = cgroups::detect() else {
        eprintln!("note: no usable cgroups on this host; skipping");
        return;
    };
    if !matches!(found, Cgroups::V1 { .. }) {
        eprintln!("note: cgroups v2 here; favordynmods is left to the host");
        return;
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read /proc/self/mounts");
    let favored = mounts.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(2) == Some(&"cgroup")
            && fields
                .get(3)
                .is_some_and(|o| o.split(',').any(|o| o == "favordynmods"))
    });
    assert!(
        favored,
        "no cgroup hierarchy mounted with favordynmods:\n{mounts}"
    );
}

/// Linked at a fixed address, every meso process (master, agent, the task
/// launcher) starts without applying ~33,000 relocations and keeps ~10 MB
/// less resident (build.rs). An ELF's e_type at byte 16: 2 is a
/// fixed-address executable, 3 a position-independent one.
#[test]
fn the_meso_executable_is_linked_at_a_fixed_address() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_meso")).expect("read the meso binary");
    assert_eq!(&elf[..4], b"\x7fELF");
    let e_type = u16::from_le_bytes([elf[16], elf[17]]);
    assert_eq!(e_type, 2, "meso is not ET_EXEC; build.rs's -no-pie is gone");
}

/// A supervisor that dies (here by `kill -9`) takes its tasks with it, and
/// their ends are told as such; the next launch starts a new supervisor.
#[tokio::test]
async fn a_killed_supervisor_takes_its_tasks_and_is_replaced() {
    let agent = Agent::new(cgroups::detect());
    let first = agent
        .launch(&shell_task("first", "sleep 600"), &[])
        .await
        .expect("launch");
    let (task, ..) = parts(&first);
    let (_, supervisor, ..) = stat(task).expect("the task runs");
    assert!(
        is_supervisor(supervisor),
        "the task's parent is not the supervisor"
    );
    // SAFETY: kill(2) of this test's supervisor.
    unsafe { libc::kill(supervisor, libc::SIGKILL) };
    let exit = agent.wait(&first).await;
    assert_eq!(exit.reason.as_deref(), Some("REASON_EXECUTOR_TERMINATED"));
    assert!(exit.message.contains("vanished"), "{exit:?}");
    assert!(!running(task), "the task outlived its supervisor");

    let second = agent
        .launch(&shell_task("second", "sleep 600"), &[])
        .await
        .expect("a launch after the supervisor died");
    let (other_task, ..) = parts(&second);
    let (_, other_supervisor, ..) = stat(other_task).expect("the second task runs");
    assert_ne!(other_supervisor, supervisor);
    let found: Vec<_> = agent.containerizer.ours().await.iter().map(parts).collect();
    assert_eq!(found, vec![parts(&second)]);
    agent.containerizer.kill(&second, Duration::ZERO).await;
    assert_eq!(agent.wait(&second).await.signal, Some(libc::SIGKILL));
    for handle in [&first, &second] {
        agent.containerizer.cleanup(handle).await;
    }
}

fn exit_file_of(handle: &ContainerHandle) -> PathBuf {
    match handle {
        ContainerHandle::Process { exit_file, .. } => exit_file.clone(),
        other => panic!("not a process handle: {other:?}"),
    }
}

/// While the agent is there, a task's end comes to it over the supervisor's
/// pipe: no exit file, not even its directory, and the task stays an
/// unreaped zombie (its pid not reusable, its end not lost) until the agent
/// says it has recorded the end.
#[tokio::test]
async fn an_end_is_told_and_the_task_kept_until_the_agent_records_it() {
    let agent = Agent::new(cgroups::detect());
    let handle = agent
        .launch(&shell_task("told", "exit 5"), &[])
        .await
        .expect("launch");
    let exit = agent.wait(&handle).await;
    assert_eq!(exit.code, Some(5), "{exit:?}");
    let exit_file = exit_file_of(&handle);
    assert!(
        !exit_file.parent().expect("a meta dir").exists(),
        "{} was made",
        exit_file.display()
    );
    let (pid, ..) = parts(&handle);
    let (state, parent, ..) = stat(pid).expect("the ended task is kept");
    assert_eq!(state, 'Z');
    assert!(is_supervisor(parent), "kept by its supervisor");
    agent.containerizer.end_recorded(&handle).await;
    eventually("the task reaped", || {
        stat(pid).is_none_or(|(_, ppid, ..)| ppid != parent)
    })
    .await;
    agent.containerizer.cleanup(&handle).await;
}

/// An agent that goes after it was told of an end but before it recorded it
/// leaves the end to the next one: its supervisor writes the exit file, then
/// reaps the task, and the next agent process reads it.
#[tokio::test]
async fn an_end_told_to_an_agent_that_went_is_in_the_exit_file() {
    let mut agent = Agent::new(None);
    let handle = agent
        .launch(&shell_task("told-then-gone", "exit 6"), &[])
        .await
        .expect("launch");
    assert_eq!(agent.wait(&handle).await.code, Some(6));
    let (pid, ..) = parts(&handle);
    let (_, supervisor, ..) = stat(pid).expect("the ended task is kept");

    // The agent process goes (its launcher, and with it the supervisor's
    // stdin); the next one has the same key.
    let meso = PathBuf::from(env!("CARGO_BIN_EXE_meso"));
    let next = ProcessContainerizer::new(meso, agent.key.clone(), None);
    drop(std::mem::replace(&mut agent.containerizer, next));

    let exit = agent.wait(&handle).await;
    assert_eq!(exit.code, Some(6), "{exit:?}");
    let written = std::fs::read_to_string(exit_file_of(&handle)).expect("the exit file");
    assert_eq!(written, r#"{"code":6}"#);
    eventually("the supervisor, without tasks or agent, gone", || {
        !running(supervisor)
    })
    .await;
}
