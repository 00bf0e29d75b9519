//! meso: one executable that is a whole Mesos-style cluster.
//!
//! The binary is thin (`main.rs` calls [`cli::run`]); everything lives here so that
//! integration tests and later roles share one vocabulary. See the README's
//! architecture section for how the rooms fit together.

pub mod agent;
pub mod api;
pub mod cli;
pub mod config;
pub mod dns;
pub mod master;
pub mod model;
pub mod node;
pub mod scheduler;
pub mod sim;
pub mod testing;
