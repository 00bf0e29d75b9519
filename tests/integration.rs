//! Every integration test in one binary: each module is one subject's
//! tests (a file beside this one). One binary links once, where one per file
//! linked 29 times and compiled the shared harness (`common`) in each, about
//! three of the ten minutes of a cold `scripts/test.sh` on two cores. Tests
//! run in parallel as before (`cargo test` runs a binary's tests on every
//! core); [`common`] keeps them apart (own loopback addresses, ports never
//! handed out twice).

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
