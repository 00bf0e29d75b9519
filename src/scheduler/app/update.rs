//! Changing an app: partial updates (PUT with `partialUpdate=true`, the
//! default, and PATCH) and what a change means for running tasks.
//!
//! A partial update replaces whole top-level keys of the stored app's wire
//! form with the ones the request gives, then reads the result exactly as a
//! new app is read (normalise, default, validate). As in Marathon:
//! - a key given as `null` keeps the stored value (`None` = not given);
//! - `id`, `version` and `versionInfo` in the body are ignored: the id is the
//!   URL's, versions are the store's (a body of only `{"version": ts}` is a
//!   rollback, which the API recognises before merging);
//! - a deprecated key replaces its successor (`ports` → `portDefinitions`,
//!   `uris` → `fetch`, `ipAddress` or `container.docker.network` →
//!   `networks`), and switching between host and container networking
//!   drops the stored ports of the other kind so its defaults apply.
//!
//! [`UpdateKind`]: any change but `instances` restarts the tasks, labels
//! included, as Marathon does (every config change gets a new
//! `lastConfigChangeAt`, and labels reach tasks as `MARATHON_APP_LABEL_*`).

use serde_json::{Map, Value};

use super::definition::AppDefinition;
use super::error::{AppError, Violation};

/// Keys of a request body that never change a stored app.
const IGNORED: [&str; 3] = ["id", "version", "versionInfo"];

/// `patch` merged over `existing`, parsed and validated as a whole app.
pub fn merge(existing: &AppDefinition, patch: &Value) -> Result<AppDefinition, AppError> {
    let Value::Object(patch) = patch else {
        return Err(AppError::Malformed(Violation::new(
            "/",
            "an app update must be a JSON object",
        )));
    };
    let Value::Object(mut merged) = existing.to_json() else {
        return Err(AppError::Malformed(Violation::new(
            "/",
            "the stored app does not serialize to an object",
        )));
    };
    let given = |key: &str| patch.get(key).is_some_and(|v| !v.is_null());
    if given("ports") {
        merged.remove("portDefinitions");
    }
    if given("uris") {
        merged.remove("fetch");
    }
    if given("ipAddress") || legacy_docker_network(patch).is_some() {
        merged.remove("networks");
    }
    if let Some(host) = patch_networking(patch)
        && host != existing.is_host_networked()
    {
        if !given("portDefinitions") && !given("ports") {
            merged.remove("portDefinitions");
        }
        if !given("container")
            && let Some(Value::Object(container)) = merged.get_mut("container")
        {
            container.remove("portMappings");
        }
    }
    for (key, value) in patch {
        if !value.is_null() && !IGNORED.contains(&key.as_str()) {
            merged.insert(key.clone(), value.clone());
        }
    }
    AppDefinition::from_json(&Value::Object(merged), &existing.id.parent())
}

/// `container.docker.network` of a request body, if given.
fn legacy_docker_network(patch: &Map<String, Value>) -> Option<&str> {
    patch
        .get("container")?
        .get("docker")?
        .get("network")?
        .as_str()
}

/// Whether the body sets host networking (`Some(true)`), container
/// networking (`Some(false)`), or leaves networking alone (`None`).
fn patch_networking(patch: &Map<String, Value>) -> Option<bool> {
    if let Some(Value::Array(networks)) = patch.get("networks")
        && !networks.is_empty()
    {
        return Some(
            networks
                .iter()
                .all(|n| n.get("mode").and_then(Value::as_str) == Some("host")),
        );
    }
    if let Some(network) = legacy_docker_network(patch) {
        return Some(network.eq_ignore_ascii_case("HOST"));
    }
    patch
        .get("ipAddress")
        .is_some_and(|ip| !ip.is_null())
        .then_some(false)
}

/// What moving from one definition of an app to another asks of its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Nothing changed (versions aside).
    None,
    /// Only `instances` changed: start or kill tasks, keep the others.
    ScaleOnly,
    /// The configuration changed: replace every task (rolling restart).
    Restart,
}

impl UpdateKind {
    pub fn between(old: &AppDefinition, new: &AppDefinition) -> Self {
        let unversioned = |app: &AppDefinition, instances: u32| AppDefinition {
            version: None,
            version_info: None,
            instances,
            ..app.clone()
        };
        if unversioned(old, 0) != unversioned(new, 0) {
            Self::Restart
        } else if old.instances != new.instances {
            Self::ScaleOnly
        } else {
            Self::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::app::test_app;
    use serde_json::json;

    fn web() -> AppDefinition {
        let mut a = test_app(json!({
            "id": "/prod/web", "cmd": "serve", "instances": 2, "mem": 64,
            "portDefinitions": [{"port": 10001, "name": "http"}],
            "labels": {"team": "a"}, "dependencies": ["db"],
        }));
        a.version = Some("2020-01-01T00:00:00.000Z".into());
        a
    }

    #[test]
    fn partial_update_replaces_given_keys_and_keeps_the_rest() {
        let old = web();
        let new = merge(
            &old,
            &json!({"instances": 5, "cpus": null, "id": "/elsewhere"}),
        )
        .expect("merge");
        assert_eq!(new.instances, 5);
        assert_eq!(new.id, old.id);
        assert_eq!(new.mem, 64.0);
        assert_eq!(new.cpus, 1.0);
        assert_eq!(new.port_definitions, old.port_definitions);
        assert_eq!(new.dependencies, old.dependencies);
        assert_eq!(
            new.version, old.version,
            "the store sets versions, not merge"
        );
        assert_eq!(UpdateKind::between(&old, &new), UpdateKind::ScaleOnly);
    }

    #[test]
    fn a_patch_is_validated_as_a_whole_app() {
        let err = merge(&web(), &json!({"args": ["x"]})).expect_err("cmd and args");
        assert_eq!(err.details()[0].path, "/");
        let err = merge(&web(), &json!({"cpus": "many"})).expect_err("type");
        assert!(
            matches!(err, AppError::Malformed(ref v) if v.path == "/cpus"),
            "{err:?}"
        );
        assert!(merge(&web(), &json!([1])).is_err());
    }

    #[test]
    fn deprecated_keys_replace_their_successors() {
        let new = merge(&web(), &json!({"ports": [0, 0]})).expect("ports");
        assert_eq!(new.port_definitions.len(), 2);
        assert_eq!(new.port_definitions[0].name, None);
        let with_fetch = merge(&web(), &json!({"fetch": [{"uri": "http://x/a"}]})).expect("f");
        let new = merge(&with_fetch, &json!({"uris": ["http://x/b.tgz"]})).expect("uris");
        assert_eq!(new.fetch.len(), 1);
        assert_eq!(new.fetch[0].uri, "http://x/b.tgz");
        assert!(new.fetch[0].extract);
    }

    #[test]
    fn switching_networking_drops_the_other_kinds_ports() {
        let old = web();
        let bridged = merge(
            &old,
            &json!({"container": {"docker": {"image": "nginx", "network": "BRIDGE",
                    "portMappings": [{"containerPort": 80, "name": "http"}]}}}),
        )
        .expect("to bridge");
        assert!(!bridged.is_host_networked());
        assert!(bridged.port_definitions.is_empty());
        let mappings = &bridged.container.as_ref().expect("container").port_mappings;
        assert_eq!(mappings[0].host_port, Some(0));
        assert_eq!(UpdateKind::between(&old, &bridged), UpdateKind::Restart);

        let back = merge(&bridged, &json!({"networks": [{"mode": "host"}]})).expect("to host");
        assert!(back.is_host_networked());
        assert_eq!(
            back.port_definitions.len(),
            1,
            "host default port comes back"
        );
        let c = back.container.as_ref().expect("container kept");
        assert!(c.port_mappings.is_empty());

        // Re-sending the same networking keeps custom ports.
        let same = merge(&old, &json!({"networks": [{"mode": "host"}]})).expect("same");
        assert_eq!(same.port_definitions, old.port_definitions);
    }

    #[test]
    fn update_kinds() {
        let old = web();
        let mut same = old.clone();
        same.version = Some("2021-01-01T00:00:00.000Z".into());
        assert_eq!(UpdateKind::between(&old, &same), UpdateKind::None);
        let relabelled = merge(&old, &json!({"labels": {"team": "b"}})).expect("labels");
        assert_eq!(UpdateKind::between(&old, &relabelled), UpdateKind::Restart);
        let both = merge(&old, &json!({"instances": 9, "mem": 65})).expect("both");
        assert_eq!(UpdateKind::between(&old, &both), UpdateKind::Restart);
        let scaled_to_zero = merge(&old, &json!({"instances": 0})).expect("zero");
        assert_eq!(
            UpdateKind::between(&old, &scaled_to_zero),
            UpdateKind::ScaleOnly
        );
    }
}
