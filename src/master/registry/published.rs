//! The registry as the Raft driver last published it, for everyone else to read.
//!
//! ```text
//!   Raft driver: draft() ─▶ apply a round's entries ─▶ publish(draft)
//!                                                         │ swaps one Arc
//!   readers: current() ─▶ Arc<Registry>, theirs for as long as they like
//! ```
//!
//! Readers used to hold the registry's read lock while they worked, and the
//! driver's write lock waited for every one of them: at 5,000 agents and
//! 50,000 tasks a scheduler plan held it 50–180 ms, a snapshot's copy 50–116
//! ms and `/master/slaves` 56–75 ms, so Raft rounds that applied one entry
//! took hundreds of ms and, at 10,000 agents, cost heartbeats and
//! leadership. Now a reader takes an `Arc` of the version last published and
//! lets go of the lock at once; the driver applies to its own copy and swaps
//! it in. The copy is cheap because the big collections are persistent maps
//! (`imbl`): a clone shares every node, and a change copies only the path to
//! what it changes.

use std::sync::{Arc, RwLock};

use super::Registry;

#[derive(Debug, Clone, Default)]
pub struct PublishedRegistry(Arc<RwLock<Arc<Registry>>>);

impl PublishedRegistry {
    /// The version last published. The lock is held only to clone the `Arc`.
    pub fn current(&self) -> Arc<Registry> {
        Arc::clone(&self.0.read().expect("registry lock"))
    }

    /// A copy of the current version to apply changes to.
    pub fn draft(&self) -> Registry {
        Registry::clone(&self.current())
    }

    /// Makes `registry` the version every later [`current`](Self::current) sees.
    pub fn publish(&self, registry: Registry) {
        let new = Arc::new(registry);
        let old = std::mem::replace(&mut *self.0.write().expect("registry lock"), new);
        // Outside the lock: the last holder of an old version (after a
        // restore from a leader's snapshot, every task in it) frees it
        // without making every reader wait.
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::command::Command;

    fn weights(registry: &Registry) -> Vec<(String, f64)> {
        registry.weights.clone().into_iter().collect()
    }

    #[test]
    fn a_reader_keeps_its_version_while_the_next_is_published() {
        let published = PublishedRegistry::default();
        let before = published.current();
        let mut draft = published.draft();
        let set = Command::UpdateWeights {
            weights: vec![crate::model::WeightInfo {
                role: "web".into(),
                weight: 2.0,
            }],
        };
        draft.apply(1, &set);
        // Not yet published: nobody sees the draft.
        assert!(published.current().weights.is_empty());
        published.publish(draft);
        assert_eq!(weights(&published.current()), vec![("web".into(), 2.0)]);
        assert_eq!(published.current().applied_index, 1);
        // The reader that came first still holds what it read.
        assert!(before.weights.is_empty());
        assert_eq!(before.applied_index, 0);
    }
}
