//! Who listens to the bus, and for which event types: the publisher renders
//! only what someone will read. A `/v2/events` stream filtered by
//! `event_type` wants those types; an unfiltered stream, or any callback
//! URL, wants every type. A stream's interest lasts as long as the stream
//! ([`Listening`] is dropped with it).
//!
//! Why: a deployment's events carry its plan, every affected app twice, and
//! `api_post_event` carries the app. With a deploy tool watching only status
//! updates (as the benchmark's client and marathon-lb-style tools do),
//! rendering them was most of the publisher's work for nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

/// The event types some listener wants, as a change is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    All,
    Only(BTreeSet<String>),
}

impl Wanted {
    pub fn wants(&self, event_type: &str) -> bool {
        match self {
            Wanted::All => true,
            Wanted::Only(types) => types.contains(event_type),
        }
    }

    /// Whether any of `event_types` is wanted.
    pub fn any(&self, event_types: &[&str]) -> bool {
        event_types.iter().any(|t| self.wants(t))
    }

    pub fn nothing(&self) -> bool {
        matches!(self, Wanted::Only(types) if types.is_empty())
    }
}

/// The live streams' interests, counted.
#[derive(Debug, Default)]
pub struct Listeners {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Streams without a filter.
    all: usize,
    /// Filtered streams, per type they asked for.
    types: BTreeMap<String, usize>,
}

impl Listeners {
    /// Registers a stream wanting `event_types` (every type when empty),
    /// until the returned [`Listening`] is dropped.
    pub fn listen(self: &Arc<Self>, event_types: &[String]) -> Listening {
        let types: BTreeSet<String> = event_types.iter().cloned().collect();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if types.is_empty() {
            counts.all += 1;
        }
        for t in &types {
            *counts.types.entry(t.clone()).or_default() += 1;
        }
        Listening {
            listeners: self.clone(),
            types,
        }
    }

    /// What the streams listening now want.
    pub fn wanted(&self) -> Wanted {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.all > 0 {
            Wanted::All
        } else {
            Wanted::Only(counts.types.keys().cloned().collect())
        }
    }
}

/// A stream's interest in the bus; dropping it ends the interest.
#[derive(Debug)]
pub struct Listening {
    listeners: Arc<Listeners>,
    types: BTreeSet<String>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut counts = self
            .listeners
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.types.is_empty() {
            counts.all = counts.all.saturating_sub(1);
        }
        for t in &self.types {
            if let Some(n) = counts.types.get_mut(t) {
                *n -= 1;
                if *n == 0 {
                    counts.types.remove(t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(types: &[&str]) -> Wanted {
        Wanted::Only(types.iter().map(|t| t.to_string()).collect())
    }

    #[test]
    fn streams_want_their_types_while_they_last() {
        let listeners = Arc::new(Listeners::default());
        assert!(listeners.wanted().nothing());

        let status = listeners.listen(&["status_update_event".to_string()]);
        let again = listeners.listen(&[
            "status_update_event".to_string(),
            "deployment_info".to_string(),
        ]);
        assert_eq!(
            listeners.wanted(),
            only(&["deployment_info", "status_update_event"])
        );
        assert!(!listeners.wanted().wants("api_post_event"));

        drop(again);
        assert_eq!(listeners.wanted(), only(&["status_update_event"]));

        let everything = listeners.listen(&[]);
        assert_eq!(listeners.wanted(), Wanted::All);
        drop(everything);
        drop(status);
        assert!(listeners.wanted().nothing());
    }

    #[test]
    fn any_of_several_types() {
        let wanted = only(&["deployment_success"]);
        assert!(wanted.any(&["deployment_info", "deployment_success"]));
        assert!(!wanted.any(&["deployment_info", "deployment_step_success"]));
        assert!(Wanted::All.any(&["x"]));
    }
}
