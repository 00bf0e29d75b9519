//! `/v2/queue`: apps waiting for instances (not placed yet, or held back by
//! their launch backoff), and resetting the backoff.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json::{Embed, app_info};
use super::{Ctx, Params, ok};
use crate::api::error::{ApiError, propose_error};
use crate::master::command::Command;
use crate::master::now_secs;
use crate::model::TaskState;
use crate::scheduler::app::{PathId, marathon_timestamp};
use crate::scheduler::state::MarathonCommand;

pub async fn list(State(ctx): State<Ctx>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let with_offers = params.embeds("lastUnusedOffers");
    let now = now_secs();
    let unplaced = ctx.unplaced.lock().map(|u| u.clone()).unwrap_or_default();
    let registry = ctx.master.registry();
    let mut live: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for t in registry.tasks.values() {
        if let Some(run) = &t.spec.run_spec
            && !t.kill_requested
            && t.state != TaskState::Unreachable
        {
            *live.entry(run.app_id.as_str()).or_default() += 1;
        }
    }
    let mut queue = Vec::new();
    for (id, record) in &registry.marathon.apps {
        let app = record.current();
        let missing =
            (app.instances as usize).saturating_sub(live.get(id.as_str()).copied().unwrap_or(0));
        let delay = registry.marathon.delays.get(id);
        if missing == 0 {
            continue;
        }
        let left = delay.map_or(0.0, |d| (d.until - now).max(0.0));
        let since = delay.map_or(now, |d| d.since);
        let reasons: Vec<serde_json::Value> = unplaced
            .get(id)
            .map(|(_, r)| r.marathon_steps())
            .unwrap_or_default()
            .into_iter()
            .map(|s| json!({"reason": s.reason, "declined": s.declined, "processed": s.processed}))
            .collect();
        let mut item = json!({
            "app": app_info(app, &registry, Embed::default()),
            "count": missing,
            "delay": {"timeLeftSeconds": left.ceil() as u64, "overdue": left <= 0.0},
            "since": marathon_timestamp(since),
            "processedOffersSummary": {
                "processedOffersCount": 0,
                "unusedOffersCount": 0,
                "rejectSummaryLastOffers": reasons,
                "rejectSummaryLaunchAttempt": reasons,
            },
        });
        if with_offers {
            item["lastUnusedOffers"] = json!([]);
        }
        queue.push(item);
    }
    Ok(ok(json!({ "queue": queue })))
}

/// `DELETE /v2/queue/{app}/delay`: 200 without a body, 404 for an unknown app.
pub async fn reset_delay(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let Some(app) = rest.trim_end_matches('/').strip_suffix("/delay") else {
        return Err(ApiError::not_found(
            "only /v2/queue/{app}/delay can be deleted",
        ));
    };
    let app = PathId::parse(&format!("/{}", app.trim_start_matches('/')))
        .map_err(|e| ApiError::bad_request(format!("app id: {e}")))?
        .to_string();
    if ctx.master.registry().marathon.app(&app).is_none() {
        return Err(ApiError::not_found(format!(
            "Application {app} not found in tasks queue."
        )));
    }
    let command = MarathonCommand::ResetDelay { app };
    ctx.master
        .raft
        .propose(Command::Marathon { command })
        .await
        .map_err(propose_error)?;
    Ok(StatusCode::OK.into_response())
}
