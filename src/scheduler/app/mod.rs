//! The Marathon app definition as a pure library: no HTTP, no registry.
//!
//! ```text
//!  request JSON ─▶ lenient (typed wire form, path-named type errors)
//!               ─▶ normalize (deprecated forms rewritten, defaults applied)
//!               ─▶ validate (rules, each violation with its path)
//!               ─▶ AppDefinition ──▶ to_json (Marathon 1.x, marathon-python-safe)
//!                        │        ──▶ task_spec (model::TaskSpec for the master)
//!  stored app + patch ─▶ merge ─▶ AppDefinition; UpdateKind::between(old, new)
//!  /v2/groups body ─▶ GroupDefinition ─▶ flatten (apps, groups)
//! ```
//!
//! Where things live, one idea a file:
//! - `path.rs`: [`PathId`], Marathon's `/group/app` ids (canonical form,
//!   segment rules, reserved last segments, `safe_name` for task ids).
//! - `wire.rs`: what clients send, every field optional and liberal;
//!   `lenient.rs`: reading scalars liberally, and [`from_value`], which
//!   names the failing field (`/healthChecks(0)/portIndex`).
//! - `normalize.rs`: wire → canonical, deprecated forms and defaults;
//!   `networking.rs` the tangled part of it: networks, container, ports.
//! - `definition.rs`, `container.rs`, `checks.rs`: the canonical types and
//!   their output JSON; `validate.rs`: the rules; `error.rs`: [`Violation`]
//!   and [`AppError`], shaped as Marathon's `{message, details}`.
//! - `update.rs`: partial updates and [`UpdateKind`]; `task.rs`:
//!   [`AppDefinition::task_spec`] and task ids; `group.rs`: group trees;
//!   `time.rs`: Marathon's timestamps.
//!
//! Output discipline (reference/marathon-api.md §3.3): the JSON emits only
//! keys marathon-python 0.13.0 accepts; never `ports`, `uris`, `ipAddress`,
//! `container.docker.network`/`portMappings`, `tty`, `check`,
//! `executorResources`, `resourceLimits`, `tasksStats`, `linuxInfo` or
//! `networkNames`. Service ports stay as given (0 = "assign one"): the
//! store assigns them, not this library. Versions too are the store's.

mod checks;
mod container;
mod definition;
mod error;
mod group;
mod lenient;
mod networking;
mod normalize;
mod path;
mod task;
mod time;
mod update;
mod validate;
mod wire;

pub use checks::{CommandCheck, HealthCheck, HealthProtocol, ReadinessCheck, ReadinessProtocol};
pub use container::{
    Container, ContainerType, Docker, DockerParameter, Network, NetworkMode, PortDefinition,
    PortMapping, Volume, VolumeMode,
};
pub use definition::{
    AppDefinition, Fetch, KillSelection, UnreachableStrategy, UpgradeStrategy, VersionInfo,
};
pub use error::{AppError, Violation};
pub use group::{FlatGroups, GroupDefinition, GroupNode};
pub use lenient::from_value;
pub use path::PathId;
pub use task::{app_id_of_task, new_task_id};
pub use time::{marathon_timestamp, normalize_timestamp, parse_marathon_timestamp};
pub use update::{UpdateKind, merge};
pub use validate::MAX_APP_ID_CHARS;

/// A valid app from JSON, for tests; panics with the violations otherwise.
#[cfg(test)]
pub(crate) fn test_app(body: serde_json::Value) -> AppDefinition {
    match AppDefinition::from_json(&body, &PathId::root()) {
        Ok(app) => app,
        Err(e) => panic!("{body}: {e}"),
    }
}
