//! `GET /v2/events`: the bus as server-sent events. Each event is written as
//! `event: <type>` and one `data:` line of JSON, the form Marathon's clients
//! parse (the Python client reads only the `data:` lines).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::Event;
use crate::api::error::ApiError;
use crate::scheduler::api::{Ctx, Params};

pub async fn stream(State(ctx): State<Ctx>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let accepts = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !accepts {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "/v2/events needs the header Accept: text/event-stream",
        )
        .into_response();
    }
    let params = Params::parse(q.as_deref());
    let wanted: Vec<String> = params.all("event_type").map(str::to_string).collect();
    let attached = Event::new(
        "event_stream_attached",
        json!({"remoteAddress": remote(&headers)}),
        crate::master::now_secs(),
    );
    let wanted_attached = wanted.is_empty() || wanted.iter().any(|w| w == "event_stream_attached");
    let first = stream::iter(wanted_attached.then_some(Arc::new(attached)));
    // The stream's interest lasts as long as the stream: dropped with it
    // when the client goes.
    let rest = stream::unfold(ctx.bus.listen(&wanted), |(mut rx, listening)| async move {
        loop {
            match rx.recv().await {
                Ok(event) => return Some((event, (rx, listening))),
                // A slow client misses events; the stream goes on.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .filter(move |e| {
        let keep = wanted.is_empty() || wanted.contains(&e.event_type);
        async move { keep }
    });
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>> =
        Box::pin(first.chain(rest).map(|e| {
            Ok(SseEvent::default()
                .event(e.event_type.clone())
                .data(e.json.clone()))
        }));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Who is listening, as far as the request says.
fn remote(headers: &HeaderMap) -> String {
    headers
        .get("x-forwarded-for")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_string()
}
