//! How the registry's tasks are written in a snapshot: each id once.
//!
//! ```text
//!  tasks            a sequence of tasks (was: a map keyed by the id the spec holds)
//!  task.statuses    each without task_id and agent_id: they are the task's own
//!  reading          a map or a sequence; each status takes its ids from the spec
//! ```
//!
//! A status joins a task only from the agent the task was launched on (the
//! registry ignores any other), so every status of a task carries the task's
//! id and agent id. Written out with each status, and the live tasks keyed by
//! the id their spec holds, a snapshot of 57,000 tasks in a 10,000-agent
//! deployment held each task id five times and each agent id four: 97 MB,
//! 71 MB without the repeats. The three masters spent a tenth of that
//! deployment's CPU serializing and writing snapshots. A snapshot of the
//! earlier shape (a map, statuses with their ids) reads as before.

use std::fmt;
use std::sync::Arc;

use imbl::{OrdMap, Vector};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{Task, TaskStatus};

/// A task read from a snapshot, its statuses given back their ids.
fn restored(mut task: Task) -> Arc<Task> {
    for status in &mut task.statuses {
        // Just read: no other holder, so nothing is copied.
        let status = Arc::make_mut(status);
        if status.task_id.is_empty() {
            status.task_id.clone_from(&task.spec.task_id);
        }
        if status.agent_id.is_empty() {
            status.agent_id.clone_from(&task.spec.agent_id);
        }
    }
    Arc::new(task)
}

/// `Registry::tasks`: written as a sequence, read from a sequence or a map.
pub mod tasks {
    use super::*;

    pub fn serialize<S: Serializer>(
        tasks: &OrdMap<Arc<str>, Arc<Task>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(tasks.values().map(|t| Stored(t)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OrdMap<Arc<str>, Arc<Task>>, D::Error> {
        deserializer.deserialize_any(TasksVisitor)
    }

    struct TasksVisitor;

    impl<'de> Visitor<'de> for TasksVisitor {
        type Value = OrdMap<Arc<str>, Arc<Task>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence of tasks, or a map of them by id")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut tasks = OrdMap::new();
            while let Some(task) = seq.next_element::<Task>()? {
                let task = restored(task);
                tasks.insert(Arc::from(task.spec.task_id.as_str()), task);
            }
            Ok(tasks)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut tasks = OrdMap::new();
            while let Some((id, task)) = map.next_entry::<String, Task>()? {
                tasks.insert(Arc::from(id), restored(task));
            }
            Ok(tasks)
        }
    }
}

/// `Registry::completed_tasks`: a sequence, its statuses given back their ids.
pub mod completed {
    use super::*;

    pub fn serialize<S: Serializer>(
        tasks: &Vector<Arc<Task>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(tasks.iter().map(|t| Stored(t)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vector<Arc<Task>>, D::Error> {
        let tasks = Vec::<Task>::deserialize(deserializer)?;
        Ok(tasks.into_iter().map(restored).collect())
    }
}

/// A task as its derived serialization writes it, but for its statuses.
struct Stored<'a>(&'a Task);

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Every field named, so that a field added to Task does not compile
        // until it is written here too.
        let Task {
            spec,
            state,
            statuses,
            kill_requested,
            healthy,
            health,
            ready,
            staged_at,
            started_at,
        } = self.0;
        let mut s = serializer.serialize_struct("Task", 9)?;
        s.serialize_field("spec", spec)?;
        s.serialize_field("state", state)?;
        s.serialize_field("statuses", &StatusesWithoutIds(statuses))?;
        s.serialize_field("kill_requested", kill_requested)?;
        optional(&mut s, "healthy", healthy)?;
        optional(&mut s, "health", health)?;
        optional(&mut s, "ready", ready)?;
        s.serialize_field("staged_at", staged_at)?;
        optional(&mut s, "started_at", started_at)?;
        s.end()
    }
}

/// A task's statuses, each without the ids it shares with its task.
struct StatusesWithoutIds<'a>(&'a [Arc<TaskStatus>]);

impl Serialize for StatusesWithoutIds<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|s| WithoutIds(s)))
    }
}

/// A status without the ids it shares with its task.
struct WithoutIds<'a>(&'a TaskStatus);

impl Serialize for WithoutIds<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let TaskStatus {
            task_id: _,
            agent_id: _,
            state,
            timestamp,
            message,
            reason,
            source,
            exit_code,
            container_ips,
            uuid,
            healthy,
            health,
            ready,
        } = self.0;
        let mut s = serializer.serialize_struct("TaskStatus", 11)?;
        s.serialize_field("state", state)?;
        s.serialize_field("timestamp", timestamp)?;
        optional(&mut s, "message", message)?;
        optional(&mut s, "reason", reason)?;
        optional(&mut s, "source", source)?;
        optional(&mut s, "exit_code", exit_code)?;
        if container_ips.is_empty() {
            s.skip_field("container_ips")?;
        } else {
            s.serialize_field("container_ips", container_ips)?;
        }
        optional(&mut s, "uuid", uuid)?;
        optional(&mut s, "healthy", healthy)?;
        optional(&mut s, "health", health)?;
        optional(&mut s, "ready", ready)?;
        s.end()
    }
}

/// An optional field as the model's derived serialization writes it: absent
/// when None.
fn optional<S: SerializeStruct, T: Serialize>(
    s: &mut S,
    name: &'static str,
    value: &Option<T>,
) -> Result<(), S::Error> {
    match value {
        Some(v) => s.serialize_field(name, v),
        None => s.skip_field(name),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tasks::tests::{registry_with_agent, spec, status};
    use crate::master::command::Command;
    use crate::master::registry::Registry;
    use crate::model::TaskState;

    /// A snapshot holds each task id once (in its spec) and reads back the
    /// same registry; one of the earlier shape (tasks keyed by id, statuses
    /// with their ids) reads back the same too (`stored.rs`).
    #[test]
    fn a_snapshot_writes_each_id_once_and_reads_the_earlier_shape() {
        let (mut reg, _) = registry_with_agent();
        reg.apply(
            3,
            &Command::LaunchTasks {
                tasks: vec![spec("task-one", 0.5), spec("task-two", 0.5)],
                time: 1.0,
            },
        );
        let mut running = status("task-one", TaskState::Running, "u1");
        running.message = Some("up".into());
        running.healthy = Some(true);
        running.container_ips = vec!["10.0.0.1".into()];
        let mut failed = status("task-two", TaskState::Failed, "u2");
        failed.exit_code = Some(3);
        reg.apply(
            4,
            &Command::UpdateTaskStatuses {
                statuses: vec![running, failed],
            },
        );
        assert_eq!(reg.completed_tasks.len(), 1);

        let snapshot = reg.to_snapshot();
        let text = String::from_utf8(snapshot.clone()).unwrap();
        assert_eq!(text.matches("task-one").count(), 1, "{text}");
        assert_eq!(text.matches("task-two").count(), 1, "{text}");
        assert_eq!(text.matches("\"task_id\"").count(), 2, "{text}");
        let back = Registry::from_snapshot(&snapshot).unwrap();
        assert_eq!(back, reg);
        assert_eq!(back.task("task-one").unwrap().statuses[1].agent_id, "c-S0");

        let mut earlier = serde_json::to_value(&reg).unwrap();
        earlier["tasks"] = reg
            .tasks
            .iter()
            .map(|(id, t)| (id.to_string(), serde_json::to_value(&**t).unwrap()))
            .collect::<serde_json::Map<_, _>>()
            .into();
        earlier["completed_tasks"] = reg
            .completed_tasks
            .iter()
            .map(|t| serde_json::to_value(&**t).unwrap())
            .collect::<Vec<_>>()
            .into();
        let earlier = serde_json::to_vec(&earlier).unwrap();
        assert!(earlier.len() > snapshot.len());
        assert_eq!(Registry::from_snapshot(&earlier).unwrap(), reg);
    }
}
