//! HTTP callbacks (`/v2/eventSubscriptions`), for tools like Bamboo that
//! take events by POST: the leader sends each event to every subscribed URL.
//! Only the leader sends, so a URL gets each event once however many masters
//! there are. A URL that fails is not retried (Marathon did not either); a
//! slow one cannot hold up the others, each event is sent with a timeout.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Event;
use crate::master::Master;

const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(
    master: Arc<Master>,
    mut events: broadcast::Receiver<Arc<Event>>,
    shutdown: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .unwrap_or_default();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            got = events.recv() => match got {
                Ok(event) => event,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event callbacks fell behind; events not sent");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        if !master.status().is_leader {
            continue;
        }
        let urls: Vec<String> = master
            .registry()
            .marathon
            .subscriptions
            .iter()
            .cloned()
            .collect();
        for url in urls {
            let request = client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(event.json.clone());
            tokio::spawn(async move {
                if let Err(e) = request.send().await {
                    tracing::debug!(%url, error = %e, "event callback failed");
                }
            });
        }
    }
}
