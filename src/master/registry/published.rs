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
        *self.0.write().expect("registry lock") = Arc::new(registry);
    }
}
