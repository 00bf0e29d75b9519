//! The shared vocabulary: the types every role speaks, with the JSON shapes of
//! Mesos and Marathon. Later roles add their nouns here (Resources, TaskInfo, App…).

mod member;
mod weight;

pub use member::Member;
pub use weight::WeightInfo;
