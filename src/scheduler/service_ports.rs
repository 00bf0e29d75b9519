//! Service ports: Marathon gives every port definition of port 0 a port of
//! its own in 10000–20000, unique across apps, and keeps a declared one.
//!
//! ```text
//!  MarathonState.apply ─▶ an app's current version replaced ─▶ ServicePorts::release(old), hold(new)
//!  snapshot read ─────────▶ ServicePorts::of(every app's current version)
//!  api::deploy ───────────▶ Assigner::new(index, the change's apps)
//!                           ─▶ assign(app, its version before): its old ports first, then the lowest free
//! ```
//!
//! The assignment is Marathon's (`GroupManager.assignDynamicServicePorts`):
//! taken are every app's ports and every port the change declares or has
//! already handed out, so the apps of one `PUT /v2/apps` get distinct ports;
//! an app updated with port 0 again gets back the ports it had (a load
//! balancer in front of it keeps working).
//!
//! The index is derived state, like the registry's (`registry::index`):
//! never serialized, rebuilt when a snapshot is read, changed only inside
//! `MarathonState::apply`. Without it each deployment read every app's
//! ports: 7% of the master's CPU for 1,000 apps POSTed one by one, growing
//! with the number of apps.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Range;

use imbl::OrdMap;

use super::app::AppDefinition;

/// Marathon's default `local_port_min` / `local_port_max`.
pub const RANGE: Range<u16> = 10000..20000;

/// Which service ports the apps' current versions hold.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePorts {
    /// How many apps declare each port (two may declare one explicitly).
    held: OrdMap<u16, u32>,
    /// The range's ports no app holds, as runs: start → end (exclusive).
    /// The lowest free port is a lookup, and an empty index is one run
    /// (a set of 10,000 ports took ~0.6 ms to build at every start).
    free: OrdMap<u16, u16>,
}

impl Default for ServicePorts {
    fn default() -> Self {
        Self {
            held: OrdMap::new(),
            free: OrdMap::unit(RANGE.start, RANGE.end),
        }
    }
}

impl ServicePorts {
    pub fn of<'a>(apps: impl IntoIterator<Item = &'a AppDefinition>) -> Self {
        let mut ports = Self::default();
        for app in apps {
            ports.hold(app);
        }
        ports
    }

    pub fn hold(&mut self, app: &AppDefinition) {
        for port in declared(app) {
            let count = self.held.entry(port).or_insert(0);
            *count += 1;
            if *count == 1 {
                self.take(port);
            }
        }
    }

    pub fn release(&mut self, app: &AppDefinition) {
        for port in declared(app) {
            if let Some(count) = self.held.get_mut(&port) {
                *count -= 1;
                if *count == 0 {
                    self.held.remove(&port);
                    self.give_back(port);
                }
            }
        }
    }

    #[cfg(test)]
    pub fn is_held(&self, port: u16) -> bool {
        self.held.contains_key(&port)
    }

    /// The free run holding `port`, if it is free.
    fn run_at(&self, port: u16) -> Option<(u16, u16)> {
        self.free
            .range(..=port)
            .next_back()
            .map(|(start, end)| (*start, *end))
            .filter(|(_, end)| port < *end)
    }

    /// The free ports from `from` on, lowest first.
    fn free_from(&self, from: u16) -> impl Iterator<Item = u16> + '_ {
        let first = self.run_at(from).map(|(_, end)| (from, end));
        first
            .into_iter()
            .chain(self.free.range(from + 1..).map(|(s, e)| (*s, *e)))
            .flat_map(|(start, end)| start..end)
    }

    /// Cuts `port` out of its free run.
    fn take(&mut self, port: u16) {
        let Some((start, end)) = self.run_at(port) else {
            return;
        };
        self.free.remove(&start);
        if start < port {
            self.free.insert(start, port);
        }
        if port + 1 < end {
            self.free.insert(port + 1, end);
        }
    }

    /// Puts `port` back, joined to the free runs either side of it.
    fn give_back(&mut self, port: u16) {
        if !RANGE.contains(&port) {
            return;
        }
        let mut start = port;
        let mut end = port + 1;
        if let Some((s, _)) = self
            .free
            .range(..port)
            .next_back()
            .map(|(s, e)| (*s, *e))
            .filter(|(_, e)| *e == port)
        {
            self.free.remove(&s);
            start = s;
        }
        if let Some(e) = self.free.remove(&end) {
            end = e;
        }
        self.free.insert(start, end);
    }
}

/// Where each of the app's service ports is written, and its field path
/// (the places [`AppDefinition::service_ports`] reads).
fn slots(app: &mut AppDefinition) -> Vec<(&mut u16, String)> {
    if app.is_host_networked() {
        app.port_definitions
            .iter_mut()
            .enumerate()
            .map(|(i, p)| (&mut p.port, format!("/portDefinitions({i})/port")))
            .collect()
    } else {
        app.port_mappings_mut()
            .enumerate()
            .map(|(i, m)| {
                let path = format!("/container/portMappings({i})/servicePort");
                (&mut m.service_port, path)
            })
            .collect()
    }
}

/// An app's service ports, 0 (to be assigned) left out.
fn declared(app: &AppDefinition) -> impl Iterator<Item = u16> + use<> {
    app.service_ports().into_iter().filter(|p| *p != 0)
}

/// Hands out the ports of one change (one deployment).
pub struct Assigner<'a> {
    index: &'a ServicePorts,
    /// Declared by the change's apps, or handed out to them.
    taken: BTreeSet<u16>,
    /// Every free port below it has been handed out or is taken.
    next: u16,
}

impl<'a> Assigner<'a> {
    pub fn new(index: &'a ServicePorts, change: &[AppDefinition]) -> Self {
        Self {
            index,
            taken: change.iter().flat_map(declared).collect(),
            next: RANGE.start,
        }
    }

    /// Gives each service port 0 a port: first the ones `before` (the app's
    /// current version) had and no app of the change declares, then the
    /// lowest free. When none is left, the field path of the one that found none.
    pub fn assign(
        &mut self,
        app: &mut AppDefinition,
        before: Option<&AppDefinition>,
    ) -> Result<(), String> {
        let mut own: VecDeque<u16> = before
            .map(|b| {
                declared(b)
                    .filter(|p| RANGE.contains(p) && !self.taken.contains(p))
                    .collect()
            })
            .unwrap_or_default();
        for (port, path) in slots(app) {
            if *port != 0 {
                continue;
            }
            let given = match own.pop_front() {
                Some(given) => given,
                None => self.lowest_free().ok_or(path)?,
            };
            *port = given;
            self.taken.insert(given);
        }
        Ok(())
    }

    fn lowest_free(&mut self) -> Option<u16> {
        let port = self
            .index
            .free_from(self.next)
            .find(|p| !self.taken.contains(p))?;
        self.next = port + 1;
        Some(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::app::PortDefinition;

    fn app(id: &str, ports: &[u16]) -> AppDefinition {
        let mut app =
            crate::scheduler::app::test_app(serde_json::json!({"id": id, "cmd": "sleep 600"}));
        app.port_definitions = ports
            .iter()
            .map(|p| PortDefinition {
                port: *p,
                ..PortDefinition::default_port()
            })
            .collect();
        app
    }

    fn ports(app: &AppDefinition) -> Vec<u16> {
        app.port_definitions.iter().map(|p| p.port).collect()
    }

    #[test]
    fn the_apps_of_one_change_get_distinct_ports_around_held_and_declared_ones() {
        let index = ServicePorts::of(&[app("/a", &[10000, 10002])]);
        let mut change = vec![app("/x", &[0, 0]), app("/y", &[10001, 0]), app("/z", &[0])];
        let mut assigner = Assigner::new(&index, &change);
        for app in &mut change {
            assigner.assign(app, None).expect("ports left");
        }
        // 10000 and 10002 are /a's, 10001 is declared by /y.
        assert_eq!(ports(&change[0]), [10003, 10004]);
        assert_eq!(ports(&change[1]), [10001, 10005]);
        assert_eq!(ports(&change[2]), [10006]);
    }

    #[test]
    fn an_updated_app_gets_back_the_ports_it_had() {
        let before = app("/a", &[10005, 10007]);
        let index = ServicePorts::of(&[before.clone(), app("/b", &[10000])]);
        let mut update = app("/a", &[0, 10007, 0]);
        Assigner::new(&index, std::slice::from_ref(&update))
            .assign(&mut update, Some(&before))
            .expect("ports left");
        // 10005 comes back; the third is the lowest free.
        assert_eq!(ports(&update), [10005, 10007, 10001]);
    }

    #[test]
    fn a_port_is_free_again_when_no_app_holds_it() {
        let a = app("/a", &[10000, 31000]);
        let b = app("/b", &[10000]);
        let mut index = ServicePorts::of([&a, &b]);
        index.release(&a);
        assert!(index.is_held(10000), "/b still holds it");
        assert!(!index.is_held(31000));
        index.release(&b);
        assert_eq!(index, ServicePorts::default());
        let mut c = app("/c", &[0]);
        Assigner::new(&index, &[])
            .assign(&mut c, None)
            .expect("ports left");
        assert_eq!(ports(&c), [10000]);
    }

    #[test]
    fn free_runs_split_and_join_as_ports_are_held_and_released() {
        let apps: Vec<AppDefinition> = [10000, 10001, 10003, 19999, 31000]
            .iter()
            .map(|p| app(&format!("/{p}"), &[*p]))
            .collect();
        let mut index = ServicePorts::of(&apps);
        let free: Vec<u16> = index.free_from(RANGE.start).take(3).collect();
        assert_eq!(free, [10002, 10004, 10005]);
        assert_eq!(index.free_from(19998).collect::<Vec<_>>(), [19998]);
        for (i, app) in apps.iter().enumerate().rev() {
            index.release(app);
            let rebuilt = ServicePorts::of(&apps[..i]);
            assert_eq!(index, rebuilt, "after releasing {}", app.id);
        }
        assert_eq!(index, ServicePorts::default());
    }

    #[test]
    fn a_bridged_apps_service_ports_are_its_port_mappings() {
        let bridged = |id: &str, service: u16| {
            crate::scheduler::app::test_app(serde_json::json!({
                "id": id, "container": {"type": "DOCKER", "docker": {"image": "i"},
                    "portMappings": [{"containerPort": 80, "servicePort": service}]},
                "networks": [{"mode": "container/bridge"}],
            }))
        };
        let held = bridged("/held", 10000);
        assert_eq!(held.service_ports(), [10000]);
        let index = ServicePorts::of([&held, &app("/host", &[10001])]);
        let mut new = bridged("/new", 0);
        Assigner::new(&index, std::slice::from_ref(&new))
            .assign(&mut new, None)
            .expect("ports left");
        assert_eq!(new.service_ports(), [10002]);
        assert!(
            new.port_definitions.is_empty(),
            "{:?}",
            new.port_definitions
        );
    }

    #[test]
    fn an_exhausted_range_names_the_definition_that_found_none() {
        let almost = app("/almost", &RANGE.skip(1).collect::<Vec<_>>());
        let index = ServicePorts::of([&almost]);
        let mut late = app("/late", &[31000, 0, 0]);
        let result = Assigner::new(&index, std::slice::from_ref(&late)).assign(&mut late, None);
        assert_eq!(result, Err("/portDefinitions(2)/port".to_string()));
        assert_eq!(ports(&late)[..2], [31000, RANGE.start]);
    }
}
