use super::*;
use crate::model::TaskState;

fn running(task_id: &str, agent_id: &str, started_at: f64) -> InstanceView {
    InstanceView {
        task_id: task_id.to_string(),
        agent_id: agent_id.to_string(),
        staged_at: started_at - 1.0,
        started_at: Some(started_at),
        healthy: Some(true),
        state: TaskState::Running,
    }
}

fn zoned() -> Vec<AgentView<'static>> {
    vec![
        agent("a0", &[("zone", "a")]),
        agent("a1", &[("zone", "a")]),
        agent("b0", &[("zone", "b")]),
        agent("c0", &[("zone", "c")]),
    ]
}

#[test]
fn broken_instances_go_first() {
    let mut sick = running("t-sick", "a0", 10.0);
    sick.healthy = Some(false);
    let mut lost = running("t-lost", "a0", 11.0);
    lost.state = TaskState::Unreachable;
    let mut staging = running("t-staging", "a0", 12.0);
    staging.state = TaskState::Staging;
    staging.started_at = None;
    staging.healthy = None;
    let mut killing = running("t-killing", "a0", 13.0);
    killing.state = TaskState::Killing;
    let instances = vec![running("t-young", "a0", 20.0), killing, staging, sick, lost];
    let doomed = choose_to_kill(
        &instances,
        5,
        KillSelection::YoungestFirst,
        &[],
        &[agent("a0", &[])],
    );
    assert_eq!(
        doomed,
        ["t-lost", "t-sick", "t-staging", "t-young", "t-killing"]
    );
}

#[test]
fn group_by_evens_out_the_most_crowded_zone() {
    let instances = vec![
        running("a-old", "a0", 1.0),
        running("a-mid", "a1", 2.0),
        running("a-new", "a0", 3.0),
        running("b-1", "b0", 4.0),
        running("c-1", "c0", 5.0),
    ];
    let by_zone = constraints(&[&["zone", "GROUP_BY"]]);
    let doomed = choose_to_kill(
        &instances,
        2,
        KillSelection::YoungestFirst,
        &by_zone,
        &zoned(),
    );
    assert_eq!(doomed, ["a-new", "a-mid"], "zone a goes from 3 to 1");
    let doomed = choose_to_kill(
        &instances,
        3,
        KillSelection::OldestFirst,
        &by_zone,
        &zoned(),
    );
    assert_eq!(
        doomed,
        ["a-old", "a-mid", "a-new"],
        "then the oldest, zones being even"
    );
}

#[test]
fn without_constraints_kill_selection_decides() {
    let instances = vec![
        running("t1", "a0", 1.0),
        running("t3", "b0", 3.0),
        running("t2", "c0", 2.0),
    ];
    let youngest = choose_to_kill(&instances, 2, KillSelection::YoungestFirst, &[], &zoned());
    assert_eq!(youngest, ["t3", "t2"]);
    let oldest = choose_to_kill(&instances, 2, KillSelection::OldestFirst, &[], &zoned());
    assert_eq!(oldest, ["t1", "t2"]);
    let all = choose_to_kill(&instances, 10, KillSelection::OldestFirst, &[], &zoned());
    assert_eq!(all, ["t1", "t2", "t3"], "no more than there are");
}

#[test]
fn misplaced_and_doubled_up_instances_go_before_balanced_ones() {
    let instances = vec![
        running("ok-a", "a0", 1.0),
        running("twin-1", "b0", 2.0),
        running("twin-2", "b0", 3.0),
        running("ok-c", "c0", 9.0),
    ];
    let unique = constraints(&[&["hostname", "UNIQUE"]]);
    let doomed = choose_to_kill(&instances, 1, KillSelection::OldestFirst, &unique, &zoned());
    assert_eq!(
        doomed,
        ["twin-1"],
        "the UNIQUE breach goes, even though ok-a is older"
    );

    let is_c = constraints(&[&["zone", "IS", "c"]]);
    let doomed = choose_to_kill(&instances, 3, KillSelection::YoungestFirst, &is_c, &zoned());
    assert_eq!(
        doomed,
        ["twin-2", "twin-1", "ok-a"],
        "ok-c alone is where it may be"
    );
}
