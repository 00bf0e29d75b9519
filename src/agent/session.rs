//! The agent's subscription to the leading master: subscribe (following the
//! 307 a follower answers to wherever the leader is), read the RecordIO event
//! stream, and send a HEARTBEAT call every interval. When the stream ends, the
//! master falls silent for three intervals, or a heartbeat is refused, start
//! over with the next master address, backing off up to a few seconds. Nothing
//! here stops the agent: its tasks (later) keep running while no master answers.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::base_url;
use crate::api::recordio::Decoder;
use crate::model::Resources;

/// What the agent tells the master about itself.
#[derive(Debug, Clone)]
pub struct Identity {
    pub key: String,
    pub hostname: String,
    pub addr: String,
    pub resources: Resources,
    pub attributes: std::collections::BTreeMap<String, String>,
}

pub async fn run(
    masters: Vec<String>,
    me: Identity,
    agent_id: watch::Sender<Option<String>>,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "agent cannot build its HTTP client");
            return;
        }
    };
    let mut backoff = Duration::from_millis(50);
    for master in masters.iter().cycle() {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session(&client, master, &me, &agent_id) => r,
        };
        match outcome {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(e) => tracing::info!(%master, error = %e, "agent not subscribed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One subscription, until it breaks. Ok means it was established first.
async fn session(
    client: &reqwest::Client,
    master: &str,
    me: &Identity,
    agent_id: &watch::Sender<Option<String>>,
) -> Result<(), String> {
    let url = format!("{}/api/v1/agent", base_url(master));
    let subscribe = json!({
        "type": "SUBSCRIBE",
        "subscribe": {
            "key": me.key,
            "hostname": me.hostname,
            "addr": me.addr,
            "resources": me.resources,
            "attributes": me.attributes,
        },
    });
    let response = client
        .post(&url)
        .header("Accept", "application/recordio")
        .json(&subscribe)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        let status = response.status();
        return Err(format!(
            "{status}: {}",
            response.text().await.unwrap_or_default().trim()
        ));
    }
    // After redirects, this is the leader's URL: heartbeats go there too.
    let leader_url = response.url().to_string();
    let mut response = response;
    let mut decoder = Decoder::default();
    let mut interval = Duration::from_secs(5);
    let mut id: Option<String> = None;
    let mut beat = tokio::time::interval(interval);
    loop {
        let silence = interval * 3;
        tokio::select! {
            chunk = tokio::time::timeout(silence, response.chunk()) => {
                let chunk = match chunk {
                    Err(_) => return Err(format!("no event from the master for {silence:?}")),
                    Ok(Err(e)) => return Err(e.to_string()),
                    Ok(Ok(None)) => return if id.is_some() { Ok(()) } else { Err("the master closed the stream".into()) },
                    Ok(Ok(Some(c))) => c,
                };
                decoder.push(&chunk);
                while let Some(record) = decoder.next_record()? {
                    let event: Value = serde_json::from_slice(&record).map_err(|e| e.to_string())?;
                    if event["type"] == "SUBSCRIBED" {
                        let sub = &event["subscribed"];
                        let new_id = sub["agent_id"].as_str().ok_or("SUBSCRIBED without agent_id")?.to_string();
                        if let Some(secs) = sub["heartbeat_interval_seconds"].as_f64().filter(|s| *s > 0.0) {
                            interval = Duration::from_secs_f64(secs);
                            beat = tokio::time::interval(interval);
                        }
                        tracing::info!(agent_id = %new_id, master = %leader_url, "agent subscribed");
                        agent_id.send_replace(Some(new_id.clone()));
                        id = Some(new_id);
                    }
                }
            }
            _ = beat.tick(), if id.is_some() => {
                let call = json!({"type": "HEARTBEAT", "agent_id": id});
                let r = client
                    .post(&leader_url)
                    .timeout(interval)
                    .json(&call)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !r.status().is_success() {
                    return Err(format!("heartbeat refused: {}", r.status()));
                }
            }
        }
    }
}
