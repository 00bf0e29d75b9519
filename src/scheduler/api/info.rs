//! `/v2/info` and `/v2/eventSubscriptions`.
//!
//! `/v2/info` emits exactly the keys Marathon 1.10 does at each level: the
//! Python client builds objects from them and fails on any key it does not
//! know, so nothing of meso's own is added here.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::json;

use super::{Ctx, Params, ok};
use crate::api::error::{ApiError, propose_error};
use crate::master::command::Command;
use crate::scheduler::driver::reconcile::framework_id;
use crate::scheduler::state::MarathonCommand;

/// The Marathon version whose API this is.
pub const MARATHON_VERSION: &str = "1.10.26";

pub async fn info(State(ctx): State<Ctx>) -> Response {
    let master = &ctx.master;
    let leader = master.leader_http();
    let elected = master.status().is_leader;
    let me = master.advertise_http.clone();
    let framework = framework_id(&master.registry());
    let port = me
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(0);
    let hostname = master.hostname.clone();
    // Two macros: one would pass serde_json's recursion limit.
    let marathon_config = json!({
        "access_control_allow_origin": null,
        "checkpoint": true,
        "decline_offer_duration": 120000,
        "default_network_name": null,
        "env_vars_prefix": null,
        "executor": "//cmd",
        "failover_timeout": 604800,
        "features": [],
        "framework_name": "marathon",
        "ha": true,
        "hostname": hostname,
        "launch_token": 100,
        "launch_token_refresh_interval": 30000,
        "leader_proxy_connection_timeout_ms": 5000,
        "leader_proxy_read_timeout_ms": 10000,
        "local_port_max": 20000,
        "local_port_min": 10000,
        "master": me,
        "max_instances_per_offer": 5,
        "mesos_bridge_name": "mesos-bridge",
        "mesos_heartbeat_failure_threshold": 5,
        "mesos_heartbeat_interval": 15000,
        "mesos_leader_ui_url": leader.as_ref().map(|l| format!("http://{l}/")),
        "mesos_role": "*",
        "mesos_user": "root",
        "min_revive_offers_interval": 5000,
        "new_group_enforce_role": "off",
        "offer_matching_timeout": 3000,
        "on_elected_prepare_timeout": 180000,
        "reconciliation_initial_delay": 15000,
        "reconciliation_interval": 600000,
        "scale_apps_initial_delay": 15000,
        "scale_apps_interval": 300000,
        "store_cache": true,
        "task_launch_confirm_timeout": 300000,
        "task_launch_timeout": 300000,
        "task_lost_expunge_initial_delay": 300000,
        "task_lost_expunge_interval": 30000,
        "task_reservation_timeout": 20000,
        "webui_url": null,
        "maintenance_mode": false,
    });
    ok(json!({
        "name": "marathon",
        "version": MARATHON_VERSION,
        "buildref": concat!("meso-", env!("CARGO_PKG_VERSION")),
        "elected": elected,
        "leader": leader,
        "frameworkId": framework,
        "marathon_config": marathon_config,
        "zookeeper_config": {
            "zk": null,
            "zk_compression": false,
            "zk_compression_threshold": 65536,
            "zk_connection_timeout": 10000,
            "zk_max_node_size": 1024000,
            "zk_max_versions": crate::scheduler::state::VERSIONS,
            "zk_session_timeout": 10000,
            "zk_timeout": 10000,
        },
        "http_config": {"http_port": port, "https_port": 8443},
    }))
}

pub async fn subscriptions(State(ctx): State<Ctx>) -> Response {
    let registry = ctx.master.registry();
    ok(json!({ "callbackUrls": registry.marathon.subscriptions }))
}

pub async fn subscribe(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    change_subscription(ctx, q, true).await
}

pub async fn unsubscribe(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    change_subscription(ctx, q, false).await
}

async fn change_subscription(
    ctx: Ctx,
    q: Option<String>,
    subscribe: bool,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let url = params
        .get("callbackUrl")
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| {
            ApiError::bad_request("callbackUrl: an http:// or https:// URL is required")
        })?
        .to_string();
    let command = if subscribe {
        MarathonCommand::Subscribe { url: url.clone() }
    } else {
        MarathonCommand::Unsubscribe { url: url.clone() }
    };
    ctx.master
        .raft
        .propose(Command::Marathon { command })
        .await
        .map_err(propose_error)?;
    Ok(ok(json!({
        "callbackUrl": url,
        "clientIp": null,
        "eventType": if subscribe { "subscribe_event" } else { "unsubscribe_event" },
    })))
}
