//! Deployment plans: an app tree before and after a change becomes steps, as
//! Marathon builds them (`DeploymentPlan.dependencyOrderedSteps`).
//!
//! ```text
//!  step 1: StopApplication   every app removed
//!  step 2: StartApplication  every new app (0 instances; the next steps scale it)
//!  then one step per dependency level, apps others depend on first:
//!          new app or instances changed only ─▶ ScaleApplication
//!          configuration changed               ─▶ RestartApplication
//! ```
//!
//! Empty steps are dropped. The driver runs the actions of a step together
//! and starts the next step when every action of this one holds.

use std::collections::BTreeMap;

use super::app::{AppDefinition, UpdateKind};
use super::state::{Action, ActionKind, Deployment};

/// Apps by id: `None` on the left is an app that did not exist; on the right,
/// one that is removed.
pub type Apps = BTreeMap<String, Option<AppDefinition>>;

/// The plan that takes `original` to `target` (same keys in both). `restart`
/// names apps to restart even if unchanged (`POST /v2/apps/{id}/restart`).
pub fn plan(
    id: String,
    version: String,
    original: &Apps,
    target: &Apps,
    restart: &[String],
) -> Deployment {
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    let mut later: Vec<(String, ActionKind)> = Vec::new();
    for (app, after) in target {
        let before = original.get(app).cloned().flatten();
        match (before, after) {
            (Some(_), None) => stops.push(action(ActionKind::StopApplication, app)),
            (None, Some(_)) => {
                starts.push(action(ActionKind::StartApplication, app));
                later.push((app.clone(), ActionKind::ScaleApplication));
            }
            (Some(before), Some(after)) => {
                let kind = if restart.contains(app) {
                    Some(ActionKind::RestartApplication)
                } else {
                    match UpdateKind::between(&before, after) {
                        UpdateKind::None => None,
                        UpdateKind::ScaleOnly => Some(ActionKind::ScaleApplication),
                        UpdateKind::Restart => Some(ActionKind::RestartApplication),
                    }
                };
                if let Some(kind) = kind {
                    later.push((app.clone(), kind));
                }
            }
            (None, None) => {}
        }
    }
    let levels = dependency_levels(target);
    let mut by_level: BTreeMap<usize, Vec<Action>> = BTreeMap::new();
    for (app, kind) in later {
        let level = levels.get(&app).copied().unwrap_or(0);
        by_level.entry(level).or_default().push(action(kind, &app));
    }
    let mut steps = vec![stops, starts];
    steps.extend(by_level.into_values());
    steps.retain(|s| !s.is_empty());
    let mut affected: Vec<String> = steps.iter().flatten().map(|a| a.app.clone()).collect();
    affected.sort();
    affected.dedup();
    Deployment {
        id,
        version,
        affected_apps: affected,
        steps,
        current_step: 0,
        original: original.clone(),
    }
}

fn action(action: ActionKind, app: &str) -> Action {
    Action {
        action,
        app: app.to_string(),
    }
}

/// Each app's level: 0 for an app that depends on nothing (among the
/// target's apps), else one more than its deepest dependency. A dependency
/// on a group counts every app under it. Cycles are cut (validation rejects
/// them before; this only keeps a bad log entry from looping).
fn dependency_levels(apps: &Apps) -> BTreeMap<String, usize> {
    let present: Vec<(&str, &AppDefinition)> = apps
        .iter()
        .filter_map(|(id, app)| app.as_ref().map(|a| (id.as_str(), a)))
        .collect();
    levels_of(&present)
}

fn levels_of(present: &[(&str, &AppDefinition)]) -> BTreeMap<String, usize> {
    let deps_of = |app: &AppDefinition| -> Vec<String> {
        let mut out = Vec::new();
        for dep in &app.dependencies {
            let dep = dep.to_string();
            let prefix = format!("{}/", dep.trim_end_matches('/'));
            for (id, _) in present {
                if *id == dep || id.starts_with(&prefix) {
                    out.push((*id).to_string());
                }
            }
        }
        out
    };
    let graph: BTreeMap<String, Vec<String>> = present
        .iter()
        .map(|(id, app)| ((*id).to_string(), deps_of(app)))
        .collect();
    let mut levels = BTreeMap::new();
    for id in graph.keys() {
        level(id, &graph, &mut levels, &mut Vec::new());
    }
    levels
}

fn level(
    id: &str,
    graph: &BTreeMap<String, Vec<String>>,
    levels: &mut BTreeMap<String, usize>,
    path: &mut Vec<String>,
) -> usize {
    if let Some(l) = levels.get(id) {
        return *l;
    }
    if path.iter().any(|p| p == id) {
        return 0;
    }
    path.push(id.to_string());
    let l = graph
        .get(id)
        .map(|deps| {
            deps.iter()
                .map(|d| level(d, graph, levels, path) + 1)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    path.pop();
    levels.insert(id.to_string(), l);
    l
}

/// Whether the dependencies among `apps` (every app as a change would leave
/// the tree) form a cycle; the error names it. Apps are borrowed: a check on
/// every write must not copy the whole tree.
pub fn find_cycle(apps: &BTreeMap<&str, &AppDefinition>) -> Option<String> {
    if apps.values().all(|a| a.dependencies.is_empty()) {
        return None;
    }
    let present: Vec<(&str, &AppDefinition)> = apps.iter().map(|(id, a)| (*id, *a)).collect();
    let levels = levels_of(&present);
    for (id, app) in present {
        for dep in &app.dependencies {
            let dep = dep.to_string();
            if let Some(app_level) = levels.get(id)
                && levels.get(&dep).is_some_and(|l| l >= app_level)
            {
                return Some(format!("{id} and {dep} depend on each other"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scheduler::app::PathId;

    fn app(v: serde_json::Value) -> AppDefinition {
        AppDefinition::from_json(&v, &PathId::root()).expect("a valid app")
    }

    fn steps(d: &Deployment) -> Vec<Vec<(ActionKind, &str)>> {
        d.steps
            .iter()
            .map(|s| s.iter().map(|a| (a.action, a.app.as_str())).collect())
            .collect()
    }

    #[test]
    fn new_changed_scaled_and_removed_apps() {
        let old_a = app(json!({"id": "/a", "cmd": "sleep 1"}));
        let old_b = app(json!({"id": "/b", "cmd": "sleep 1"}));
        let old_c = app(json!({"id": "/c", "cmd": "sleep 1"}));
        let original: Apps = [
            ("/a".into(), Some(old_a.clone())),
            ("/b".into(), Some(old_b.clone())),
            ("/c".into(), Some(old_c.clone())),
            ("/new".into(), None),
        ]
        .into();
        let target: Apps = [
            (
                "/a".into(),
                Some(app(json!({"id": "/a", "cmd": "sleep 1", "instances": 3}))),
            ),
            (
                "/b".into(),
                Some(app(json!({"id": "/b", "cmd": "sleep 2"}))),
            ),
            ("/c".into(), None),
            (
                "/new".into(),
                Some(app(json!({"id": "/new", "cmd": "sleep 1"}))),
            ),
        ]
        .into();
        let d = plan("d".into(), "v".into(), &original, &target, &[]);
        assert_eq!(
            steps(&d),
            vec![
                vec![(ActionKind::StopApplication, "/c")],
                vec![(ActionKind::StartApplication, "/new")],
                vec![
                    (ActionKind::ScaleApplication, "/a"),
                    (ActionKind::RestartApplication, "/b"),
                    (ActionKind::ScaleApplication, "/new"),
                ],
            ]
        );
        assert_eq!(d.affected_apps, ["/a", "/b", "/c", "/new"]);
        assert_eq!(d.original.get("/c"), Some(&Some(old_c)));
    }

    #[test]
    fn dependencies_come_first_and_unchanged_apps_need_no_step() {
        let db = app(json!({"id": "/g/db", "cmd": "sleep 1"}));
        let web = app(json!({"id": "/g/web", "cmd": "sleep 1", "dependencies": ["/g/db"]}));
        let original: Apps = [("/g/db".into(), None), ("/g/web".into(), None)].into();
        let target: Apps = [
            ("/g/db".into(), Some(db.clone())),
            ("/g/web".into(), Some(web.clone())),
        ]
        .into();
        let d = plan("d".into(), "v".into(), &original, &target, &[]);
        assert_eq!(
            steps(&d)[1..],
            [
                vec![(ActionKind::ScaleApplication, "/g/db")],
                vec![(ActionKind::ScaleApplication, "/g/web")],
            ]
        );
        let same: Apps = [("/g/db".into(), Some(db.clone()))].into();
        assert!(
            plan("d".into(), "v".into(), &same, &same, &[])
                .steps
                .is_empty()
        );
        let restarted = plan("d".into(), "v".into(), &same, &same, &["/g/db".into()]);
        assert_eq!(
            steps(&restarted),
            vec![vec![(ActionKind::RestartApplication, "/g/db")]]
        );
    }

    fn app_with(id: &str, deps: &[&str]) -> AppDefinition {
        AppDefinition::from_json(
            &json!({"id": id, "cmd": "sleep 1", "dependencies": deps}),
            &PathId::root(),
        )
        .expect("a valid app")
    }

    #[test]
    fn cycles_are_found_among_borrowed_apps_and_through_groups() {
        let (a, b, c) = (
            app_with("/a", &["/g"]),
            app_with("/g/b", &["/c"]),
            app_with("/c", &[]),
        );
        let mut tree: BTreeMap<&str, &AppDefinition> =
            [("/a", &a), ("/g/b", &b), ("/c", &c)].into_iter().collect();
        assert_eq!(find_cycle(&tree), None);
        let c_back = app_with("/c", &["/a"]);
        tree.insert("/c", &c_back);
        let cycle = find_cycle(&tree).expect("a cycle through the group /g");
        assert!(cycle.contains("depend on each other"), "{cycle}");
        // Without any dependency there is nothing to order.
        let plain = app_with("/p", &[]);
        assert_eq!(find_cycle(&[("/p", &plain)].into_iter().collect()), None);
    }
}
