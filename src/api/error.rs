//! One error shape for every HTTP answer: a status and `{"message": "..."}`, the
//! way Marathon answers, with the field path in the message for bad input.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::master::raft::ProposeError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Marathon's `details`: the field paths of a validation failure, or the
    /// deployments that lock an app.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn from_json_rejection(r: JsonRejection) -> Self {
        Self::new(r.status(), r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.details {
            Some(details) if self.status == StatusCode::CONFLICT => {
                json!({ "message": self.message, "deployments": details })
            }
            Some(details) => json!({ "message": self.message, "details": details }),
            None => json!({ "message": self.message }),
        };
        (self.status, Json(body)).into_response()
    }
}

/// Maps a failed proposal to the answer a client can act on: 503 means "retry,
/// perhaps elsewhere", 409 a conflicting change in flight.
pub fn propose_error(e: ProposeError) -> ApiError {
    match e {
        ProposeError::Rejected(_) => ApiError::conflict(e.to_string()),
        ProposeError::Timeout(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        ProposeError::NoLeader | ProposeError::LeadershipLost | ProposeError::Stopped => {
            ApiError::unavailable(e.to_string())
        }
    }
}

/// Parses a JSON body; a failure names the field path (`[2].weight: ...`).
///
/// Read once without keeping the path, and again with it only when the first
/// read fails: keeping the path of every value costs on the hot calls (an
/// agent's UPDATE), where bodies are good.
pub fn parse_json<T: DeserializeOwned>(body: &[u8], prefix: &str) -> Result<T, ApiError> {
    if let Ok(value) = T::deserialize(&mut serde_json::Deserializer::from_slice(body)) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let full = format!("{prefix}{path}");
        let inner = e.into_inner();
        if full.is_empty() {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad_request(format!("{full}: {inner}"))
        }
    })
}

/// An error with its causes (reqwest's own text is only the outermost).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}
