//! Placement and the registry agree: the views come from the registry, and
//! the registry's `fit`, applying the launch, resolves the same host ports.

use super::*;
use crate::master::command::Command;
use crate::master::registry::Registry;
use crate::model::{AgentState, TaskPort, TaskSpec, TaskState};

fn spec(task_id: &str, agent_id: &str, ports: &[u16]) -> TaskSpec {
    TaskSpec {
        task_id: task_id.to_string(),
        agent_id: agent_id.to_string(),
        cpus: 0.5,
        mem: 64.0,
        ports: ports
            .iter()
            .map(|p| TaskPort {
                number: *p,
                name: None,
            })
            .collect(),
        ..TaskSpec::default()
    }
}

/// Two agents, the first with its ranges out of numeric order and a task
/// already holding a port, the second unreachable.
fn registry() -> Registry {
    let mut reg = Registry::default();
    let mut index = 0;
    let mut apply = |reg: &mut Registry, c: Command| {
        index += 1;
        reg.apply(index, &c);
    };
    apply(
        &mut reg,
        Command::InitCluster {
            cluster_id: "c".into(),
        },
    );
    for (key, ports) in [
        ("k0", "[32000-32001, 31000-31005]"),
        ("k1", "[31000-31005]"),
    ] {
        let resources = Resources::default()
            .override_with(&format!("cpus:2;mem:1024;disk:100;ports:{ports}"))
            .expect("test resources");
        apply(
            &mut reg,
            Command::RegisterAgent {
                key: key.into(),
                hostname: format!("{key}.local"),
                addr: "127.0.0.1:1".into(),
                resources,
                attributes: [("zone".to_string(), "a".to_string())].into(),
                time: 1.0,
                tasks: vec![],
            },
        );
    }
    apply(
        &mut reg,
        Command::LaunchTasks {
            tasks: vec![spec("old", "c-S0", &[32000])],
            time: 2.0,
        },
    );
    apply(
        &mut reg,
        Command::MarkAgentUnreachable {
            id: "c-S1".into(),
            time: 3.0,
        },
    );
    reg
}

#[test]
fn views_are_what_live_tasks_leave_free() {
    let reg = registry();
    let views = AgentView::from_registry(&reg);
    assert_eq!(views.len(), 2);
    let s0 = &views[0];
    assert_eq!((&*s0.id, s0.active), ("c-S0", true));
    assert_eq!((s0.free.cpus, s0.free.mem), (1.5, 960.0));
    assert_eq!(
        s0.free.ports,
        [
            PortRange {
                begin: 32001,
                end: 32001
            },
            PortRange {
                begin: 31000,
                end: 31005
            }
        ]
    );
    assert_eq!(s0.attributes.get("zone").map(String::as_str), Some("a"));
    assert!(!views[1].active);
    assert_eq!(reg.agents["c-S1"].state, AgentState::Unreachable);
}

#[test]
fn port_zero_is_the_port_fit_gives() {
    let reg = registry();
    let mut views = AgentView::from_registry(&reg);
    let d = Demand {
        cpus: 0.5,
        mem: 64.0,
        ports: vec![0, 0, 0],
        ..Demand::default()
    };
    let p = place(&mut views, &d, &[], &[], 3);
    assert_eq!(p.unplaced, 1, "c-S0 has 7 free ports: two instances' worth");
    assert_eq!(p.reasons.count(RejectReason::AgentInactive), 1);
    assert_eq!(p.reasons.count(RejectReason::InsufficientPorts), 1);
    assert_eq!(p.chosen[0].host_ports, [32001, 31000, 31001]);

    // Launched with 0s, in the chosen order, fit resolves the same ports ...
    let mut by_fit = reg.clone();
    let zeros = p
        .chosen
        .iter()
        .enumerate()
        .map(|(i, c)| spec(&format!("z{i}"), &c.agent_id, &[0, 0, 0]))
        .collect();
    by_fit.apply(
        100,
        &Command::LaunchTasks {
            tasks: zeros,
            time: 4.0,
        },
    );
    // ... and launched with the chosen ports fixed, fit accepts them.
    let mut fixed = reg.clone();
    let chosen = p
        .chosen
        .iter()
        .enumerate()
        .map(|(i, c)| spec(&format!("z{i}"), &c.agent_id, &c.host_ports))
        .collect();
    fixed.apply(
        100,
        &Command::LaunchTasks {
            tasks: chosen,
            time: 4.0,
        },
    );
    for (i, c) in p.chosen.iter().enumerate() {
        for reg in [&by_fit, &fixed] {
            let task = reg.task(&format!("z{i}")).expect("launched");
            assert_eq!(task.state, TaskState::Staging);
            let ports: Vec<u16> = task.spec.ports.iter().map(|p| p.number).collect();
            assert_eq!(ports, c.host_ports);
        }
    }
    // And the views placement consumed are the registry's after the launch.
    let after = AgentView::from_registry(&fixed);
    assert_eq!(after[0].free.ports, views[0].free.ports);
    assert!((after[0].free.cpus - views[0].free.cpus).abs() < 1e-9);
}
