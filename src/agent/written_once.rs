//! A value that never changes, kept with its JSON once written: the agent
//! saves a task's record on every change, and the task's spec in it is the
//! same each time.
//!
//! ```text
//!  WrittenOnce::new(spec) ─▶ read through Deref (no way to change it)
//!  first serialize ─▶ to_raw_value, kept ─▶ every later one writes those bytes
//!  deserialize ─▶ the value, nothing kept
//! ```

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A value that never changes, serialized once: a task's record is saved on
/// every change (STARTING, RUNNING, each acknowledgement, ...), and writing
/// its spec again each time was 6.5% of the agents' CPU in a 1,000-task
/// deployment. Read through `Deref`; there is no way to change it.
#[derive(Debug, Clone)]
pub struct WrittenOnce<T> {
    value: T,
    json: OnceLock<Arc<RawValue>>,
}

impl<T> WrittenOnce<T> {
    pub fn new(value: T) -> Self {
        Self {
            value,
            json: OnceLock::new(),
        }
    }
}

impl<T> std::ops::Deref for WrittenOnce<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Serialize> Serialize for WrittenOnce<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let json = match self.json.get() {
            Some(json) => json,
            None => {
                let json = serde_json::value::to_raw_value(&self.value)
                    .map_err(serde::ser::Error::custom)?;
                self.json.get_or_init(|| Arc::from(json))
            }
        };
        json.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for WrittenOnce<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}
