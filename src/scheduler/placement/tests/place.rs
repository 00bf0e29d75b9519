use super::*;

fn zones(view: &[AgentView], p: &Placement, existing: &[Placed]) -> BTreeMap<String, usize> {
    let zone_of = |id: &str| {
        view.iter()
            .find(|a| a.id == id)
            .and_then(|a| a.attributes.get("zone").cloned())
            .unwrap_or_default()
    };
    let mut m = BTreeMap::new();
    for id in ids(p)
        .into_iter()
        .chain(existing.iter().map(|e| e.agent_id.as_str()))
    {
        *m.entry(zone_of(id)).or_insert(0) += 1;
    }
    m
}

/// Instances of 0.1 cpus and 32 MB: room for many on each agent.
fn light(agents: &mut [AgentView], raws: &[&[&str]], existing: &[&str], count: usize) -> Placement {
    place(
        agents,
        &demand(0.1, 32.0),
        &constraints(raws),
        &placed(existing),
        count,
    )
}

#[test]
fn unique_hostname_leaves_the_fourth_unplaced() {
    let mut agents = vec![agent("a0", &[]), agent("a1", &[]), agent("a2", &[])];
    let p = light(&mut agents, &[&["hostname", "UNIQUE"]], &[], 4);
    assert_eq!(per_agent(ids(&p)).len(), 3, "one per host: {:?}", ids(&p));
    assert_eq!(p.unplaced, 1);
    assert_eq!(p.reasons.count(RejectReason::UnfulfilledConstraint), 3);
    assert_eq!(p.reasons.total(), 3);
}

#[test]
fn unique_counts_existing_instances_and_shared_hostnames() {
    let mut agents = vec![agent("a0", &[]), agent("a1", &[]), agent("a2", &[])];
    agents[2].hostname = agents[1].hostname.clone();
    let p = light(&mut agents, &[&["@hostname", "UNIQUE"]], &["a0"], 2);
    assert_eq!(ids(&p).len(), 1, "a1 and a2 are one host");
    assert!(ids(&p)[0] == "a1" || ids(&p)[0] == "a2");
    assert_eq!(p.unplaced, 1);
}

#[test]
fn cluster_with_a_value_keeps_to_it() {
    let mut agents = vec![
        agent("a0", &[("rack", "r1")]),
        agent("a1", &[("rack", "r2")]),
        agent("a2", &[("rack", "r1")]),
        agent("a3", &[]),
    ];
    let p = light(&mut agents, &[&["rack", "CLUSTER", "r1"]], &[], 4);
    assert_eq!(p.unplaced, 0);
    assert_eq!(per_agent(ids(&p)), [("a0", 2), ("a2", 2)].into());
}

#[test]
fn cluster_without_a_value_follows_the_instances() {
    let mut agents = vec![
        agent("a0", &[("rack", "r1")]),
        agent("a1", &[("rack", "r2")]),
        agent("a2", &[("rack", "r2")]),
    ];
    let p = light(&mut agents, &[&["rack", "CLUSTER"]], &["a1"], 3);
    assert!(ids(&p).iter().all(|id| *id != "a0"), "{:?}", ids(&p));
    let mut fresh = vec![agent("a0", &[]), agent("a1", &[])];
    let p = light(&mut fresh, &[&["hostname", "CLUSTER"]], &[], 3);
    assert_eq!(per_agent(ids(&p)).len(), 1, "all where the first went");
}

#[test]
fn group_by_zone_spreads_evenly_counting_existing_ones() {
    let make = || {
        ["a", "b", "c"]
            .iter()
            .flat_map(|z| (0..2).map(move |i| agent(&format!("{z}{i}"), &[("zone", z)])))
            .collect::<Vec<_>>()
    };
    let by_zone = constraints(&[&["zone", "GROUP_BY"]]);
    let mut agents = make();
    let p = place(&mut agents, &demand(0.1, 32.0), &by_zone, &[], 6);
    assert_eq!(
        zones(&agents, &p, &[]),
        [("a".into(), 2), ("b".into(), 2), ("c".into(), 2)].into()
    );

    let mut agents = make();
    let existing = placed(&["a0", "a1"]);
    let p = place(&mut agents, &demand(0.1, 32.0), &by_zone, &existing, 4);
    assert!(
        ids(&p).iter().all(|id| !id.starts_with('a')),
        "{:?}",
        ids(&p)
    );
    assert_eq!(
        zones(&agents, &p, &existing),
        [("a".into(), 2), ("b".into(), 2), ("c".into(), 2)].into()
    );
}

#[test]
fn group_by_with_more_groups_expected_than_seen_waits() {
    let mut agents = vec![agent("a0", &[("zone", "a")]), agent("b0", &[("zone", "b")])];
    let p = light(&mut agents, &[&["@zone", "GROUP_BY", "3"]], &[], 4);
    assert_eq!(
        ids(&p).len(),
        2,
        "a second instance in a zone waits for the third zone"
    );
    assert_eq!(p.unplaced, 2);
    assert_eq!(p.reasons.count(RejectReason::UnfulfilledConstraint), 2);
}

#[test]
fn group_by_keeps_balance_when_a_zone_is_full() {
    let mut agents = vec![
        agent("a0", &[("zone", "a")]),
        agent("b0", &[("zone", "b")]),
        agent("c0", &[("zone", "c")]),
    ];
    agents[2].free.cpus = 0.0;
    let p = place(
        &mut agents,
        &demand(1.0, 32.0),
        &constraints(&[&["zone", "GROUP_BY"]]),
        &placed(&["c0"]),
        5,
    );
    // As Marathon: zone c holds one and cannot grow, so a and b stop one past it.
    assert_eq!(ids(&p), ["a0", "b0", "a0", "b0"]);
    assert_eq!(p.unplaced, 1);
    assert_eq!(p.reasons.count(RejectReason::UnfulfilledConstraint), 2);
    assert_eq!(p.reasons.count(RejectReason::InsufficientCpus), 1);
}

#[test]
fn max_per_rack_two() {
    let mut agents = vec![
        agent("a0", &[("rack", "r1")]),
        agent("a1", &[("rack", "r1")]),
        agent("a2", &[("rack", "r1")]),
        agent("a3", &[("rack", "r2")]),
    ];
    let p = light(&mut agents, &[&["rack", "MAX_PER", "2"]], &[], 5);
    assert_eq!(ids(&p).len(), 4);
    let r1 = ids(&p).iter().filter(|id| **id != "a3").count();
    assert_eq!((r1, 4 - r1), (2, 2));
    assert_eq!(p.unplaced, 1);
    assert_eq!(p.reasons.count(RejectReason::UnfulfilledConstraint), 4);
}

#[test]
fn like_and_unlike_match_whole_values() {
    let mut agents = vec![
        agent("web1", &[]),
        agent("web10", &[]),
        agent("db1", &[("rack", "r1")]),
    ];
    for a in &mut agents {
        a.hostname = a.id.clone();
    }
    let p = light(
        &mut agents.clone(),
        &[&["hostname", "LIKE", "web[0-9]"]],
        &[],
        3,
    );
    assert_eq!(ids(&p), ["web1", "web1", "web1"]);

    let p = light(
        &mut agents.clone(),
        &[&["rack", "UNLIKE", "r[0-9]"]],
        &[],
        2,
    );
    assert_eq!(
        ids(&p),
        ["web1", "web10"],
        "agents without rack pass UNLIKE"
    );

    let p = light(&mut agents, &[&["rack", "LIKE", "r"]], &[], 1);
    assert_eq!(p.unplaced, 1, "'r' does not match 'r1' whole");
    assert_eq!(p.reasons.count(RejectReason::UnfulfilledConstraint), 3);
}

#[test]
fn is_matches_exactly() {
    let mut agents = vec![
        agent("a0", &[("os", "linux")]),
        agent("a1", &[("os", "linux-rt")]),
        agent("a2", &[]),
    ];
    let p = light(&mut agents, &[&["os", "IS", "linux"]], &[], 2);
    assert_eq!(ids(&p), ["a0", "a0"]);
}

#[test]
fn region_and_zone_fields_read_attributes() {
    let mut agents = vec![
        agent("a0", &[("region", "eu"), ("zone", "eu-1")]),
        agent("a1", &[("region", "us"), ("zone", "us-1")]),
    ];
    let p = light(
        &mut agents,
        &[&["@region", "IS", "us"], &["@zone", "LIKE", "us-.*"]],
        &[],
        1,
    );
    assert_eq!(ids(&p), ["a1"]);
}

#[test]
fn each_shortage_has_its_reason() {
    let mut agents: Vec<AgentView> = (0..6).map(|i| agent(&format!("a{i}"), &[])).collect();
    agents[0].active = false;
    agents[1].free.cpus = 0.5;
    agents[2].free.mem = 10.0;
    agents[3].free.disk = 1.0;
    agents[4].free.ports.clear();
    agents[5]
        .attributes
        .to_mut()
        .insert("rack".into(), "r9".into());
    let d = Demand {
        cpus: 1.0,
        mem: 100.0,
        disk: 10.0,
        ports: vec![0],
        require_ports: false,
    };
    let c = constraints(&[&["rack", "UNLIKE", "r9"]]);
    let p = place(&mut agents, &d, &c, &[], 2);
    assert!(p.chosen.is_empty());
    assert_eq!(p.unplaced, 2);
    for reason in [
        RejectReason::AgentInactive,
        RejectReason::InsufficientCpus,
        RejectReason::InsufficientMemory,
        RejectReason::InsufficientDisk,
        RejectReason::InsufficientPorts,
        RejectReason::UnfulfilledConstraint,
    ] {
        assert_eq!(p.reasons.count(reason), 1, "{reason:?}");
    }
    let steps = p.reasons.marathon_steps();
    let cpus = steps
        .iter()
        .find(|s| s.reason == "InsufficientCpus")
        .unwrap();
    assert_eq!((cpus.declined, cpus.processed), (1, 4));
}

#[test]
fn resources_run_out_one_instance_at_a_time() {
    let mut agents = vec![agent("a0", &[])];
    let p = place(&mut agents, &demand(1.5, 32.0), &[], &[], 3);
    assert_eq!(ids(&p), ["a0", "a0"]);
    assert_eq!(p.unplaced, 1);
    assert_eq!(p.reasons.count(RejectReason::InsufficientCpus), 1);
    assert!(
        (agents[0].free.cpus - 1.0).abs() < 1e-9,
        "the views are consumed"
    );
}

#[test]
fn ports_zero_take_the_first_free_and_fixed_ones_need_require_ports() {
    let mut agents = vec![agent("a0", &[]), agent("a1", &[])];
    agents[0].free.ports = vec![PortRange {
        begin: 31002,
        end: 31003,
    }];
    let any = Demand {
        ports: vec![0, 0],
        ..demand(0.1, 32.0)
    };
    let p = place(&mut agents.clone(), &any, &[], &[], 2);
    let got: BTreeMap<&str, &[u16]> = p
        .chosen
        .iter()
        .map(|c| (c.agent_id.as_str(), c.host_ports.as_slice()))
        .collect();
    assert_eq!(got["a0"], [31002, 31003]);
    assert_eq!(got["a1"], [31000, 31001]);

    let service = Demand {
        ports: vec![10000],
        require_ports: false,
        ..demand(0.1, 32.0)
    };
    let p = place(&mut agents.clone(), &service, &[], &[], 1);
    assert_ne!(
        p.chosen[0].host_ports,
        [10000],
        "a service port is not a host port"
    );

    let fixed = Demand {
        ports: vec![31003],
        require_ports: true,
        ..demand(0.1, 32.0)
    };
    let p = place(&mut agents, &fixed, &[], &[], 3);
    assert_eq!(per_agent(ids(&p)), [("a0", 1), ("a1", 1)].into());
    assert!(p.chosen.iter().all(|c| c.host_ports == [31003]));
    assert_eq!(p.unplaced, 1);
    assert_eq!(p.reasons.count(RejectReason::InsufficientPorts), 2);
}

#[test]
fn spread_prefers_fewer_instances_then_the_freer_agent() {
    let mut agents = vec![agent("a0", &[]), agent("a1", &[]), agent("a2", &[])];
    agents[1].free.mem = 1024.0;
    let p = light(&mut agents.clone(), &[], &[], 6);
    assert_eq!(per_agent(ids(&p)), [("a0", 2), ("a1", 2), ("a2", 2)].into());
    assert_eq!(ids(&p)[..3], ["a0", "a2", "a1"], "the fuller a1 comes last");

    let p = light(&mut agents, &[], &["a0", "a0", "a2"], 3);
    assert_eq!(per_agent(ids(&p)), [("a1", 2), ("a2", 1)].into());
}

#[test]
fn unknown_existing_agents_and_nothing_to_place() {
    let mut agents = vec![agent("a0", &[])];
    let unique: &[&[&str]] = &[&["hostname", "UNIQUE"]];
    let p = light(&mut agents, unique, &["gone"], 1);
    assert_eq!(ids(&p), ["a0"]);
    let p = light(&mut agents, unique, &[], 0);
    assert!(p.chosen.is_empty() && p.unplaced == 0 && p.reasons.is_empty());
    let p = light(&mut [], &[], &[], 2);
    assert_eq!((p.unplaced, p.reasons.total()), (2, 0));
}

#[test]
fn many_agents_and_instances_sanity() {
    // Sized for a unit test; the throughput figure belongs to scripts/bench.
    let names = ["a", "b", "c", "d"];
    let mut agents: Vec<AgentView> = (0..2000)
        .map(|i| {
            agent(
                &format!("s{i:05}"),
                &[("zone", names[i % 4]), ("rack", &format!("r{}", i % 50))],
            )
        })
        .collect();
    let c = constraints(&[&["zone", "GROUP_BY"], &["rack", "MAX_PER", "200"]]);
    let p = place(&mut agents, &demand(0.5, 64.0), &c, &[], 10_000);
    assert_eq!(p.unplaced, 0);
    assert_eq!(
        zones(&agents, &p, &[]).values().collect::<Vec<_>>(),
        [&2500; 4]
    );
    assert!(
        per_agent(ids(&p)).values().all(|n| *n == 5),
        "spread evenly"
    );
}
