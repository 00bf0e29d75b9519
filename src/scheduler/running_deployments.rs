//! The running deployments, by id and by the apps they touch.
//!
//! A POST asks which running deployments lock its apps, its answer lists
//! the app's deployments, and each scheduler round reads the deployments of
//! the apps that changed. Scanning every running deployment for those (a
//! thousand apps POSTed from eight clients keep hundreds in flight) was 6%
//! of the master's CPU; the index by app makes each a lookup. The index is
//! derived: a snapshot holds the deployments by id alone, as before, and the
//! index is rebuilt as they are read.

use std::collections::BTreeSet;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::state::Deployment;

/// Persistent maps (`imbl`), like the rest of the Marathon state: a round
/// that changes one deployment copies pointers, not plans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunningDeployments {
    by_id: OrdMap<String, Arc<Deployment>>,
    by_app: OrdMap<String, OrdSet<String>>,
}

impl RunningDeployments {
    pub fn get(&self, id: &str) -> Option<&Arc<Deployment>> {
        self.by_id.get(id)
    }

    /// For changes within a deployment; its `affected_apps` stay as they
    /// were (the index keeps them).
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Arc<Deployment>> {
        self.by_id.get_mut(id)
    }

    pub fn insert(&mut self, id: String, deployment: Arc<Deployment>) {
        self.remove(&id);
        for app in &deployment.affected_apps {
            self.by_app
                .entry(app.clone())
                .or_default()
                .insert(id.clone());
        }
        self.by_id.insert(id, deployment);
    }

    pub fn remove(&mut self, id: &str) -> Option<Arc<Deployment>> {
        let gone = self.by_id.remove(id)?;
        for app in &gone.affected_apps {
            if let Some(ids) = self.by_app.get_mut(app) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_app.remove(app);
                }
            }
        }
        Some(gone)
    }

    /// Every running deployment, by id.
    pub fn values(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The running deployments that touch `app`, by id.
    pub fn of<'a>(&'a self, app: &str) -> impl Iterator<Item = &'a Deployment> {
        self.by_app
            .get(app)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id).map(|d| &**d))
    }

    /// The running deployments that touch any of `apps`, each once, by id.
    pub fn touching<'a, 'b>(
        &'a self,
        apps: impl IntoIterator<Item = &'b str>,
    ) -> impl Iterator<Item = &'a Deployment> {
        let ids: BTreeSet<&'a String> = apps
            .into_iter()
            .filter_map(|app| self.by_app.get(app))
            .flatten()
            .collect();
        ids.into_iter()
            .filter_map(|id| self.by_id.get(id).map(|d| &**d))
    }
}

impl Serialize for RunningDeployments {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_id.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RunningDeployments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let by_id = OrdMap::<String, Arc<Deployment>>::deserialize(deserializer)?;
        let mut running = RunningDeployments::default();
        for (id, deployment) in by_id {
            running.insert(id, deployment);
        }
        Ok(running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(id: &str, apps: &[&str]) -> Arc<Deployment> {
        Arc::new(Deployment {
            id: id.into(),
            version: "v".into(),
            affected_apps: apps.iter().map(|a| a.to_string()).collect(),
            steps: vec![],
            current_step: 0,
            original: Default::default(),
        })
    }

    fn ids<'a>(found: impl Iterator<Item = &'a Deployment>) -> Vec<&'a str> {
        found.map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn deployments_are_found_by_the_apps_they_touch() {
        let mut running = RunningDeployments::default();
        running.insert("d1".into(), deployment("d1", &["/a", "/b"]));
        running.insert("d2".into(), deployment("d2", &["/b"]));
        assert_eq!(ids(running.of("/b")), ["d1", "d2"]);
        assert_eq!(ids(running.of("/a")), ["d1"]);
        assert!(ids(running.of("/c")).is_empty());
        assert_eq!(ids(running.touching(["/a", "/b", "/c"])), ["d1", "d2"]);

        // Replaced under the same id with other apps: the old ones let go.
        running.insert("d1".into(), deployment("d1", &["/c"]));
        assert_eq!(ids(running.of("/a")), Vec::<&str>::new());
        assert_eq!(ids(running.of("/c")), ["d1"]);

        assert!(running.remove("d2").is_some());
        assert!(running.remove("d2").is_none());
        assert!(ids(running.of("/b")).is_empty());
        assert_eq!(running.len(), 1);
    }

    #[test]
    fn a_snapshot_holds_the_deployments_by_id_and_the_index_comes_back() {
        let mut running = RunningDeployments::default();
        running.insert("d1".into(), deployment("d1", &["/a"]));
        running.insert("d2".into(), deployment("d2", &["/a", "/b"]));
        let json = serde_json::to_value(&running).expect("serializable");
        assert_eq!(
            json.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["d1".to_string(), "d2".to_string()])
        );
        let back: RunningDeployments = serde_json::from_value(json).expect("readable");
        assert_eq!(back, running);
        assert_eq!(ids(back.of("/a")), ["d1", "d2"]);
    }
}
