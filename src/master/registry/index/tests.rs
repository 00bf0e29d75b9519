//! The indices against the truth: after every command of random sequences
//! (launches that fit or not, statuses in any order, kills, agents lost,
//! back and gone), each index equals a recount of the registry's tasks and
//! agents made here from their definitions, and a registry read back from
//! its snapshot holds the same indices.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::master::command::{Command, ReportedTask};
use crate::master::registry::Registry;
use crate::model::{HealthCheckSpec, Resources, RunSpecRef, TaskPort, TaskSpec, TaskStatus};

const AGENTS: u8 = 3;
const TASKS: u8 = 12;
const APPS: [&str; 3] = ["/a", "/b", "/c"];
const STATES: [TaskState; 12] = [
    TaskState::Staging,
    TaskState::Starting,
    TaskState::Running,
    TaskState::Killing,
    TaskState::Finished,
    TaskState::Failed,
    TaskState::Killed,
    TaskState::Error,
    TaskState::Lost,
    TaskState::Dropped,
    TaskState::Unreachable,
    TaskState::Gone,
];

#[derive(Debug, Clone)]
enum Step {
    Register(u8, Vec<(u8, u8)>),
    Unreachable(u8),
    Gone(u8),
    Launch(Vec<(u8, u8, Option<u8>, u8, bool, bool)>),
    Status(u8, u8, Option<bool>, Option<bool>),
    Kill(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..AGENTS, vec((0..TASKS, 0u8..12), 0..4)).prop_map(|(a, t)| Step::Register(a, t)),
        1 => (0..AGENTS).prop_map(Step::Unreachable),
        1 => (0..AGENTS).prop_map(Step::Gone),
        4 => vec(
            (0..TASKS, 0..AGENTS, proptest::option::of(0u8..3), 0u8..4, any::<bool>(), any::<bool>()),
            1..5
        )
        .prop_map(Step::Launch),
        6 => (
            0..TASKS,
            0u8..12,
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(t, s, h, r)| Step::Status(t, s, h, r)),
        2 => vec(0..TASKS, 1..4).prop_map(Step::Kill),
    ]
}

fn command(step: &Step, time: f64, seq: usize) -> Command {
    let agent = |a: u8| format!("c-S{a}");
    let task = |t: u8| format!("t{t}");
    match step {
        Step::Register(a, reported) => Command::RegisterAgent {
            key: format!("k{a}"),
            hostname: format!("h{a}"),
            addr: "h:1".into(),
            resources: Resources::default()
                .override_with("cpus:2;mem:256;disk:8;ports:[31000-31003]")
                .expect("test resources"),
            attributes: Default::default(),
            time,
            tasks: reported
                .iter()
                .map(|(t, s)| ReportedTask {
                    task_id: task(*t),
                    state: STATES[*s as usize],
                })
                .collect(),
        },
        Step::Unreachable(a) => Command::MarkAgentUnreachable {
            id: agent(*a),
            time,
        },
        Step::Gone(a) => Command::MarkAgentGone {
            id: agent(*a),
            time,
        },
        Step::Launch(specs) => Command::LaunchTasks {
            tasks: specs
                .iter()
                .map(|(t, a, app, size, port, checked)| TaskSpec {
                    task_id: task(*t),
                    agent_id: agent(*a),
                    // Not binary fractions: as floats, sums in another
                    // order differ in the last bit; in thousandths they
                    // are exact, so the running usage equals the recount.
                    cpus: f64::from(*size) * 0.1,
                    mem: f64::from(*size) * 30.3,
                    disk: f64::from(*size) * 0.7,
                    ports: port
                        .then_some(TaskPort {
                            number: 0,
                            name: None,
                        })
                        .into_iter()
                        .collect(),
                    health_checks: if *checked {
                        vec![HealthCheckSpec::default()]
                    } else {
                        Vec::new()
                    },
                    run_spec: app.map(|i| RunSpecRef {
                        app_id: APPS[i as usize].into(),
                        version: "v".into(),
                        config_version: "v".into(),
                    }),
                    ..Default::default()
                })
                .collect(),
            time,
        },
        Step::Status(t, s, healthy, ready) => {
            // `addressed` sends it as the task's agent.
            let mut status = TaskStatus::new(&task(*t), "c-S0", STATES[*s as usize], time);
            status.uuid = Some(format!("u{seq}"));
            status.healthy = *healthy;
            status.ready = *ready;
            Command::UpdateTaskStatuses {
                statuses: vec![status],
            }
        }
        Step::Kill(ids) => Command::KillTasks {
            task_ids: ids.iter().map(|t| task(*t)).collect(),
        },
    }
}

/// A status for a task is sent as its agent: the step names the task, the
/// registry knows where it runs.
fn addressed(reg: &Registry, mut command: Command) -> Command {
    if let Command::UpdateTaskStatuses { statuses } = &mut command {
        for s in statuses {
            if let Some(t) = reg.tasks.get(s.task_id.as_str()) {
                s.agent_id = t.spec.agent_id.clone();
            }
        }
    }
    command
}

/// Everything the indices hold, counted from the registry's tasks and
/// agents by their definitions, not by the indices' code.
fn check_against_recount(reg: &Registry) {
    let index = &reg.index;
    for state in STATES {
        let n = reg.tasks.values().filter(|t| t.state == state).count();
        assert_eq!(index.counts.tasks(state), n, "tasks {state:?}");
    }
    for state in [
        AgentState::Active,
        AgentState::Unreachable,
        AgentState::Gone,
    ] {
        let n = reg.agents.values().filter(|a| a.state == state).count();
        assert_eq!(index.counts.agents(state), n, "agents {state:?}");
    }
    for agent in reg.agents.values() {
        assert_eq!(index.agent_keys.get(&agent.key), Some(&agent.id));
    }
    assert_eq!(index.agent_keys.len(), reg.agents.len());
    let mut completed: BTreeMap<&str, usize> = BTreeMap::new();
    for task in &reg.completed_tasks {
        *completed.entry(&task.spec.task_id).or_default() += 1;
    }
    let got: BTreeMap<&str, usize> = index
        .completed
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(got, completed, "completed ids");
    let mut by_agent: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut usage: BTreeMap<&str, Used> = BTreeMap::new();
    let mut by_app: BTreeMap<&str, (Vec<&str>, AppCounts)> = BTreeMap::new();
    for task in reg.tasks.values() {
        let spec = &task.spec;
        by_agent
            .entry(&spec.agent_id)
            .or_default()
            .push(&spec.task_id);
        let used = usage.entry(&spec.agent_id).or_default();
        used.tasks += 1;
        used.milli_cpus += super::milli(spec.cpus);
        used.milli_mem += super::milli(spec.mem);
        used.milli_disk += super::milli(spec.disk);
        used.ports.extend(spec.ports.iter().map(|p| p.number));
        used.ports.sort_unstable();
        if let Some(run) = &spec.run_spec {
            let (ids, counts) = by_app.entry(&run.app_id).or_default();
            ids.push(&spec.task_id);
            counts.live += 1;
            if task.kill_requested {
                counts.kill_requested += 1;
            } else if task.state == TaskState::Unreachable {
                counts.unreachable += 1;
            } else if is_up(task) {
                counts.up += 1;
            }
        }
    }
    for agent in reg.agents.keys() {
        let ids: Vec<String> = reg
            .agent_tasks(agent)
            .map(|t| t.spec.task_id.clone())
            .collect();
        let want = by_agent.get(agent.as_str()).cloned().unwrap_or_default();
        assert_eq!(ids, want, "agent {agent}'s tasks");
    }
    let got: BTreeMap<&str, &Used> = reg.agent_usage().iter().map(|(k, v)| (&**k, v)).collect();
    let want: BTreeMap<&str, &Used> = usage.iter().map(|(k, v)| (*k, v)).collect();
    assert_eq!(got, want, "usage");
    let apps: Vec<&str> = reg.apps_with_tasks().map(String::as_str).collect();
    assert_eq!(
        apps,
        by_app.keys().copied().collect::<Vec<_>>(),
        "apps with tasks"
    );
    for app in APPS {
        let (ids, counts) = by_app.get(app).cloned().unwrap_or_default();
        let got: Vec<String> = reg.app_tasks(app).map(|t| t.spec.task_id.clone()).collect();
        assert_eq!(got, ids, "{app}'s tasks");
        assert_eq!(reg.app_counts(app), counts, "{app}'s counts");
    }
}

fn setup() -> Registry {
    let mut reg = Registry::default();
    reg.apply(
        1,
        &Command::InitCluster {
            cluster_id: "c".into(),
        },
    );
    reg
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn indices_match_a_recount_and_survive_a_snapshot(steps in vec(step(), 1..60)) {
        let mut reg = setup();
        for (i, step) in steps.iter().enumerate() {
            let command = addressed(&reg, command(step, 10.0 + i as f64, i));
            reg.apply(i as u64 + 2, &command);
            check_against_recount(&reg);
        }
        let back = Registry::from_snapshot(&reg.to_snapshot()).expect("the snapshot reads back");
        prop_assert_eq!(&back.index, &reg.index);
        prop_assert_eq!(back, reg);
    }
}

#[test]
fn every_task_state_has_a_slot() {
    let mut counts = Counts::default();
    for state in STATES {
        counts.task(None, Some(state));
        assert_eq!(counts.tasks(state), 1, "{state:?}");
    }
}

#[test]
fn completed_ids_follow_the_bounded_list() {
    use crate::master::registry::COMPLETED_TASKS;
    let mut reg = setup();
    // Launches on an agent nobody registered end at once (TASK_DROPPED).
    let tasks = (0..COMPLETED_TASKS + 100)
        .map(|i| TaskSpec {
            task_id: format!("d{i:05}"),
            agent_id: "c-S9".into(),
            ..Default::default()
        })
        .collect();
    reg.apply(2, &Command::LaunchTasks { tasks, time: 1.0 });
    assert_eq!(reg.completed_tasks.len(), COMPLETED_TASKS);
    check_against_recount(&reg);
    assert!(reg.task("d00099").is_none(), "let go with the oldest");
    assert!(reg.task("d00100").is_some());
    let back = Registry::from_snapshot(&reg.to_snapshot()).expect("the snapshot reads back");
    assert_eq!(back, reg);
}
