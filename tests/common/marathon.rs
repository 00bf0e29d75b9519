//! What the Marathon API tests share: requests with their JSON answers,
//! agents whose ports are free on the machine, and the event stream
//! (`GET /v2/events`, server-sent events) read the way a client reads it:
//! one streaming HTTP response, frames split on blank lines, the JSON of
//! each `data:` line. Every event read is kept, so a test can look back over
//! the whole stream when it fails.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{client, url};

/// One request; the status and the JSON answer (a string when not JSON).
pub async fn send(
    method: reqwest::Method,
    http: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, url(http, path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.expect("the master answers");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `POST /v2/apps`, which must answer 201; the app as created.
pub async fn create_app(http: &str, app: Value) -> Value {
    let (status, created) = send(reqwest::Method::POST, http, "/v2/apps", Some(app)).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// `PUT /v2/apps/{id}` with `change`, which must answer 200; the
/// deployment's id.
pub async fn update_app(http: &str, id: &str, change: Value) -> Value {
    let (status, body) = send(
        reqwest::Method::PUT,
        http,
        &format!("/v2/apps{id}"),
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["deploymentId"].clone()
}

/// An agent's resources with `n` ports free on the machine now (from the
/// kernel's ephemeral range, as [`super::free_ports`], which never hands a
/// port out twice in one test binary): tasks that listen on every address,
/// or docker's published ports, never meet another test's.
/// `cpus:4;mem:4096;disk:1000;ports:[a-a, b-b, ...]`.
pub fn resources_with_free_ports(n: usize) -> String {
    let mut ports = super::free_ports(n);
    ports.sort_unstable();
    let ranges: Vec<String> = ports.iter().map(|p| format!("{p}-{p}")).collect();
    format!("cpus:4;mem:4096;disk:1000;ports:[{}]", ranges.join(", "))
}

pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
    /// Every event read so far, oldest first.
    pub seen: Vec<Value>,
}

impl EventStream {
    /// Opens the stream on `http` and waits for its first event,
    /// `event_stream_attached`: from then on no event is missed.
    pub async fn open(http: &str) -> EventStream {
        // No overall timeout: it would cut the stream; each read has its own.
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let response = client
            .get(format!("http://{http}/v2/events"))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .expect("the event stream answers");
        assert_eq!(response.status(), 200, "GET /v2/events");
        let mut stream = EventStream {
            response,
            buffer: String::new(),
            seen: Vec::new(),
        };
        let first = stream
            .next(Duration::from_secs(10))
            .await
            .expect("a first event");
        assert_eq!(first["eventType"], "event_stream_attached", "{first}");
        stream
    }

    /// The next event, or None if none comes within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let event: Value = serde_json::from_str(&data.join("\n"))
                    .unwrap_or_else(|e| panic!("an event that is not JSON ({e}): {frame}"));
                self.seen.push(event.clone());
                return Some(event);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) => panic!("the event stream ended"),
                Ok(Err(e)) => panic!("the event stream broke: {e}"),
                Err(_) => return None,
            }
        }
    }

    /// Reads events until one satisfies `done` (which sees each in turn);
    /// returns it. Panics after `timeout`, listing the event types seen.
    pub async fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(event) if done(&event) => return event,
                Some(_) => {}
                None => panic!(
                    "timed out waiting for {what}; events seen: {:?}",
                    self.seen
                        .iter()
                        .map(|e| e["eventType"].as_str().unwrap_or("?"))
                        .collect::<Vec<_>>()
                ),
            }
        }
    }

    /// The events seen so far of one type.
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .filter(|e| e["eventType"] == kind)
            .collect()
    }
}
