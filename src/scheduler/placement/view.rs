//! What placement knows of an agent: its identity, attributes and what its
//! live tasks leave free, computed as the registry's `fit` computes it, so
//! that a placement made here is one the registry accepts.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::master::registry::{Registry, Used, milli};
use crate::model::{AgentState, PortRange, Resources};

/// One agent as placement sees it. `free` is `total` less what the registry's
/// live tasks hold: scalars may go below zero on an agent that came back
/// smaller than its tasks (nothing fits there then, as in `fit`), and `ports`
/// are the free host ports as ranges, in the order of the agent's own ranges,
/// because `fit` hands out a port 0 as the first free one in that order.
/// What does not change while placing is borrowed from the registry: a
/// round at 10,000 agents built its views anew, and copying each agent's
/// id, hostname, attributes and resources was half of that, 5% of a
/// leader placing 100,000 tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView<'r> {
    pub id: Cow<'r, str>,
    pub hostname: Cow<'r, str>,
    pub attributes: Cow<'r, BTreeMap<String, String>>,
    pub total: Cow<'r, Resources>,
    pub free: Resources,
    /// Only active agents take tasks (the registry drops a launch elsewhere).
    pub active: bool,
}

impl<'r> AgentView<'r> {
    /// Every agent the registry knows, by agent id: one pass over the
    /// agents beside the registry's index of what each one's tasks hold.
    pub fn from_registry(registry: &'r Registry) -> Vec<AgentView<'r>> {
        let mut usage = registry.agent_usage().iter().peekable();
        let none = Used::default();
        // Sized at once: grown by doubling, the copies and fresh pages were
        // a third of building 10,000 views.
        let mut views = Vec::with_capacity(registry.agents.len());
        views.extend(registry.agents.values().map(|agent| {
            // Both are in agent id order; the index has no entry for an
            // agent without tasks. One comparison a step, not `<` then
            // `==`: the ids share their cluster's prefix, and comparing
            // them is a third of building 10,000 views.
            let mut used = &none;
            while let Some((id, _)) = usage.peek() {
                match str::cmp(id, &agent.id) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        used = usage.next().map_or(&none, |(_, u)| u);
                        break;
                    }
                    Ordering::Greater => break,
                }
                usage.next();
            }
            let total = &agent.resources;
            // In thousandths, as the registry's fit compares them.
            let free = |total: f64, used: u64| (milli(total) as f64 - used as f64) / 1000.0;
            AgentView {
                id: Cow::Borrowed(&agent.id),
                hostname: Cow::Borrowed(&agent.hostname),
                attributes: Cow::Borrowed(&agent.attributes),
                free: Resources {
                    cpus: free(total.cpus, used.milli_cpus),
                    mem: free(total.mem, used.milli_mem),
                    disk: free(total.disk, used.milli_disk),
                    ports: free_ranges(&total.ports, &port_ranges(&used.ports)),
                },
                total: Cow::Borrowed(total),
                active: agent.state == AgentState::Active,
            }
        }));
        views
    }

    /// How free the agent is, for spreading: the free shares of cpus and mem
    /// added up (0 to 2; a resource the agent has none of counts 0).
    pub(super) fn free_share(&self) -> f64 {
        let share = |free: f64, total: f64| if total > 0.0 { free / total } else { 0.0 };
        share(self.free.cpus, self.total.cpus) + share(self.free.mem, self.total.mem)
    }

    /// Would host ports `wanted` (0 = any) fit here? As [`Self::resolve_ports`]
    /// but without building the answer.
    pub(super) fn ports_fit(&self, wanted: &[u16]) -> bool {
        let ranges = &self.free.ports;
        for (i, &port) in wanted.iter().enumerate() {
            let free = || {
                let p = u64::from(port);
                ranges.iter().any(|r| r.begin <= p && p <= r.end)
            };
            if port != 0 && (wanted[..i].contains(&port) || !free()) {
                return false;
            }
        }
        // The fixed ports are among the free ones: the rest must cover the 0s.
        let free: u64 = ranges.iter().map(|r| r.end - r.begin + 1).sum();
        free >= wanted.len() as u64
    }

    /// The host ports a task asking for `wanted` (0 = any) would get here,
    /// resolved as `fit` resolves them: fixed ports must be free, then each 0
    /// takes the first free port in range order. None when they do not fit.
    pub(super) fn resolve_ports(&self, wanted: &[u16]) -> Option<Vec<u16>> {
        if wanted.is_empty() {
            return Some(Vec::new());
        }
        let mut ranges = self.free.ports.clone();
        for &port in wanted.iter().filter(|p| **p != 0) {
            if !take_port(&mut ranges, port) {
                return None;
            }
        }
        let mut resolved = Vec::with_capacity(wanted.len());
        for &port in wanted {
            if port != 0 {
                resolved.push(port);
                continue;
            }
            let first = ranges.first()?;
            let port = u16::try_from(first.begin).ok()?;
            take_port(&mut ranges, port);
            resolved.push(port);
        }
        Some(resolved)
    }

    /// Marks resolved host ports as used.
    pub(super) fn take_ports(&mut self, ports: &[u16]) {
        for &port in ports {
            take_port(&mut self.free.ports, port);
        }
    }
}

/// `total` less the `used` ports and less what an earlier range of `total`
/// already covers (a port is handed out once), keeping `total`'s order.
/// Ports above 65535 are dropped: no task can hold them.
pub(super) fn free_ranges(total: &[PortRange], used: &[PortRange]) -> Vec<PortRange> {
    let mut taken: Vec<PortRange> = used.to_vec();
    let mut free = Vec::new();
    for range in total {
        let end = range.end.min(u64::from(u16::MAX));
        if range.begin > end {
            continue;
        }
        taken.sort_by_key(|r| r.begin);
        let mut next = range.begin;
        let mut pieces = Vec::new();
        for t in &taken {
            if t.end < next {
                continue;
            }
            if t.begin > end {
                break;
            }
            if t.begin > next {
                pieces.push(PortRange {
                    begin: next,
                    end: t.begin - 1,
                });
            }
            next = next.max(t.end.saturating_add(1));
        }
        if next <= end {
            pieces.push(PortRange { begin: next, end });
        }
        taken.extend_from_slice(&pieces);
        free.extend(pieces);
    }
    free
}

/// Sorted ports as ranges, consecutive ones merged.
fn port_ranges(ports: &[u16]) -> Vec<PortRange> {
    let mut ranges: Vec<PortRange> = Vec::new();
    for &port in ports {
        let port = u64::from(port);
        match ranges.last_mut() {
            Some(last) if last.end + 1 >= port => last.end = last.end.max(port),
            _ => ranges.push(PortRange {
                begin: port,
                end: port,
            }),
        }
    }
    ranges
}

/// Removes one port from the ranges; false when it is not among them.
fn take_port(ranges: &mut Vec<PortRange>, port: u16) -> bool {
    let port = u64::from(port);
    let Some(i) = ranges.iter().position(|r| r.begin <= port && port <= r.end) else {
        return false;
    };
    let r = ranges[i];
    match (r.begin == port, r.end == port) {
        (true, true) => {
            ranges.remove(i);
        }
        (true, false) => ranges[i].begin = port + 1,
        (false, true) => ranges[i].end = port - 1,
        (false, false) => {
            ranges[i].end = port - 1;
            ranges.insert(
                i + 1,
                PortRange {
                    begin: port + 1,
                    end: r.end,
                },
            );
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(begin: u64, end: u64) -> PortRange {
        PortRange { begin, end }
    }

    #[test]
    fn free_ranges_skip_used_and_overlaps_and_keep_order() {
        assert_eq!(
            free_ranges(&[r(31000, 31005)], &[r(31000, 31000), r(31003, 31003)]),
            [r(31001, 31002), r(31004, 31005)]
        );
        assert_eq!(
            free_ranges(&[r(32000, 32001), r(31000, 32000)], &[]),
            [r(32000, 32001), r(31000, 31999)],
            "the agent's order stays; an overlap is free once"
        );
        assert_eq!(free_ranges(&[r(65535, 70000)], &[]), [r(65535, 65535)]);
        assert!(free_ranges(&[r(1, 1)], &[r(1, 1)]).is_empty());
    }

    #[test]
    fn ports_resolve_fixed_first_then_first_free() {
        let mut view = AgentView {
            id: "a".into(),
            hostname: "h".into(),
            attributes: Cow::Owned(BTreeMap::new()),
            total: Cow::Owned(Resources::default()),
            free: Resources {
                ports: vec![r(31000, 31003)],
                ..Resources::default()
            },
            active: true,
        };
        assert_eq!(
            view.resolve_ports(&[0, 31000, 0]),
            Some(vec![31001, 31000, 31002])
        );
        assert_eq!(
            view.resolve_ports(&[31000, 31000]),
            None,
            "one port, held once"
        );
        assert_eq!(view.resolve_ports(&[80]), None);
        assert_eq!(view.resolve_ports(&[0; 5]), None);
        for wanted in [
            &[0, 31000, 0][..],
            &[31000, 31000],
            &[80],
            &[0; 5],
            &[0; 4],
            &[],
        ] {
            assert_eq!(
                view.ports_fit(wanted),
                view.resolve_ports(wanted).is_some(),
                "{wanted:?}"
            );
        }
        view.take_ports(&[31001, 31002]);
        assert_eq!(view.free.ports, [r(31000, 31000), r(31003, 31003)]);
        assert_eq!(view.resolve_ports(&[0, 0]), Some(vec![31000, 31003]));
    }
}
