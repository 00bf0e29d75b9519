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
        tasks: &OrdMap<String, Arc<Task>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(tasks.values().map(|t| Stored(t)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OrdMap<String, Arc<Task>>, D::Error> {
        deserializer.deserialize_any(TasksVisitor)
    }

    struct TasksVisitor;

    impl<'de> Visitor<'de> for TasksVisitor {
        type Value = OrdMap<String, Arc<Task>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence of tasks, or a map of them by id")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut tasks = OrdMap::new();
            while let Some(task) = seq.next_element::<Task>()? {
                let task = restored(task);
                tasks.insert(task.spec.task_id.clone(), task);
            }
            Ok(tasks)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut tasks = OrdMap::new();
            while let Some((id, task)) = map.next_entry::<String, Task>()? {
                tasks.insert(id, restored(task));
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
        let statuses: Vec<WithoutIds> = statuses.iter().map(WithoutIds).collect();
        s.serialize_field("statuses", &statuses)?;
        s.serialize_field("kill_requested", kill_requested)?;
        optional(&mut s, "healthy", healthy)?;
        optional(&mut s, "health", health)?;
        optional(&mut s, "ready", ready)?;
        s.serialize_field("staged_at", staged_at)?;
        optional(&mut s, "started_at", started_at)?;
        s.end()
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
