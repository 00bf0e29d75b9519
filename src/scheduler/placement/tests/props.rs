//! Whatever the cluster, the constraints and the existing instances: no
//! placement breaks UNIQUE or MAX_PER, overdraws an agent, reuses a port or
//! uses an inactive agent, and a placement gives up only when nothing fits.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::subsequence;

use super::*;

const POOL: [&[&str]; 8] = [
    &["hostname", "UNIQUE"],
    &["rack", "UNIQUE"],
    &["rack", "MAX_PER", "1"],
    &["rack", "MAX_PER", "2"],
    &["hostname", "MAX_PER", "2"],
    &["rack", "GROUP_BY"],
    &["rack", "GROUP_BY", "3"],
    &["rack", "CLUSTER"],
];

fn agents() -> impl Strategy<Value = Vec<AgentView<'static>>> {
    let one = (
        0u8..=8,
        0u32..=4,
        0u8..=2,
        0u64..=4,
        proptest::option::of(0u8..3),
        0u8..4,
        prop::bool::weighted(0.85),
    );
    vec(one, 1..8).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (cpus, mem, disk, ports, rack, host, active))| {
                let rack = rack.map(|r| format!("r{r}"));
                let attrs: Vec<(&str, &str)> = rack.iter().map(|r| ("rack", r.as_str())).collect();
                let mut a = agent(&format!("a{i}"), &attrs);
                a.hostname = format!("h{host}").into();
                a.free.cpus = f64::from(cpus) * 0.5;
                a.free.mem = f64::from(mem) * 256.0;
                a.free.disk = f64::from(disk) * 10.0;
                a.free.ports = (ports > 0)
                    .then_some(PortRange {
                        begin: 31000,
                        end: 31000 + ports - 1,
                    })
                    .into_iter()
                    .collect();
                a.active = active;
                a
            })
            .collect()
    })
}

fn demands() -> impl Strategy<Value = Demand> {
    (
        0u8..=4,
        0u32..=2,
        0u8..=1,
        vec(0u16..3, 0..3),
        any::<bool>(),
    )
        .prop_map(|(cpus, mem, disk, ports, require_ports)| Demand {
            cpus: f64::from(cpus) * 0.5,
            mem: f64::from(mem) * 128.0,
            disk: f64::from(disk) * 10.0,
            ports: ports
                .into_iter()
                .map(|p| if p == 0 { 0 } else { 31000 + p })
                .collect(),
            require_ports,
        })
}

/// Instances per value of `field` (agents without it count for none).
fn per_value(views: &[AgentView], field: &str, on: &[&str]) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for id in on {
        let Some(a) = views.iter().find(|a| a.id == *id) else {
            continue;
        };
        let value = if field == "hostname" {
            Some(a.hostname.to_string())
        } else {
            a.attributes.get(field).cloned()
        };
        if let Some(v) = value {
            *m.entry(v).or_insert(0) += 1;
        }
    }
    m
}

proptest! {
    #[test]
    fn placement_keeps_every_limit(
        views in agents(),
        d in demands(),
        raws in subsequence(POOL.to_vec(), 0..=3),
        existing in vec(0usize..8, 0..5),
        count in 0usize..12,
    ) {
        let cs = constraints(&raws);
        let existing: Vec<Placed> = existing
            .iter()
            .map(|i| Placed { agent_id: format!("a{}", i % views.len()) })
            .collect();
        let mut after = views.clone();
        let p = place(&mut after, &d, &cs, &existing, count);
        prop_assert_eq!(p.chosen.len() + p.unplaced, count);

        for (i, before) in views.iter().enumerate() {
            let mine: Vec<&Chosen> = p.chosen.iter().filter(|c| c.agent_id == before.id).collect();
            if mine.is_empty() {
                prop_assert_eq!(&after[i], before);
                continue;
            }
            prop_assert!(before.active, "{} is inactive", before.id);
            let n = mine.len() as f64;
            prop_assert!(n * d.cpus <= before.free.cpus + 1e-9);
            prop_assert!(n * d.mem <= before.free.mem + 1e-9);
            prop_assert!(n * d.disk <= before.free.disk + 1e-9);
            prop_assert!((after[i].free.cpus - (before.free.cpus - n * d.cpus)).abs() < 1e-9);
            let mut ports: Vec<u16> = Vec::new();
            for c in &mine {
                prop_assert_eq!(c.host_ports.len(), d.ports.len());
                for (got, asked) in c.host_ports.iter().zip(&d.ports) {
                    if d.require_ports && *asked != 0 {
                        prop_assert_eq!(got, asked);
                    }
                    let free = before.free.ports.iter().any(|r| r.begin <= u64::from(*got) && u64::from(*got) <= r.end);
                    prop_assert!(free, "port {} was not free on {}", got, before.id);
                    ports.push(*got);
                }
            }
            let held = ports.len();
            ports.sort_unstable();
            ports.dedup();
            prop_assert_eq!(ports.len(), held, "a port handed out twice on {}", before.id);
        }

        let old: Vec<&str> = existing.iter().map(|e| e.agent_id.as_str()).collect();
        let new = ids(&p);
        for raw in &raws {
            let limit = match raw {
                [_, "UNIQUE"] => 1,
                [_, "MAX_PER", n] => n.parse().expect("pool numbers"),
                _ => continue,
            };
            let had = per_value(&views, raw[0], &old);
            let got = per_value(&views, raw[0], &new);
            for (value, n) in &got {
                let had = had.get(value).copied().unwrap_or(0);
                prop_assert!(had + n <= limit.max(had), "{:?}: {} had {}, got {}", raw, value, had, n);
            }
        }

        if p.unplaced > 0 {
            prop_assert_eq!(p.reasons.total(), views.len());
            let mut all = existing.clone();
            all.extend(p.chosen.iter().map(|c| Placed { agent_id: c.agent_id.clone() }));
            let again = place(&mut after, &d, &cs, &all, 1);
            prop_assert!(again.chosen.is_empty(), "gave up while {:?} fit", again.chosen);
        } else {
            prop_assert!(p.reasons.is_empty());
        }
    }
}

const KILL_POOL: [&[&str]; 7] = [
    &["hostname", "UNIQUE"],
    &["rack", "UNIQUE"],
    &["rack", "MAX_PER", "2"],
    &["rack", "GROUP_BY"],
    &["hostname", "GROUP_BY"],
    &["rack", "LIKE", "r[01]"],
    &["rack", "IS", "r2"],
];

fn instances(agents: usize) -> impl Strategy<Value = Vec<InstanceView>> {
    use crate::model::TaskState::*;
    let one = (
        0..agents + 1,
        prop::sample::select(vec![
            Running,
            Running,
            Staging,
            Starting,
            Unreachable,
            Killing,
        ]),
        proptest::option::of(any::<bool>()),
        0u8..5,
    );
    vec(one, 0..12).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (agent, state, healthy, time))| InstanceView {
                task_id: format!("t{i:02}"),
                agent_id: format!("a{agent}"),
                staged_at: f64::from(time),
                started_at: (state != Staging).then_some(f64::from(time) + 0.5),
                healthy,
                state,
            })
            .collect()
    })
}

/// The kill order as `kill.rs` documents it, recomputed from scratch for every kill.
fn kill_by_the_book(
    instances: &[InstanceView],
    count: usize,
    selection: KillSelection,
    cs: &[Constraint],
    views: &[AgentView],
) -> Vec<String> {
    use crate::model::TaskState::*;
    let value = |c: &Constraint, i: &InstanceView| {
        let a = views.iter().find(|a| a.id == i.agent_id)?;
        c.field
            .value_of(&a.hostname, &a.attributes)
            .map(str::to_string)
    };
    let mut left: Vec<&InstanceView> = instances.iter().collect();
    let mut doomed = Vec::new();
    while doomed.len() < count && !left.is_empty() {
        let key = |i: &InstanceView| {
            let condition = match (i.state, i.healthy) {
                (Killing, _) => 5,
                (Staging | Starting | Running, Some(false)) => 1,
                (Staging, _) => 2,
                (Starting, _) => 3,
                (Running, _) => 4,
                _ => 0,
            };
            let known = views.iter().find(|a| a.id == i.agent_id);
            let sharing = |c: &Constraint| {
                let v = value(c, i);
                left.iter()
                    .filter(|o| v.is_some() && value(c, o) == v)
                    .count() as u32
            };
            let mut misplaced = 0;
            let mut crowding = Vec::new();
            for c in cs {
                let v = value(c, i);
                if known.is_some() && !c.admits_value(v.as_deref()) {
                    misplaced += 1;
                }
                match c.operator {
                    Operator::Unique => misplaced += sharing(c).saturating_sub(1),
                    Operator::MaxPer(n) => misplaced += sharing(c).saturating_sub(n),
                    Operator::GroupBy(_) => crowding.push(sharing(c)),
                    _ => {}
                }
            }
            let time = i.started_at.unwrap_or(i.staged_at);
            let age = if selection == KillSelection::YoungestFirst {
                time
            } else {
                -time
            };
            (
                std::cmp::Reverse(condition),
                misplaced,
                crowding,
                super::super::TotalOrd(age),
                std::cmp::Reverse(i.task_id.clone()),
            )
        };
        let (at, _) = left
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| key(a).cmp(&key(b)))
            .expect("left is not empty");
        doomed.push(left.remove(at).task_id.clone());
    }
    doomed
}

proptest! {
    #[test]
    fn kill_choice_is_the_documented_order(
        views in agents(),
        picked in subsequence(KILL_POOL.to_vec(), 0..=3),
        all in instances(7),
        count in 0usize..14,
        oldest in any::<bool>(),
    ) {
        let cs = constraints(&picked);
        let selection = if oldest { KillSelection::OldestFirst } else { KillSelection::YoungestFirst };
        let got = choose_to_kill(&all, count, selection, &cs, &views);
        let want = kill_by_the_book(&all, count, selection, &cs, &views);
        prop_assert_eq!(got, want);
    }
}
