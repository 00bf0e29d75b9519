//! `/v2/groups` input: a tree of groups holding apps, read into
//! [`GroupDefinition`] and flattened into the apps and groups the store
//! keeps (the group JSON served back is built elsewhere).
//!
//! Ids resolve as Marathon resolves them: a group's relative id against its
//! parent group (the top one against the group the URL names), an app's
//! relative id against its group, and `dependencies` (of an app or a group)
//! against the parent of whoever declares them, so siblings name each
//! other by their short names. An absolute id must still lie inside its
//! group, and no id may appear twice in the tree.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::definition::{AppDefinition, require_object};
use super::error::{AppError, Problems, Violation};
use super::lenient::{Lenient, from_value};
use super::normalize::dependencies;
use super::path::PathId;
use super::time::normalize_timestamp;

#[derive(Debug, Clone, PartialEq)]
pub struct GroupDefinition {
    pub id: PathId,
    pub apps: Vec<AppDefinition>,
    pub groups: Vec<GroupDefinition>,
    /// Absolute ids of the apps or groups this group's apps wait for.
    pub dependencies: Vec<PathId>,
    pub version: Option<String>,
}

/// One group of a flattened tree, without its children.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupNode {
    pub id: PathId,
    pub dependencies: Vec<PathId>,
}

/// A group tree as lists: every app, and every group (the top one first,
/// then depth-first, parents before children).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlatGroups {
    pub apps: Vec<AppDefinition>,
    pub groups: Vec<GroupNode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GroupWire {
    id: Option<Lenient<String>>,
    apps: Option<Vec<Value>>,
    groups: Option<Vec<Value>>,
    pods: Option<Vec<Value>>,
    dependencies: Option<Vec<String>>,
    version: Option<String>,
}

impl GroupDefinition {
    /// Reads a group tree; `base` is the group the request addresses (its id
    /// when the body has none, and what a relative id is relative to).
    pub fn from_json(value: &Value, base: &PathId) -> Result<Self, AppError> {
        let mut problems = Problems::default();
        let mut seen = BTreeMap::new();
        let group = parse(value, base, None, "", &mut seen, &mut problems)?;
        match problems.into_result() {
            Ok(()) => Ok(group),
            Err(violations) => Err(AppError::Invalid(violations)),
        }
    }

    pub fn flatten(&self) -> FlatGroups {
        let mut flat = FlatGroups::default();
        self.flatten_into(&mut flat);
        flat
    }

    fn flatten_into(&self, flat: &mut FlatGroups) {
        flat.groups.push(GroupNode {
            id: self.id.clone(),
            dependencies: self.dependencies.clone(),
        });
        flat.apps.extend(self.apps.iter().cloned());
        for group in &self.groups {
            group.flatten_into(flat);
        }
    }
}

/// Parses the group at `at` (its path prefix in errors) inside `parent`.
fn parse(
    value: &Value,
    base: &PathId,
    parent: Option<&PathId>,
    at: &str,
    seen: &mut BTreeMap<PathId, String>,
    p: &mut Problems,
) -> Result<GroupDefinition, AppError> {
    require_object(value, "a group").map_err(|e| e.nested(at))?;
    let wire: GroupWire = from_value(value).map_err(|v| AppError::Malformed(v).nested(at))?;
    let id = match &wire.id {
        None => base.clone(),
        Some(Lenient(raw)) => PathId::parse_in(raw, base).unwrap_or_else(|e| {
            p.add(format!("{at}/id"), e);
            base.clone()
        }),
    };
    if let Some(parent) = parent
        && !id.is_child_of(parent)
    {
        p.add(
            format!("{at}/id"),
            format!("{id} is not inside group {parent}"),
        );
    }
    claim(&id, &format!("{at}/id"), seen, p);
    if wire.pods.as_ref().is_some_and(|pods| !pods.is_empty()) {
        p.add(format!("{at}/pods"), "pods are not supported");
    }
    let version = wire.version.as_deref().and_then(|v| {
        let normal = normalize_timestamp(v);
        if normal.is_none() {
            p.add(
                format!("{at}/version"),
                format!("'{v}' is not an ISO-8601 timestamp"),
            );
        }
        normal
    });
    let dependencies = dependencies(wire.dependencies, &id, at, p);

    let mut apps = Vec::new();
    for (i, app) in wire.apps.unwrap_or_default().iter().enumerate() {
        let app_at = format!("{at}/apps({i})");
        match AppDefinition::from_json(app, &id) {
            Ok(app) => {
                if !app.id.is_child_of(&id) {
                    p.add(
                        format!("{app_at}/id"),
                        format!("{} is not inside group {id}", app.id),
                    );
                }
                claim(&app.id, &format!("{app_at}/id"), seen, p);
                apps.push(app);
            }
            Err(AppError::Invalid(violations)) => {
                p.extend(nested(violations, &app_at));
            }
            Err(malformed) => return Err(malformed.nested(&app_at)),
        }
    }
    let mut groups = Vec::new();
    for (i, group) in wire.groups.unwrap_or_default().iter().enumerate() {
        let group_at = format!("{at}/groups({i})");
        groups.push(parse(group, &id, Some(&id), &group_at, seen, p)?);
    }
    Ok(GroupDefinition {
        id,
        apps,
        groups,
        dependencies,
        version,
    })
}

fn nested(violations: Vec<Violation>, at: &str) -> Vec<Violation> {
    match AppError::Invalid(violations).nested(at) {
        AppError::Invalid(v) => v,
        AppError::Malformed(v) => vec![v],
    }
}

/// Records that `id` is taken; a second use is a violation at `at`.
fn claim(id: &PathId, at: &str, seen: &mut BTreeMap<PathId, String>, p: &mut Problems) {
    if let Some(first) = seen.get(id) {
        p.add(at, format!("{id} is already used at {first}"));
    } else {
        seen.insert(id.clone(), at.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(err: &AppError) -> Vec<&str> {
        err.details().iter().map(|v| v.path.as_str()).collect()
    }

    #[test]
    fn relative_ids_resolve_down_the_tree_and_flatten() {
        let body = json!({
            "id": "prod",
            "apps": [{"id": "api", "cmd": "a", "dependencies": ["db/pg"]}],
            "groups": [
                {"id": "db", "apps": [{"id": "pg", "cmd": "p"}], "dependencies": ["/infra"]},
                {"id": "/prod/web", "apps": [{"id": "/prod/web/ui", "cmd": "u"}]}
            ]
        });
        let g = GroupDefinition::from_json(&body, &PathId::root()).expect("valid");
        let flat = g.flatten();
        let apps: Vec<String> = flat.apps.iter().map(|a| a.id.to_string()).collect();
        assert_eq!(apps, ["/prod/api", "/prod/db/pg", "/prod/web/ui"]);
        let groups: Vec<String> = flat.groups.iter().map(|n| n.id.to_string()).collect();
        assert_eq!(groups, ["/prod", "/prod/db", "/prod/web"]);
        assert_eq!(flat.apps[0].dependencies[0].to_string(), "/prod/db/pg");
        assert_eq!(flat.groups[1].dependencies[0].to_string(), "/infra");
    }

    #[test]
    fn the_url_group_is_the_id_when_the_body_has_none() {
        let base = PathId::parse("/team").expect("base");
        let g = GroupDefinition::from_json(&json!({"apps": [{"id": "x", "cmd": "c"}]}), &base)
            .expect("valid");
        assert_eq!(g.id, base);
        assert_eq!(g.apps[0].id.to_string(), "/team/x");
    }

    #[test]
    fn ids_outside_their_group_and_duplicates_are_refused_with_paths() {
        let body = json!({
            "id": "/a",
            "apps": [
                {"id": "/b/x", "cmd": "c"},
                {"id": "y", "cmd": "c"},
                {"id": "../a/y", "cmd": "c"}
            ],
            "groups": [{"id": "/elsewhere"}, {"id": "y"}]
        });
        let err = GroupDefinition::from_json(&body, &PathId::root()).expect_err("invalid");
        assert_eq!(
            paths(&err),
            [
                "/apps(0)/id",
                "/apps(2)/id",
                "/groups(0)/id",
                "/groups(1)/id"
            ],
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("/a/y is already used at /apps(1)/id"),
            "{err}"
        );
    }

    #[test]
    fn app_errors_carry_their_place_in_the_tree() {
        let body = json!({
            "id": "/a",
            "groups": [{"id": "b", "apps": [{"id": "ok", "cmd": "c"}, {"id": "bad", "cmd": "c", "cpus": -1}]}]
        });
        let err = GroupDefinition::from_json(&body, &PathId::root()).expect_err("invalid");
        assert_eq!(paths(&err), ["/groups(0)/apps(1)/cpus"]);
        let body = json!({"id": "/a", "apps": [{"id": "x", "cmd": "c", "mem": []}]});
        let err = GroupDefinition::from_json(&body, &PathId::root()).expect_err("malformed");
        assert!(
            matches!(&err, AppError::Malformed(v) if v.path == "/apps(0)/mem"),
            "{err:?}"
        );
        let err = GroupDefinition::from_json(&json!({"id": "/a", "pods": [{}]}), &PathId::root())
            .expect_err("pods");
        assert_eq!(paths(&err), ["/pods"]);
    }
}
