//! cgroups for process tasks: a memory limit the kernel enforces, a CPU share,
//! and one place that holds every process of a task, even those that left its
//! process group.
//!
//! ```text
//!  detect(): /proc/self/mounts ─▶ v2 root with `memory` in cgroup.controllers?
//!              yes ─▶ V2 (pure v2 host)
//!              no  ─▶ v1 `memory` hierarchy (+ `cpu` when mounted)? ─▶ V1
//!              neither, or `<root>/meso` cannot be made ─▶ None
//!  create(agent, task, limits) ─▶ <root>/meso/<agent>/<task> (one dir per v1
//!              hierarchy, one in v2) with the limits written
//!  the task's child joins them before exec; wait reads oom_kills(),
//!  cleanup kills procs() and remove()s
//! ```
//!
//! The groups live under `meso` at the hierarchy's root, as Mesos keeps
//! `mesos/` there: a task is not inside the agent's own group, so restarting
//! the agent (or its service unit) does not move or limit its tasks.
//!
//! A hybrid host mounts v2 at `/sys/fs/cgroup/unified` without the memory
//! controller (it is bound to v1), so v2 is used only when it has `memory`.
//!
//! Moving a process into a group (what every task's child does) takes
//! the kernel's `cgroup_threadgroup_rwsem` for writing, which first waits for
//! an RCU grace period unless another move happened moments before: ~10 ms
//! on this project's 2-core machines when launches come apart, 0.1 ms back to
//! back. The kernel's `favordynmods` mount option (Linux 6.1+) keeps that lock
//! in the mode where writers need no grace period, at the price of a memory
//! barrier in every fork and exit. On v1 the agent turns it on by mounting a
//! named hierarchy of its own, `name=meso,favordynmods`, with no controllers,
//! at [`FAVOR_MOUNT`] (it stays mounted; the option is global, so one mount
//! serves every agent on the host). Without permission or on an older kernel
//! nothing changes but the latency. On v2 it would take remounting the host's
//! `/sys/fs/cgroup`, which is the host's to decide; spawning into the group
//! with `clone3(CLONE_INTO_CGROUP)` would avoid the move there instead.
//!
//! Everything after `create` works on the directories alone: the handle keeps
//! them, and an agent restarted on another setting (or with cgroups off) can
//! still read and remove what an earlier one made. Which version a directory
//! belongs to shows in the files it has.

use std::io;
use std::path::{Path, PathBuf};

/// The hierarchy the agent uses, found by [`detect`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cgroups {
    /// One hierarchy per controller. `cpu` is optional: without it a task gets
    /// no CPU share, but still its memory limit.
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
    },
    /// The unified hierarchy; `cpu` tells whether the cpu controller is there.
    V2 { root: PathBuf, cpu: bool },
}

/// What a task may use. Zero means "no limit".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub mem_bytes: u64,
    /// The task's `cpus` times 1024 (v1 `cpu.shares`; v2 converts it to a weight).
    pub cpu_shares: u64,
}

impl Limits {
    /// From a task's `mem` (MB) and `cpus`.
    pub fn from_task(mem_mb: f64, cpus: f64) -> Self {
        let to_u64 = |v: f64| {
            if v.is_finite() && v > 0.0 {
                v as u64
            } else {
                0
            }
        };
        Self {
            mem_bytes: to_u64(mem_mb * 1024.0 * 1024.0),
            cpu_shares: to_u64(cpus * 1024.0),
        }
    }
}

/// The name of the parent group of everything meso runs.
pub const PARENT: &str = "meso";

/// The host's cgroups, when the agent may use them: a memory controller is
/// mounted and the agent can make its `meso` group there.
pub fn detect() -> Option<Cgroups> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let found = parse_mounts(&mounts);
    if let Some(root) = found.v2 {
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        let controllers = parse_controllers(&controllers);
        if controllers.contains(&"memory") {
            let cgroups = Cgroups::V2 {
                cpu: controllers.contains(&"cpu"),
                root,
            };
            return cgroups.prepare().ok().map(|()| cgroups);
        }
    }
    let cgroups = Cgroups::V1 {
        memory: found.v1_memory?,
        cpu: found.v1_cpu,
    };
    cgroups.prepare().ok()?;
    if !found.favor_dynmods {
        match favor_task_moves() {
            Ok(()) => tracing::info!(
                mount = FAVOR_MOUNT,
                "cgroups v1: mounted a `favordynmods` hierarchy, so moving a task into \
                 its cgroups does not wait for an RCU grace period"
            ),
            Err(e) => tracing::debug!(error = %e, "cgroups v1: favordynmods not turned on"),
        }
    }
    Some(cgroups)
}

/// Where the agent mounts its named v1 hierarchy with `favordynmods`.
pub const FAVOR_MOUNT: &str = "/run/meso/cgroup-favordynmods";

/// Mounts `name=meso,favordynmods` at [`FAVOR_MOUNT`] (see the module doc).
fn favor_task_moves() -> io::Result<()> {
    std::fs::create_dir_all(FAVOR_MOUNT)?;
    nix::mount::mount(
        Some("cgroup"),
        FAVOR_MOUNT,
        Some("cgroup"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some("none,name=meso,favordynmods"),
    )
    .map_err(io::Error::from)
}

impl Cgroups {
    /// Makes `<root>/meso` in each hierarchy (and in v2 hands the controllers
    /// down to it): proof that the agent may write here.
    fn prepare(&self) -> io::Result<()> {
        match self {
            Self::V1 { memory, cpu } => {
                std::fs::create_dir_all(memory.join(PARENT))?;
                if let Some(cpu) = cpu {
                    std::fs::create_dir_all(cpu.join(PARENT))?;
                }
                Ok(())
            }
            Self::V2 { root, cpu } => {
                // v2 gives a child a controller only when every ancestor lists it
                // in cgroup.subtree_control; the root may, though it has processes.
                enable_v2_controllers(root, *cpu)?;
                let parent = root.join(PARENT);
                std::fs::create_dir_all(&parent)?;
                enable_v2_controllers(&parent, *cpu)
            }
        }
    }

    /// The directories of the task's groups, made or not (what `create`
    /// returns): an orphan found after a restart is cleaned up through them.
    pub fn dirs(&self, agent_key: &str, task_id: &str) -> Vec<PathBuf> {
        let (agent, task) = (sanitize(agent_key), sanitize(task_id));
        match self {
            Self::V1 { memory, cpu } => std::iter::once(memory)
                .chain(cpu)
                .map(|root| root.join(PARENT).join(&agent).join(&task))
                .collect(),
            Self::V2 { root, .. } => vec![root.join(PARENT).join(agent).join(task)],
        }
    }

    /// Makes the task's groups with its limits; returns their directories (the
    /// task joins each before its exec). An existing empty group of the same
    /// name (left by a crash) is replaced; one that still holds processes is
    /// an error, not something to share.
    pub fn create(
        &self,
        agent_key: &str,
        task_id: &str,
        limits: Limits,
    ) -> io::Result<Vec<PathBuf>> {
        let (agent, task) = (sanitize(agent_key), sanitize(task_id));
        match self {
            Self::V1 { memory, cpu } => {
                let mem_dir = make_leaf(&memory.join(PARENT).join(&agent), &task, None)?;
                let mut dirs = vec![mem_dir.clone()];
                let made = (|| {
                    if limits.mem_bytes > 0 {
                        let bytes = limits.mem_bytes.to_string();
                        write(&mem_dir, "memory.limit_in_bytes", &bytes)?;
                        // No swapping past the limit either; the file is absent on hosts
                        // without swap accounting.
                        let _ = write(&mem_dir, "memory.memsw.limit_in_bytes", &bytes);
                    }
                    if let Some(cpu) = cpu {
                        let cpu_dir = make_leaf(&cpu.join(PARENT).join(&agent), &task, None)?;
                        dirs.push(cpu_dir.clone());
                        if limits.cpu_shares > 0 {
                            let shares = limits.cpu_shares.max(2).to_string();
                            write(&cpu_dir, "cpu.shares", &shares)?;
                        }
                    }
                    Ok(())
                })();
                match made {
                    Ok(()) => Ok(dirs),
                    Err(e) => {
                        dirs.iter().for_each(|d| remove(d));
                        Err(e)
                    }
                }
            }
            Self::V2 { root, cpu } => {
                let agent_dir = root.join(PARENT).join(&agent);
                let dir = make_leaf(&agent_dir, &task, Some(*cpu))?;
                let made = (|| {
                    if limits.mem_bytes > 0 {
                        write(&dir, "memory.max", &limits.mem_bytes.to_string())?;
                        if dir.join("memory.swap.max").exists() {
                            write(&dir, "memory.swap.max", "0")?;
                        }
                        // An OOM kill ends the whole task, as Mesos destroys
                        // the container, not just its largest process.
                        if dir.join("memory.oom.group").exists() {
                            write(&dir, "memory.oom.group", "1")?;
                        }
                    }
                    if *cpu && limits.cpu_shares > 0 {
                        write(
                            &dir,
                            "cpu.weight",
                            &shares_to_weight(limits.cpu_shares).to_string(),
                        )?;
                    }
                    Ok(())
                })();
                match made {
                    Ok(()) => Ok(vec![dir]),
                    Err(e) => {
                        remove(&dir);
                        Err(e)
                    }
                }
            }
        }
    }
}

/// `<parent>/<name>`, made fresh. `v2_cpu` is Some for v2: the parent (the
/// agent's group) must hand the controllers down to its children.
fn make_leaf(parent: &Path, name: &str, v2_cpu: Option<bool>) -> io::Result<PathBuf> {
    let dir = parent.join(name);
    // A cleanup of the agent's last task may remove `parent` between our
    // create_dir_all and create_dir: one more round settles it. On v1 the
    // leaf is tried first, the parent made only when missing: with a task
    // running it is there, and making it again cost a mkdir and a stat per
    // hierarchy on every launch. (On v2 the parent's controllers are checked
    // every time.)
    for round in 0..3 {
        if round > 0 || v2_cpu.is_some() {
            std::fs::create_dir_all(parent)?;
        }
        if let Some(cpu) = v2_cpu {
            enable_v2_controllers(parent, cpu)?;
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !procs(&dir).is_empty() {
                    return Err(io::Error::other(format!(
                        "{} already holds running processes",
                        dir.display()
                    )));
                }
                std::fs::remove_dir(&dir)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("cannot make {}", dir.display())))
}

fn enable_v2_controllers(dir: &Path, cpu: bool) -> io::Result<()> {
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control"))?;
    let enabled = parse_controllers(&enabled);
    let mut wanted = vec!["memory"];
    if cpu {
        wanted.push("cpu");
    }
    for controller in wanted {
        if !enabled.contains(&controller) {
            write(dir, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write {value} to {}: {e}", path.display()),
        )
    })
}

/// A name the kernel takes as one directory: letters, digits, `-_.` kept,
/// anything else `_`, at most 200 bytes, never `.` or `..`.
pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// The processes in a group (pids; empty when the group is gone).
pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// How many times the kernel's OOM killer struck in the group: v2
/// `memory.events` or v1 `memory.oom_control` (`oom_kill`, kernel 4.13+).
/// None when the group has neither (not a memory group, or gone).
pub fn oom_kills(dir: &Path) -> Option<u64> {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let text = read("memory.events").or_else(|| read("memory.oom_control"))?;
    Some(parse_keyed(&text, "oom_kill").unwrap_or(0))
}

/// The group's memory limit in bytes; None when it has none.
pub fn memory_limit(dir: &Path) -> Option<u64> {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let text = read("memory.max").or_else(|| read("memory.limit_in_bytes"))?;
    parse_limit(&text)
}

/// Removes a task's group; a group the agent made per agent above it goes
/// too once it is empty. Fails quietly when processes remain (they show in
/// [`procs`]; the caller kills them first).
pub fn remove(dir: &Path) {
    // A killed process leaves the group a moment after the signal.
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    // The agent's group, when this was its last task (fails while others run).
    if let Some(agent_dir) = dir.parent()
        && agent_dir.parent().and_then(Path::file_name) == Some(PARENT.as_ref())
    {
        let _ = std::fs::remove_dir(agent_dir);
    }
}

/// The cgroup mounts in /proc/self/mounts.
#[derive(Debug, Default, PartialEq)]
struct Mounts {
    v1_memory: Option<PathBuf>,
    v1_cpu: Option<PathBuf>,
    v2: Option<PathBuf>,
    /// Some cgroup hierarchy is mounted with `favordynmods` (a global switch).
    favor_dynmods: bool,
}

fn parse_mounts(text: &str) -> Mounts {
    let mut found = Mounts::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, fstype, options, ..] = fields[..] else {
            continue;
        };
        // Mount points escape spaces as \040; cgroup mounts have none in practice.
        let dir = PathBuf::from(dir.replace("\\040", " "));
        let options: Vec<&str> = options.split(',').collect();
        if fstype.starts_with("cgroup") && options.contains(&"favordynmods") {
            found.favor_dynmods = true;
        }
        match fstype {
            "cgroup2" => {
                found.v2.get_or_insert(dir);
            }
            "cgroup" if options.contains(&"memory") => {
                found.v1_memory.get_or_insert(dir);
            }
            "cgroup" if options.contains(&"cpu") => {
                found.v1_cpu.get_or_insert(dir);
            }
            _ => {}
        }
    }
    found
}

fn parse_controllers(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// `key N` lines, as memory.events and memory.oom_control have them.
fn parse_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// v2 `max` or a byte count; v1's "no limit" is a huge page-aligned number.
fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    let bytes: u64 = text.parse().ok()?;
    (bytes < 1 << 62).then_some(bytes)
}

/// v1 shares (2..262144, 1024 = one CPU) to v2 weight (1..10000, 100 = one
/// CPU), the conversion runc and systemd use.
fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_host_mounts() {
        let text = "\
tmpfs /sys/fs/cgroup tmpfs rw,mode=755 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";
        assert_eq!(
            parse_mounts(text),
            Mounts {
                v1_memory: Some("/sys/fs/cgroup/memory".into()),
                v1_cpu: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
                v2: Some("/sys/fs/cgroup/unified".into()),
                favor_dynmods: false,
            }
        );
        let favored = format!(
            "{text}cgroup {FAVOR_MOUNT} cgroup rw,nosuid,nodev,noexec,relatime,name=meso,favordynmods 0 0\n"
        );
        assert!(parse_mounts(&favored).favor_dynmods);
    }

    #[test]
    fn pure_v2_host_mounts() {
        let text =
            "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n";
        let found = parse_mounts(text);
        assert_eq!(found.v2, Some("/sys/fs/cgroup".into()));
        assert_eq!(found.v1_memory, None);
        assert!(parse_controllers("cpuset cpu io memory hugetlb pids rdma\n").contains(&"memory"));
        assert!(!parse_controllers("cpuset cpu io pids\n").contains(&"memory"));
    }

    #[test]
    fn oom_counters_of_both_versions() {
        let v2_events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_keyed(v2_events, "oom_kill"), Some(1));
        // `oom` must not be read as `oom_kill`, nor `oom_kill` as `oom`.
        assert_eq!(parse_keyed(v2_events, "oom"), Some(1));
        let v1_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_keyed(v1_control, "oom_kill"), Some(3));
        assert_eq!(
            parse_keyed("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"),
            None
        );
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("33554432\n"), Some(32 << 20));
        let l = Limits::from_task(32.0, 0.5);
        assert_eq!((l.mem_bytes, l.cpu_shares), (32 << 20, 512));
        assert_eq!(Limits::from_task(0.0, f64::NAN), Limits::default());
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn names_stay_one_directory() {
        assert_eq!(sanitize("web.1-a_b"), "web.1-a_b");
        assert_eq!(sanitize("../x/y"), "_.._x_y");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize(&"a".repeat(300)).len(), 200);
    }
}
