//! The docker containerizer against the real local Docker engine, through the
//! library (no agent): what a task's owner would see in its sandbox, its exit,
//! its ports, its limits, and after an agent restart.
//!
//! Needs a running dockerd and the image `meso-test/busybox:latest`
//! (scripts/test.sh provides both; scripts/test-image.sh builds the image).
//! Without them every test fails, saying so. Each test uses its own agent key
//! and task ids, so tests run in parallel, and a [`Cleanup`] guard removes its
//! containers even when the test panics.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meso::agent::containerizer::docker::{DockerContainerizer, container_name};
use meso::agent::containerizer::{
    ContainerHandle, Containerizer, Exit, LaunchError, LaunchRequest, Launched,
};
use meso::model::{
    CommandSpec, ContainerKind, ContainerSpec, DockerNetwork, DockerSpec, PortMapping, TaskSpec,
    Volume, VolumeMode,
};
use tempfile::TempDir;

const IMAGE: &str = "meso-test/busybox:latest";
/// A bound for anything that should take a second or two; not a benchmark.
const PATIENCE: Duration = Duration::from_secs(60);

fn random_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Removes the named containers when dropped, panicking test or not.
struct Cleanup(Vec<String>);

impl Cleanup {
    fn task(&mut self, task_id: &str) {
        self.0.push(container_name(task_id));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker")
                .args(["rm", "-f", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A containerizer for a fresh agent key, or a failure that says what is missing.
async fn connect(agent_key: &str) -> DockerContainerizer {
    let containerizer = DockerContainerizer::connect(agent_key.to_string())
        .await
        .unwrap_or_else(|e| {
            panic!("{e}\nthese tests need a running dockerd: scripts/test.sh starts one")
        });
    let image = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        image.is_ok_and(|s| s.success()),
        "test image {IMAGE} is missing: run scripts/test-image.sh"
    );
    containerizer
}

fn docker_task(task_id: &str, shell_command: Option<&str>) -> TaskSpec {
    TaskSpec {
        task_id: task_id.to_string(),
        agent_id: "test-S0".into(),
        command: shell_command.map(|c| CommandSpec {
            value: Some(c.to_string()),
            shell: true,
            ..Default::default()
        }),
        container: Some(ContainerSpec {
            kind: ContainerKind::Docker,
            docker: Some(DockerSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            volumes: Vec::new(),
        }),
        ..Default::default()
    }
}

async fn launch(
    c: &DockerContainerizer,
    spec: &TaskSpec,
    sandbox: &Path,
    env: BTreeMap<String, String>,
) -> Result<Launched, LaunchError> {
    c.launch(LaunchRequest {
        spec,
        sandbox,
        env,
        meta_dir: sandbox,
    })
    .await
}

async fn wait(c: &DockerContainerizer, handle: &ContainerHandle) -> Exit {
    tokio::time::timeout(PATIENCE, c.wait(handle))
        .await
        .expect("the container did not end in time")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Polls until `path` holds `needle`.
async fn wait_for_text(path: &Path, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !read(path).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{} never said {needle:?}; it holds {:?}",
            path.display(),
            read(path)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn docker_inspect(name: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, name])
        .output()
        .expect("docker inspect runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn output_lands_in_the_sandbox_and_the_exit_code_is_reported() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let sandbox = TempDir::new().unwrap();
    let task_id = random_id("out");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    let mut spec = docker_task(
        &task_id,
        Some(
            "echo hello-out; echo hello-err >&2; \
             echo \"sandbox=$MESOS_SANDBOX pwd=$(pwd) var=$MY_VAR\"; \
             echo made-inside > $MESOS_SANDBOX/inside; exit 3",
        ),
    );
    spec.labels.insert("team".into(), "blue".into());
    let env = BTreeMap::from([("MY_VAR".to_string(), "my-value".to_string())]);
    let started = Instant::now();
    let launched = launch(&c, &spec, sandbox.path(), env).await.unwrap();
    eprintln!("launch → running: {:?}", started.elapsed());
    let ContainerHandle::Docker { name, .. } = &launched.handle else {
        panic!("not a docker handle: {:?}", launched.handle);
    };
    assert_eq!(name, &format!("meso-{task_id}"));
    assert!(launched.ips.is_empty(), "HOST network has no container IP");

    let exit = wait(&c, &launched.handle).await;
    assert_eq!(exit.code, Some(3), "{exit:?}");
    assert!(!exit.succeeded());
    assert!(exit.message.contains("status 3"), "{}", exit.message);
    assert_eq!(exit.reason, None);

    let stdout = read(&sandbox.path().join("stdout"));
    assert!(stdout.contains("hello-out"), "stdout: {stdout:?}");
    assert!(!stdout.contains("hello-err"), "stdout: {stdout:?}");
    assert!(
        stdout.contains("sandbox=/mnt/mesos/sandbox pwd=/mnt/mesos/sandbox var=my-value"),
        "stdout: {stdout:?}"
    );
    assert!(read(&sandbox.path().join("stderr")).contains("hello-err"));
    assert_eq!(read(&sandbox.path().join("inside")), "made-inside\n");
    assert_eq!(
        docker_inspect(name, "{{index .Config.Labels \"team\"}}"),
        "blue"
    );
    assert_eq!(
        docker_inspect(name, "{{index .Config.Labels \"meso.task\"}}"),
        task_id
    );

    c.cleanup(&launched.handle).await;
    assert_eq!(docker_inspect(name, "{{.Id}}"), "", "cleanup removes it");
}

/// The pump asks for the output a moment after the start (out of the way of
/// the RUNNING update): whatever the container wrote by then, or in all its
/// life if it ended first, still lands in the sandbox whole and once.
#[tokio::test]
async fn output_written_before_the_copy_starts_lands_whole_and_once() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let sandbox = TempDir::new().unwrap();
    let task_id = random_id("early");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    let spec = docker_task(
        &task_id,
        Some("i=1; while [ $i -le 3000 ]; do echo line-$i; i=$((i+1)); done; echo end >&2"),
    );
    let launched = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap();
    let exit = wait(&c, &launched.handle).await;
    assert_eq!(exit.code, Some(0), "{exit:?}");

    let expected: String = (1..=3000).map(|i| format!("line-{i}\n")).collect();
    let stdout = read(&sandbox.path().join("stdout"));
    assert!(
        stdout == expected,
        "stdout has {} lines, not lines 1 to 3000 once each; it starts {:?}",
        stdout.lines().count(),
        stdout.chars().take(80).collect::<String>()
    );
    assert_eq!(read(&sandbox.path().join("stderr")), "end\n");
    c.cleanup(&launched.handle).await;
}

#[tokio::test]
async fn volumes_bind_host_and_sandbox_paths_with_their_modes() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let sandbox = TempDir::new().unwrap();
    let host_dir = TempDir::new().unwrap();
    std::fs::write(host_dir.path().join("in"), "from-the-host\n").unwrap();
    let task_id = random_id("vol");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    let mut spec = docker_task(
        &task_id,
        Some("cat /data/in && echo kept > /cache/out && ! touch /data/nope 2>/dev/null"),
    );
    let volumes = &mut spec.container.as_mut().unwrap().volumes;
    volumes.push(Volume {
        container_path: "/data".into(),
        host_path: host_dir.path().display().to_string(),
        mode: VolumeMode::RO,
    });
    volumes.push(Volume {
        container_path: "/cache".into(),
        host_path: "cache".into(),
        mode: VolumeMode::RW,
    });
    let launched = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap();
    let exit = wait(&c, &launched.handle).await;
    assert!(
        exit.succeeded(),
        "{exit:?}; stderr: {:?}",
        read(&sandbox.path().join("stderr"))
    );
    assert!(read(&sandbox.path().join("stdout")).contains("from-the-host"));
    assert_eq!(read(&sandbox.path().join("cache/out")), "kept\n");
    assert!(
        !host_dir.path().join("nope").exists(),
        "RO volume was written"
    );

    // A relative path may not climb out of the sandbox.
    let escaping = random_id("vol-escape");
    guard.task(&escaping);
    let mut spec = docker_task(&escaping, Some("true"));
    spec.container.as_mut().unwrap().volumes.push(Volume {
        container_path: "/x".into(),
        host_path: "../outside".into(),
        mode: VolumeMode::RW,
    });
    let err = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        err.message.contains("container.volumes[0].host_path"),
        "{err:?}"
    );
    c.cleanup(&launched.handle).await;
}

#[tokio::test]
async fn a_bridge_task_answers_on_its_mapped_host_port_and_reports_its_ip() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let sandbox = TempDir::new().unwrap();
    let task_id = random_id("web");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    let host_port = {
        let probe = TcpListener::bind("0.0.0.0:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut spec = docker_task(
        &task_id,
        Some(
            "mkdir -p /www && echo meso-bridge-ok > /www/index.html && exec httpd -f -p 8080 -h /www",
        ),
    );
    let docker = spec.container.as_mut().unwrap().docker.as_mut().unwrap();
    docker.network = DockerNetwork::Bridge;
    docker.port_mappings.push(PortMapping {
        host_port,
        container_port: 8080,
        protocol: "tcp".into(),
        name: Some("http".into()),
    });
    let launched = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(launched.ips.len(), 1, "{:?}", launched.ips);
    let ip: Ipv4Addr = launched.ips[0].parse().expect("an IPv4 bridge address");
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");

    let url = format!("http://127.0.0.1:{host_port}/index.html");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    let body = loop {
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => break r.text().await.unwrap(),
            other => {
                assert!(Instant::now() < deadline, "{url} never answered: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(body, "meso-bridge-ok\n");

    c.kill(&launched.handle, Duration::from_secs(1)).await;
    let exit = wait(&c, &launched.handle).await;
    assert!(exit.code.is_some(), "{exit:?}");
    c.cleanup(&launched.handle).await;
}

/// The launch benchmark's BRIDGE task: no port mappings. Its RUNNING still
/// carries the IP the engine gave it (read as the start ends, start.rs), and
/// nothing is published on the host (no docker-proxy per launch).
#[tokio::test]
async fn a_bridge_task_without_ports_reports_the_engines_ip_and_publishes_nothing() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let sandbox = TempDir::new().unwrap();
    let task_id = random_id("bare");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    let mut spec = docker_task(&task_id, Some("exec sleep 600"));
    let docker = spec.container.as_mut().unwrap().docker.as_mut().unwrap();
    docker.network = DockerNetwork::Bridge;
    let launched = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap();
    let name = container_name(&task_id);
    let engine_ip = docker_inspect(
        &name,
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    assert_eq!(launched.ips, vec![engine_ip], "the IP docker inspect shows");
    assert_eq!(
        docker_inspect(&name, "{{json .NetworkSettings.Ports}}"),
        "{}"
    );

    c.kill(&launched.handle, Duration::ZERO).await;
    wait(&c, &launched.handle).await;
    c.cleanup(&launched.handle).await;
}

#[tokio::test]
async fn a_task_over_its_memory_limit_ends_with_the_memory_reason() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let sandbox = TempDir::new().unwrap();
    let task_id = random_id("oom");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    let mut spec = docker_task(&task_id, Some("x=a; while true; do x=$x$x; done"));
    spec.mem = 16.0;
    spec.cpus = 0.5;
    let launched = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap();
    let ContainerHandle::Docker { name, .. } = &launched.handle else {
        unreachable!()
    };
    assert_eq!(docker_inspect(name, "{{.HostConfig.Memory}}"), "16777216");
    assert_eq!(
        docker_inspect(name, "{{.HostConfig.MemorySwap}}"),
        "16777216"
    );
    assert_eq!(docker_inspect(name, "{{.HostConfig.CpuShares}}"), "512");

    let exit = wait(&c, &launched.handle).await;
    assert_eq!(
        exit.reason.as_deref(),
        Some("REASON_CONTAINER_LIMITATION_MEMORY"),
        "{exit:?}"
    );
    assert!(
        exit.message.contains("memory limit (16 MB)"),
        "{}",
        exit.message
    );
    assert!(!exit.succeeded());
    c.cleanup(&launched.handle).await;
}

#[tokio::test]
async fn an_unknown_image_fails_the_launch_naming_the_image() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let sandbox = TempDir::new().unwrap();
    let task_id = random_id("noimg");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    // A registry that refuses at once: no pull reaches the network.
    let image = format!("127.0.0.1:1/meso-test/{}", random_id("no-such-image"));
    let mut spec = docker_task(&task_id, Some("true"));
    spec.container
        .as_mut()
        .unwrap()
        .docker
        .as_mut()
        .unwrap()
        .image = image.clone();
    let err = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.reason, "REASON_CONTAINER_PREPARATION_FAILED");
    assert!(
        err.message.contains(&format!("'{image}:latest'")),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("could not be pulled"),
        "{}",
        err.message
    );
    assert!(c.ours().await.is_empty(), "no container is left behind");
}

#[tokio::test]
async fn kill_sends_sigterm_then_sigkill_after_the_grace_period() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let mut guard = Cleanup(Vec::new());

    // A task that handles SIGTERM ends by it, well within the grace period.
    let polite = TempDir::new().unwrap();
    let polite_id = random_id("term");
    guard.task(&polite_id);
    let spec = docker_task(
        &polite_id,
        Some("trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done"),
    );
    let launched = launch(&c, &spec, polite.path(), BTreeMap::new())
        .await
        .unwrap();
    wait_for_text(&polite.path().join("stdout"), "ready").await;
    let started = Instant::now();
    c.kill(&launched.handle, Duration::from_secs(20)).await;
    let exit = wait(&c, &launched.handle).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(exit.code, Some(0), "{exit:?}");
    assert!(read(&polite.path().join("stdout")).contains("got-term"));

    // A task that ignores it (sh as PID 1 without a trap) is SIGKILLed after it.
    let stubborn = TempDir::new().unwrap();
    let stubborn_id = random_id("kill");
    guard.task(&stubborn_id);
    let spec = docker_task(
        &stubborn_id,
        Some("echo ready; while true; do sleep 0.1; done"),
    );
    let launched = launch(&c, &spec, stubborn.path(), BTreeMap::new())
        .await
        .unwrap();
    wait_for_text(&stubborn.path().join("stdout"), "ready").await;
    let started = Instant::now();
    c.kill(&launched.handle, Duration::from_millis(1500)).await;
    let exit = wait(&c, &launched.handle).await;
    let took = started.elapsed();
    // 1.5 s rounds up to docker's whole seconds: 2.
    assert!(
        took >= Duration::from_millis(1900),
        "killed before the grace ended: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(exit.code, Some(137), "{exit:?}");
    assert!(exit.message.contains("signal 9"), "{}", exit.message);
}

#[tokio::test]
async fn a_new_containerizer_adopts_the_running_container_of_the_old_one() {
    let key = random_id("agent");
    let sandbox = TempDir::new().unwrap();
    let task_id = random_id("adopt");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    let spec = docker_task(
        &task_id,
        Some(
            "echo before; while [ ! -f $MESOS_SANDBOX/go ]; do echo tick; sleep 0.2; done; echo after; exit 7",
        ),
    );
    let handle = {
        let old = connect(&key).await;
        let launched = launch(&old, &spec, sandbox.path(), BTreeMap::new())
            .await
            .unwrap();
        wait_for_text(&sandbox.path().join("stdout"), "before").await;
        launched.handle
        // `old` is dropped here, its log pump with it: the agent "dies".
    };

    let new = connect(&key).await;
    assert_eq!(new.ours().await, vec![handle.clone()]);
    let other_agent = connect(&random_id("agent")).await;
    assert!(
        other_agent.ours().await.is_empty(),
        "another agent's key finds nothing"
    );

    let stdout = sandbox.path().join("stdout");
    let ticks = || read(&stdout).matches("tick").count();
    // The old pump has stopped once its copy stops growing.
    let mut copied_by_the_old = ticks();
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = ticks();
        if now == copied_by_the_old {
            break;
        }
        copied_by_the_old = now;
    }
    let waiting = tokio::spawn(async move {
        let exit = wait(&new, &handle).await;
        (exit, new)
    });
    // Once the new pump copies ticks, it is past the second it starts from
    // (what came between the two pumps is not copied twice, nor at all).
    let deadline = Instant::now() + PATIENCE;
    while ticks() <= copied_by_the_old {
        assert!(Instant::now() < deadline, "the new pump copied nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(sandbox.path().join("go"), "").unwrap();
    let (exit, new) = waiting.await.unwrap();
    assert_eq!(exit.code, Some(7), "{exit:?}");
    let stdout = read(&sandbox.path().join("stdout"));
    assert_eq!(stdout.matches("before").count(), 1, "stdout: {stdout:?}");
    assert_eq!(stdout.matches("after").count(), 1, "stdout: {stdout:?}");

    // An exited container is still ours until cleaned up.
    let handles = new.ours().await;
    assert_eq!(handles.len(), 1);
    new.cleanup(&handles[0]).await;
    assert!(new.ours().await.is_empty());
    let exit = wait(&new, &handles[0]).await;
    assert!(exit.message.contains("is gone"), "{exit:?}");
}

#[tokio::test]
async fn a_stale_container_of_the_same_task_is_replaced_but_not_another_agents() {
    let key = random_id("agent");
    let c = connect(&key).await;
    let sandbox = TempDir::new().unwrap();
    let task_id = random_id("stale");
    let mut guard = Cleanup(Vec::new());
    guard.task(&task_id);

    let spec = docker_task(&task_id, Some("sleep 600"));
    let first = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap();
    // The agent crashed before checkpointing: it launches the task again.
    let second = launch(&c, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap();
    assert_ne!(first.handle, second.handle);
    assert_eq!(c.ours().await, vec![second.handle.clone()]);

    let intruder = connect(&random_id("agent")).await;
    let err = launch(&intruder, &spec, sandbox.path(), BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        err.message.contains("is taken by another container"),
        "{err:?}"
    );
    assert_eq!(c.ours().await, vec![second.handle.clone()], "still running");

    c.kill(&second.handle, Duration::ZERO).await;
    wait(&c, &second.handle).await;
    c.cleanup(&second.handle).await;
}
