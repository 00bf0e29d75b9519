//! Every integration test in one binary: each module is one subject's
//! tests (a file beside this one). One binary per file compiled the shared
//! harness (`common`) 29 times and linked 29 times: after the library, a
//! cold build on two cores spent 170 s on them, and 63 s on this one binary
//! (`cargo build --release --all-targets --timings`, 2026-12-08: 608 → 504 s
//! in all). Tests run in parallel as before (`cargo test` runs a binary's
//! tests on every core); [`common`] keeps them apart (own loopback
//! addresses, ports never handed out twice).

mod common;

mod agents;
mod bad_input;
mod cli;
mod compaction;
mod config;
mod dns;
mod dns_cli;
mod dns_http;
mod docker_containerizer;
mod docker_tasks;
mod endpoints;
mod failover;
mod fetcher;
mod files;
mod health_checks;
mod marathon_apps;
mod marathon_client;
mod marathon_events;
mod marathon_failover;
mod marathon_health;
mod marathon_placement;
mod marathon_restart;
mod membership;
mod process_containerizer;
mod quickstart;
mod sandbox;
mod sim;
mod single_node;
mod tasks;
